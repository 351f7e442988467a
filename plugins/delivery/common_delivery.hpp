// What the stock secret-delivery backends share: the receiver program, /etc/tdx/secrets.list,
// secrets-ready.target with its wait service, the folders of the destinations, and option checks.
// README.md ("Secrets") describes the layout in the image; the receiver relies on it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>
#include <tdx/plugin_util.hpp>
#include <tdx/secret_protocol.hpp>

namespace tdx::stock {

inline constexpr const char* k_receiver = "/usr/lib/tdx/tdx-secret-receiver";
inline constexpr const char* k_secrets_list = "/etc/tdx/secrets.list";
inline constexpr const char* k_receiver_socket = "/run/tdx-secrets/receiver.sock";
inline constexpr const char* k_receiver_unit = "tdx-secret-receiver.service";
// max_size: what the receiver accepts per secret (its protocol fixes the default and the ceiling).
inline constexpr std::int64_t k_default_max_size = secret_protocol::k_default_max_value;
inline constexpr std::int64_t k_largest_max_size = secret_protocol::k_max_value;

// Rejects options neither the backend (`own`) nor every backend (max_size) knows, and a bad max_size.
void check_common_options(const DeliveryConfig& c, const StringList& own, StringList& problems);

// The option's value when present with type T; a sentence in `problems` when it has another type.
template <typename T>
const T* delivery_option(const DeliveryConfig& c, const std::string& key, StringList& problems) {
  auto it = c.options.find(key);
  if (it == c.options.end()) return nullptr;
  if (const T* v = std::get_if<T>(&it->second)) return v;
  problems.push_back("secret delivery '" + c.backend + "': option '" + key + "' has type " +
                     plugin::option_type_name(it->second));
  return nullptr;
}

// `value` in single quotes for a message, shortened when long.
std::string quoted(const std::string& value);

// The bytes of a host file the plan puts into the image; throws naming `what` and the path.
std::string read_host_file(const std::filesystem::path& path, const std::string& what);

// The receiver program to install: TDX_SECRET_RECEIVER, else ../libexec/tdx-secret-receiver
// beside the plugin's own shared object.
std::filesystem::path receiver_program();

// /etc/tdx/secrets.list: the version header, then one TAB-separated line per secret, sorted by name.
std::string secrets_list(const std::vector<SecretDecl>& secrets, std::int64_t max_bytes);

// A unit file with tdx's header comment; `body` is its sections.
ImageFile unit_file(const DeliveryConfig& c, const std::string& name, const std::string& body);

// The plan every backend starts from: the receiver, secrets.list, secrets-ready.target and
// tdx-secrets-wait.service, the destinations' folders, and a build-time check that every
// secret's owner and group exist in the image.
DeliveryPlan common_plan(const DeliveryConfig& c, const std::vector<SecretDecl>& secrets);

// tdx-secret-receiver.service running `serve <serve_args>`; `service_extra` adds [Service] lines.
ImageFile receiver_service(const DeliveryConfig& c, const std::string& description, const std::string& serve_args,
                           const std::string& service_extra);

}  // namespace tdx::stock
