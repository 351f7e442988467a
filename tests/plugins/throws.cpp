// A builder whose every call throws: the host must turn that into an error naming the plugin.
#include <stdexcept>
#include <tdx/plugin_api.hpp>

namespace {
class Thrower final : public tdx::plugin::Builder {
 public:
  tdx::StringList validate(const tdx::BuildSpec&) const override { throw std::runtime_error("boom in validate"); }
  tdx::StringMap key_fields(const tdx::BuildSpec&) const override { throw std::runtime_error("boom in key_fields"); }
  tdx::BuildPlan plan(const tdx::BuildSpec&) const override { throw std::runtime_error("boom in plan"); }
};
}  // namespace

TDX_BUILDER_PLUGIN(Thrower, "thrower", "0.0.1", "Throws from every call (test plugin)")
