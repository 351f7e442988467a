// Secrets fetched at boot by the user's own script, then checked.
#include "../common_delivery.hpp"

#include <stdexcept>
#include <tdx/plugin_api.hpp>

namespace {

constexpr const char* k_fetch_script = "/usr/lib/tdx/fetch-secrets";

class ScriptDelivery final : public tdx::plugin::SecretDelivery {
 public:
  tdx::StringList validate(const tdx::DeliveryConfig& c) const override {
    tdx::StringList problems;
    tdx::stock::check_common_options(c, {"fetch_script"}, problems);
    auto script = tdx::stock::delivery_option<std::string>(c, "fetch_script", problems);
    if (!script) {
      if (c.options.find("fetch_script") == c.options.end())
        problems.push_back("secret delivery 'script' needs fetch_script=, the script (relative to the file calling "
                           "secret_delivery) that fetches the secrets at boot");
      return problems;
    }
    try {
      check_script(*script);
    } catch (const std::runtime_error& e) {
      problems.push_back(e.what());
    }
    return problems;
  }

  tdx::DeliveryPlan plan(const tdx::DeliveryConfig& c, const std::vector<tdx::SecretDecl>& secrets) const override {
    tdx::DeliveryPlan plan = tdx::stock::common_plan(c, secrets);
    // Read now: the script's bytes are what the image holds, and so what the image's inputs digest covers.
    plan.files.push_back({k_fetch_script, check_script(std::get<std::string>(c.options.at("fetch_script"))), 0755});
    // Wanted by secrets-ready.target rather than multi-user.target, so a slow fetch never holds up booting.
    plan.files.push_back(tdx::stock::unit_file(
        c, "tdx-secrets-fetch.service",
        "[Unit]\n"
        "Description=Fetch this VM's secrets with the image's fetch script\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        "Environment=PATH=/usr/lib/tdx:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        "ExecStart=" + std::string(k_fetch_script) + "\n"
        "ExecStart=" + std::string(tdx::stock::k_receiver) + " check\n"
        "\n"
        "[Install]\n"
        "WantedBy=secrets-ready.target\n"));
    plan.enable_units.push_back("tdx-secrets-fetch.service");
    return plan;
  }

 private:
  // The script's bytes; systemd executes it directly, so it must name its interpreter.
  static std::string check_script(const std::string& path) {
    std::string bytes = tdx::stock::read_host_file(path, "secret delivery 'script': fetch_script");
    if (bytes.rfind("#!", 0) != 0)
      throw std::runtime_error("secret delivery 'script': fetch_script '" + path +
                               "' does not start with an interpreter line like #!/bin/sh; systemd runs it directly");
    return bytes;
  }
};

}  // namespace

TDX_DELIVERY_PLUGIN(ScriptDelivery, "script", "0.2.0", "Secrets fetched at boot by a user-supplied script")
