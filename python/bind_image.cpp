#include <pybind11/stl.h>

#include <tdx/image.hpp>

#include "convert.hpp"

namespace tdx::python {

void bind_image(py::module_& m) {
  // The Python `tdx.Image` subclasses this and supplies call sites and defaults.
  py::class_<Image>(m, "ImageCore")
      .def(py::init([](const std::string& name, const std::string& base, const py::tuple& site) {
             return std::make_unique<Image>(name, base, to_site(site));
           }),
           py::arg("name"), py::arg("base"), py::arg("site"))
      .def_property_readonly("name", &Image::name)
      .def_property_readonly("base", &Image::base)
      .def_property("format", &Image::format, &Image::set_format)
      .def_property_readonly("packages", &Image::packages)
      .def_property_readonly("builds", [](const Image& i) {
        std::vector<BuildSpec> out;
        for (const auto& b : i.builds()) out.push_back(b.spec);
        return out;
      })
      .def("_install", [](Image& i, const StringList& packages, const py::tuple& site) { i.install(packages, to_site(site)); })
      .def("_build", &Image::build)
      .def("_user",
           [](Image& i, const std::string& name, bool system, std::optional<std::int64_t> uid, const std::string& home,
              const std::string& shell, const StringList& groups, const py::tuple& site) {
             i.user({name, system, uid, home, shell, groups, to_site(site)});
           })
      .def("_file",
           [](Image& i, const std::string& dest, const py::bytes& content, const std::string& origin, std::uint32_t mode,
              const std::string& owner, const py::tuple& site) {
             i.file({dest, std::string(content), origin, mode, owner, to_site(site)});
           })
      .def("_service",
           [](Image& i, const std::string& name, const std::string& exec, const std::string& description,
              const StringList& after, const StringList& required, const StringList& wants, const std::string& restart,
              const std::string& user, const std::string& wanted_by,
              const std::map<std::string, std::map<std::string, StringList>>& extra_unit, bool enable,
              const py::tuple& site) {
             i.service({name, exec, description, after, required, wants, restart, user, wanted_by, extra_unit, enable,
                        to_site(site)});
           })
      .def("_secret",
           [](Image& i, const std::string& name, const std::string& dest, const std::string& owner,
              const std::string& group, const std::string& mode, const py::tuple& site) {
             i.secret({name, dest, owner, group, mode, to_site(site)});
           })
      .def("_secret_delivery",
           [](Image& i, const std::string& backend, const py::dict& options, const py::tuple& site) {
             i.secret_delivery({backend, to_options(options, "secret delivery"), to_site(site)});
           })
      .def("_run", [](Image& i, const std::string& command, const py::tuple& site) { i.run({command, to_site(site)}); })
      .def("recipe_json", &Image::recipe_json, "The recorded recipe as a JSON document.");
}

}  // namespace tdx::python
