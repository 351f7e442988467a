// A builder that needs a newer minor interface than the host offers: refused.
#include <tdx/plugin_api.hpp>

TDX_PLUGIN_EXPORT const tdx::plugin::Descriptor* tdx_plugin_descriptor() {
  static const tdx::plugin::Descriptor d{tdx::plugin::k_abi_major, tdx::plugin::k_abi_minor + 7,
                                         sizeof(tdx::plugin::Descriptor), tdx::plugin::Kind::builder, "future-minor",
                                         "1.0.0", "must be refused", nullptr, nullptr};
  return &d;
}
