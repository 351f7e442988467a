// Secrets pushed over an AF_VSOCK channel to a receiver service in the guest.
#include "../common.hpp"

#include <tdx/plugin_api.hpp>

namespace {

class VsockDelivery final : public tdx::plugin::SecretDelivery {
 public:
  tdx::StringList validate(const tdx::DeliveryConfig& c) const override {
    tdx::StringList problems;
    tdx::stock::reject_unknown(c, {"port"}, problems);
    if (auto port = tdx::stock::delivery_option<std::int64_t>(c, "port", problems); port && (*port < 1 || *port > 0xffffffffLL))
      problems.push_back("secret delivery 'vsock': port " + std::to_string(*port) + " is not a vsock port");
    return problems;
  }

  tdx::DeliveryPlan plan(const tdx::DeliveryConfig& c, const std::vector<tdx::SecretDecl>&) const override {
    tdx::stock::delivery_not_available(c);
  }
};

}  // namespace

TDX_DELIVERY_PLUGIN(VsockDelivery, "vsock", "0.1.0", "Secrets pushed over a length-framed vsock protocol")
