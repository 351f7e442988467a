// A builder compiled against a future interface major: the host must refuse it
// before reading anything past the version fields.
#include <tdx/plugin_api.hpp>

TDX_PLUGIN_EXPORT const tdx::plugin::Descriptor* tdx_plugin_descriptor() {
  static const tdx::plugin::Descriptor d{tdx::plugin::k_abi_major + 1, 0, sizeof(tdx::plugin::Descriptor),
                                         tdx::plugin::Kind::builder, "future-major", "9.9.9", "must be refused",
                                         nullptr, nullptr};
  return &d;
}
