// Secrets pushed over ssh to a restricted account whose only command is the receiver.
#include "../common_delivery.hpp"

#include <algorithm>
#include <optional>
#include <regex>
#include <vector>
#include <tdx/plugin_api.hpp>

namespace {

using tdx::stock::quoted;

constexpr const char* k_default_user = "tdx-secrets";
constexpr const char* k_authorized_keys = "/etc/tdx/ssh/authorized_keys";

const tdx::StringList k_key_types = {"ssh-ed25519",         "ssh-rsa",
                                     "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                                     "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com",
                                     "sk-ecdsa-sha2-nistp256@openssh.com"};

// Standard base64 without line breaks; nullopt when `text` is not that.
std::optional<std::string> decode_base64(const std::string& text) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out;
  std::uint32_t bits = 0;
  int count = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '=') {
      if (i + 2 < text.size() || (i + 1 < text.size() && text[i + 1] != '=')) return std::nullopt;
      break;
    }
    auto pos = alphabet.find(text[i]);
    if (pos == std::string::npos) return std::nullopt;
    bits = (bits << 6) | static_cast<std::uint32_t>(pos);
    if (++count == 4) {
      out += static_cast<char>(bits >> 16);
      out += static_cast<char>(bits >> 8);
      out += static_cast<char>(bits);
      bits = 0;
      count = 0;
    }
  }
  if (count == 2) out += static_cast<char>(bits >> 4);
  if (count == 3) {
    out += static_cast<char>(bits >> 10);
    out += static_cast<char>(bits >> 2);
  }
  return out;
}

// A public key blob is a sequence of SSH strings (4-byte big-endian length, then the bytes), the
// first naming the key type; a truncated or padded blob does not divide into whole strings.
bool well_formed_blob(const std::string& blob, const std::string& type) {
  std::vector<std::string> fields;
  for (std::size_t at = 0; at < blob.size();) {
    if (blob.size() - at < 4) return false;
    std::size_t length = 0;
    for (int i = 0; i < 4; ++i) length = (length << 8) | static_cast<unsigned char>(blob[at + i]);
    at += 4;
    if (length > blob.size() - at) return false;
    fields.push_back(blob.substr(at, length));
    at += length;
  }
  if (fields.size() < 2 || fields[0] != type) return false;
  return type != "ssh-ed25519" || (fields.size() == 2 && fields[1].size() == 32);
}

// Empty when `line` is one OpenSSH public key ("<type> <base64 blob> [comment]") whose blob
// names the same type; otherwise why not. A private key is never quoted back.
std::string key_problem(const std::string& line) {
  const std::string what = "secret delivery 'ssh': authorized key ";
  if (line.find("PRIVATE KEY") != std::string::npos)
    return what + "is a private key; give the public key line instead (the .pub file), and treat that private key as "
                  "exposed if it was committed anywhere";
  if (line.find_first_of("\r\n") != std::string::npos)
    return what + quoted(line) + " spans several lines; give one key per entry (authorized_keys=[...] for several)";
  std::smatch m;
  static const std::regex shape(R"(([^ \t]+)[ \t]+([A-Za-z0-9+/=]+)([ \t]+[^\t]*)?)");
  if (!std::regex_match(line, m, shape))
    return what + quoted(line) + " is not an OpenSSH public key line (type, base64 key, optional comment, like the "
                                 "content of ~/.ssh/id_ed25519.pub); options such as command= are set by tdx";
  const std::string type = m[1];
  if (std::find(k_key_types.begin(), k_key_types.end(), type) == k_key_types.end()) {
    std::string types;
    for (const auto& t : k_key_types) types += (types.empty() ? "" : ", ") + t;
    return what + quoted(line) + " has key type '" + type + "', which is not one of: " + types;
  }
  auto blob = decode_base64(m[2]);
  if (!blob || !well_formed_blob(*blob, type))
    return what + quoted(line) + " does not hold a " + type + " key (its base64 part is damaged or of another type)";
  return "";
}

class SshDelivery final : public tdx::plugin::SecretDelivery {
 public:
  tdx::StringList validate(const tdx::DeliveryConfig& c) const override {
    tdx::StringList problems;
    tdx::stock::check_common_options(c, {"authorized_key", "authorized_keys", "port", "user"}, problems);
    const std::size_t before = problems.size();
    tdx::StringList keys = authorized_keys(c, problems);
    if (keys.empty() && problems.size() == before)
      problems.push_back("secret delivery 'ssh' needs authorized_key= (one public key line, like the content of "
                         "~/.ssh/id_ed25519.pub) or authorized_keys=[...]: the keys allowed to push secrets");
    for (const auto& k : keys)
      if (std::string p = key_problem(k); !p.empty()) problems.push_back(p);
    if (auto port = tdx::stock::delivery_option<std::int64_t>(c, "port", problems); port && (*port < 1 || *port > 65535))
      problems.push_back("secret delivery 'ssh': port " + std::to_string(*port) + " is outside 1..65535");
    if (auto user = tdx::stock::delivery_option<std::string>(c, "user", problems);
        user && !std::regex_match(*user, std::regex(R"([a-z_][a-z0-9_-]{0,30})")))
      problems.push_back("secret delivery 'ssh': user " + quoted(*user) +
                         " is not a valid account name (lower case letters, digits, '_' and '-', at most 31)");
    return problems;
  }

