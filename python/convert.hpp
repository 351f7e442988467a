// Python values to the core's plain types (the only conversions the bindings do).
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <tdx/spec.hpp>

namespace tdx::python {

namespace py = pybind11;

// bool, int, str/PathLike, list of str, or dict of str; anything else is a TypeError naming `what`.
OptionValue to_option(const py::handle& value, const std::string& what);
Options to_options(const py::dict& values, const std::string& what);
CallSite to_site(const py::tuple& site);

}  // namespace tdx::python
