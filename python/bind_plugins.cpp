#include <pybind11/stl.h>

#include <tdx/error.hpp>
#include <tdx/plugin_host.hpp>

#include "convert.hpp"

namespace tdx::python {

void bind_plugins(py::module_& m) {
  m.def("builder_names", [] { return PluginRegistry::instance().names(plugin::Kind::builder); },
        "Names of the builder plugins that loaded.");
  m.def("delivery_names", [] { return PluginRegistry::instance().names(plugin::Kind::secret_delivery); },
        "Names of the secret-delivery plugins that loaded.");
  m.def("did_you_mean", &did_you_mean);
}

}  // namespace tdx::python
