// Secrets fetched at boot by the user's own script, then checked.
#include "../common.hpp"

#include <tdx/plugin_api.hpp>

namespace {

class ScriptDelivery final : public tdx::plugin::SecretDelivery {
 public:
  tdx::StringList validate(const tdx::DeliveryConfig& c) const override {
    tdx::StringList problems;
    tdx::stock::reject_unknown(c, {"fetch_script"}, problems);
    auto script = tdx::stock::delivery_option<std::string>(c, "fetch_script", problems);
    if (!script && c.options.find("fetch_script") == c.options.end())
      problems.push_back("secret delivery 'script' needs fetch_script=, the script that fetches the secrets at boot");
    return problems;
  }

  tdx::DeliveryPlan plan(const tdx::DeliveryConfig& c, const std::vector<tdx::SecretDecl>&) const override {
    tdx::stock::delivery_not_available(c);
  }
};

}  // namespace

TDX_DELIVERY_PLUGIN(ScriptDelivery, "script", "0.1.0", "Secrets fetched at boot by a user-supplied script")