  tdx::DeliveryPlan plan(const tdx::DeliveryConfig& c, const std::vector<tdx::SecretDecl>& secrets) const override {
    tdx::StringList ignored;
    const tdx::StringList keys = authorized_keys(c, ignored);
    auto user_it = c.options.find("user");
    const std::string user = user_it == c.options.end() ? k_default_user : std::get<std::string>(user_it->second);
    const std::string relay = std::string(tdx::stock::k_receiver) + " relay --unix " + tdx::stock::k_receiver_socket;

    tdx::DeliveryPlan plan = tdx::stock::common_plan(c, secrets);
    plan.packages.push_back("openssh-server");
    // The account's shell runs the forced command, so it is /bin/sh; sshd never offers it anything else.
    // Its home is the receiver's runtime folder, which exists (root-owned) while pushes are possible.
    tdx::UserSpec account;
    account.name = user;
    account.system = true;
    account.home = "/run/tdx-secrets";
    account.create_home = false;
    account.shell = "/bin/sh";
    plan.users.push_back(account);

    std::string authorized = "# Generated by tdx: the keys that may push secrets to the '" + user + "' account.\n";
    for (const auto& k : keys) authorized += "restrict " + k + "\n";
    plan.files.push_back({k_authorized_keys, authorized, 0644});

    std::string sshd = "# Generated by tdx for secret delivery 'ssh': account '" + user +
                       "' only relays to the secret receiver.\n";
    if (auto it = c.options.find("port"); it != c.options.end())
      sshd += "Port " + std::to_string(std::get<std::int64_t>(it->second)) + "\n";
    sshd += "Match User " + user + "\n"
            "\tAuthorizedKeysFile " + k_authorized_keys + "\n"
            "\tAuthenticationMethods publickey\n"
            "\tPasswordAuthentication no\n"
            "\tKbdInteractiveAuthentication no\n"
            "\tForceCommand " + relay + "\n"
            "\tPermitTTY no\n"
            "\tPermitUserRC no\n"
            "\tAllowAgentForwarding no\n"
            "\tAllowTcpForwarding no\n"
            "\tAllowStreamLocalForwarding no\n"
            "\tX11Forwarding no\n"
            "\tPermitTunnel no\n"
            "\tGatewayPorts no\n";
    plan.files.push_back({"/etc/ssh/sshd_config.d/tdx-secrets.conf", sshd, 0644});

    plan.files.push_back(tdx::stock::receiver_service(
        c, "tdx secret receiver (pushes arrive through the ssh account '" + user + "')",
        std::string("--unix ") + tdx::stock::k_receiver_socket + " --socket-group " + user,
        "RuntimeDirectory=tdx-secrets\nRuntimeDirectoryMode=0755\nRestrictAddressFamilies=AF_UNIX\n"));
    // Host keys made at build time would be the same in every VM of the image: make them at first boot.
    plan.files.push_back(tdx::stock::unit_file(c, "tdx-ssh-host-keys.service",
                                               "[Unit]\n"
                                               "Description=Generate this VM's own ssh host keys\n"
                                               "Before=ssh.service\n"
                                               "\n"
                                               "[Service]\n"
                                               "Type=oneshot\n"
                                               "RemainAfterExit=yes\n"
                                               "ExecStart=/usr/bin/ssh-keygen -A\n"
                                               "\n"
                                               "[Install]\n"
                                               "RequiredBy=ssh.service\n"));
    plan.enable_units.insert(plan.enable_units.end(),
                             {tdx::stock::k_receiver_unit, "tdx-ssh-host-keys.service", "ssh.service"});
    plan.commands.push_back("rm -f /etc/ssh/ssh_host_*");
    // useradd leaves the password '!', which sshd counts as a locked account when PAM is off; '*' matches no password.
    plan.commands.push_back("usermod --password '*' " + tdx::plugin::shell_quote(user));
    return plan;
  }

 private:
  // authorized_key= and authorized_keys=, in that order.
  static tdx::StringList authorized_keys(const tdx::DeliveryConfig& c, tdx::StringList& problems) {
    tdx::StringList keys;
    if (auto one = tdx::stock::delivery_option<std::string>(c, "authorized_key", problems)) keys.push_back(*one);
    if (auto many = tdx::stock::delivery_option<tdx::StringList>(c, "authorized_keys", problems))
      keys.insert(keys.end(), many->begin(), many->end());
    for (auto& k : keys)  // a .pub file read with open().read() ends with a newline
      while (!k.empty() && (k.back() == '\n' || k.back() == ' ')) k.pop_back();
    return keys;
  }
};

}  // namespace

TDX_DELIVERY_PLUGIN(SshDelivery, "ssh", "0.2.0", "Secrets pushed over ssh to a forced-command receiver account")
