// Secrets pushed over ssh to a restricted account whose only command is the receiver.
#include "../common.hpp"

#include <tdx/plugin_api.hpp>

namespace {

class SshDelivery final : public tdx::plugin::SecretDelivery {
 public:
  tdx::StringList validate(const tdx::DeliveryConfig& c) const override {
    tdx::StringList problems;
    tdx::stock::reject_unknown(c, {"authorized_key", "port", "user"}, problems);
    if (auto key = tdx::stock::delivery_option<std::string>(c, "authorized_key", problems);
        key && key->rfind("ssh-", 0) != 0 && key->rfind("ecdsa-", 0) != 0)
      problems.push_back("secret delivery 'ssh': authorized_key must be an OpenSSH public key line (ssh-ed25519 AAAA...)");
    if (auto port = tdx::stock::delivery_option<std::int64_t>(c, "port", problems); port && (*port < 1 || *port > 65535))
      problems.push_back("secret delivery 'ssh': port " + std::to_string(*port) + " is outside 1..65535");
    return problems;
  }

  tdx::DeliveryPlan plan(const tdx::DeliveryConfig& c, const std::vector<tdx::SecretDecl>&) const override {
    tdx::stock::delivery_not_available(c);
  }
};

}  // namespace

TDX_DELIVERY_PLUGIN(SshDelivery, "ssh", "0.1.0", "Secrets pushed over ssh to a forced-command receiver account")
