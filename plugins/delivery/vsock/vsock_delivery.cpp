// Secrets pushed over an AF_VSOCK channel to a receiver service in the guest.
#include "../common_delivery.hpp"

#include <tdx/plugin_api.hpp>

namespace {

constexpr std::int64_t k_default_port = 7070;

class VsockDelivery final : public tdx::plugin::SecretDelivery {
 public:
  tdx::StringList validate(const tdx::DeliveryConfig& c) const override {
    tdx::StringList problems;
    tdx::stock::check_common_options(c, {"port"}, problems);
    // VMADDR_PORT_ANY (0xffffffff) is not a port one can listen on.
    if (auto port = tdx::stock::delivery_option<std::int64_t>(c, "port", problems); port && (*port < 1 || *port >= 0xffffffffLL))
      problems.push_back("secret delivery 'vsock': port " + std::to_string(*port) + " is not a vsock port (1..4294967294)");
    return problems;
  }

  tdx::DeliveryPlan plan(const tdx::DeliveryConfig& c, const std::vector<tdx::SecretDecl>& secrets) const override {
    tdx::DeliveryPlan plan = tdx::stock::common_plan(c, secrets);
    auto it = c.options.find("port");
    const std::int64_t port = it == c.options.end() ? k_default_port : std::get<std::int64_t>(it->second);
    plan.files.push_back(tdx::stock::receiver_service(c, "tdx secret receiver on vsock port " + std::to_string(port),
                                                      "--vsock " + std::to_string(port),
                                                      "RestrictAddressFamilies=AF_UNIX AF_VSOCK\n"));
    plan.enable_units.push_back(tdx::stock::k_receiver_unit);
    return plan;
  }
};

}  // namespace

TDX_DELIVERY_PLUGIN(VsockDelivery, "vsock", "0.2.0", "Secrets pushed over a length-framed vsock protocol")
