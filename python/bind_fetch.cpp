#include <tdx/fetch.hpp>
#include <tdx/paths.hpp>

#include "convert.hpp"

namespace tdx::python {

void bind_fetch(py::module_& m) {
  m.def(
      "fetch",
      [](const std::string& url, const std::string& sha256, const std::string& ca_bundle) {
        FetchOptions options;
        options.ca_bundle = ca_bundle;
        py::gil_scoped_release unlocked;
        return fetch(url, sha256, options).path.string();
      },
      py::arg("url"), py::arg("sha256"), py::arg("ca_bundle") = "",
      "Downloads url into the fetch cache, verified against sha256; returns the cached file's path.");
  m.def("parse_sha256", &parse_sha256);
  m.def(
      "fetched_identity",
      [](const std::string& path) -> std::string {
        namespace fs = std::filesystem;
        fs::path p = fs::weakly_canonical(path);
        fs::path dir = fs::weakly_canonical(cache_dir() / "fetch");
        if (p.parent_path() == dir && p.filename().string().size() == 64) return "sha256:" + p.filename().string();
        return "";
      },
      "'sha256:<hex>' when path is a file in the fetch cache (a fetch() result), else ''.");
}

}  // namespace tdx::python
