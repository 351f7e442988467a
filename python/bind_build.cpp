#include <pybind11/stl.h>

#include <tdx/build.hpp>
#include <tdx/error.hpp>

#include "convert.hpp"

namespace tdx::python {

namespace {
std::string as_text(const py::handle& v) {
  py::module_ os = py::module_::import("os");
  if (py::isinstance<py::str>(v)) return v.cast<std::string>();
  if (py::hasattr(v, "__fspath__")) return os.attr("fspath")(v).cast<std::string>();
  throw py::type_error("expected a string");
}
}  // namespace

OptionValue to_option(const py::handle& value, const std::string& what) {
  if (py::isinstance<py::bool_>(value)) return value.cast<bool>();
  if (py::isinstance<py::int_>(value)) return value.cast<std::int64_t>();
  if (py::isinstance<py::str>(value) || py::hasattr(value, "__fspath__")) return as_text(value);
  if (py::isinstance<py::dict>(value)) {
    StringMap m;
    for (auto [k, v] : value.cast<py::dict>()) m[as_text(k)] = py::str(v).cast<std::string>();
    return m;
  }
  if (py::isinstance<py::list>(value) || py::isinstance<py::tuple>(value)) {
    StringList l;
    for (auto v : value) {
      if (!py::isinstance<py::str>(v) && !py::hasattr(v, "__fspath__"))
        throw py::type_error(what + ": list entries must be strings, got " + py::repr(v).cast<std::string>());
      l.push_back(as_text(v));
    }
    return l;
  }
  throw py::type_error(what + ": unsupported value " + py::repr(value).cast<std::string>() +
                       " (use a bool, int, str, list of str or dict of str)");
}

Options to_options(const py::dict& values, const std::string& what) {
  Options out;
  for (auto [k, v] : values) {
    std::string key = k.cast<std::string>();
    if (v.is_none()) continue;
    out[key] = to_option(v, what + " parameter '" + key + "'");
  }
  return out;
}

CallSite to_site(const py::tuple& site) { return {site[0].cast<std::string>(), site[1].cast<int>()}; }

void bind_build(py::module_& m) {
  py::class_<BuildSpec>(m, "BuildSpec", "One declared build; make them with Build.<builder>(...).", py::dynamic_attr())
      .def_readonly("builder", &BuildSpec::builder)
      .def_readonly("name", &BuildSpec::name)
      .def_readonly("src", &BuildSpec::src)
      .def_readonly("output", &BuildSpec::output)
      .def_readonly("artifacts", &BuildSpec::artifacts)
      .def_readonly("build_deps", &BuildSpec::build_deps)
      .def_readonly("env", &BuildSpec::env)
      .def_readonly("reproducible", &BuildSpec::reproducible)
      .def_readonly("install", &BuildSpec::install)
      .def_property_readonly("options", [](const BuildSpec& s) { return s.options; })
      .def_property_readonly("site", [](const BuildSpec& s) { return s.site.str(); })
      .def("__repr__", [](const BuildSpec& s) { return "<BuildSpec " + s.builder + " '" + s.name + "'>"; });

  m.def(
      "make_build_spec",
      [](const std::string& builder, const std::string& name, const std::string& src, const std::string& output,
         const StringMap& artifacts, const StringList& build_deps, const StringMap& env, bool reproducible,
         bool install, const py::dict& options, const py::tuple& site) {
        BuildSpec spec{builder, name, src, output, artifacts, build_deps, env, reproducible,
                       to_options(options, builder + " build"), to_site(site), install};
        check_build_spec(spec);
        return spec;
      },
      "Checks a spec with its builder plugin and returns it.");

  m.def(
      "check_delivery",
      [](const std::string& backend, const py::dict& options, const py::tuple& site) {
        DeliveryConfig config{backend, to_options(options, "secret delivery"), to_site(site)};
        check_delivery_config(config);
        return true;
      },
      "Checks a secret-delivery backend's options with its plugin.");
}

}  // namespace tdx::python
