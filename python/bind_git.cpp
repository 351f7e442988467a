#include <tdx/git.hpp>

#include "convert.hpp"

namespace tdx::python {

void bind_git(py::module_& m) {
  m.def(
      "fetch_git",
      [](const std::string& url, const std::string& tag, const std::string& commit, const std::string& tree_hash) {
        py::gil_scoped_release unlocked;
        return fetch_git(url, tag, commit, tree_hash).path.string();
      },
      py::arg("url"), py::arg("tag"), py::arg("commit"), py::arg("tree_hash"),
      "Checks out tag or commit of url into the git cache, verified against its tree hash; returns the folder.");
}

}  // namespace tdx::python
