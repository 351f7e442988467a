// The _tdx extension: the core's recipe, build-spec and plugin types for Python.
#include <tdx/error.hpp>

#include "convert.hpp"

namespace tdx::python {
void bind_build(py::module_& m);
void bind_fetch(py::module_& m);
void bind_git(py::module_& m);
void bind_image(py::module_& m);
void bind_plugins(py::module_& m);
}  // namespace tdx::python

PYBIND11_MODULE(_tdx, m) {
  m.doc() = "Core bindings of tdx; import the `tdx` package instead.";
  pybind11::register_exception<tdx::Error>(m, "Error");
  tdx::python::bind_image(m);
  tdx::python::bind_build(m);
  tdx::python::bind_fetch(m);
  tdx::python::bind_git(m);
  tdx::python::bind_plugins(m);
}
