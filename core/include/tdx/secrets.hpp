// The host side of secret delivery: reading a secrets env file, checking it against what the
// image declares, and pushing it to a VM's receiver (docs/secret-delivery.md). Values live
// only in SecretValue, are wiped when it goes, and never reach a message.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <tdx/spec.hpp>

namespace tdx {

// One NAME=value or NAME=@path line of a secrets env file.
struct SecretValue {
  std::string name;
  std::string value;  // the bytes to deliver; wiped on destruction
  int line = 0;
  SecretValue() = default;
  SecretValue(SecretValue&&) noexcept = default;
  SecretValue& operator=(SecretValue&&) noexcept = default;
  SecretValue(const SecretValue&) = delete;
  SecretValue& operator=(const SecretValue&) = delete;
  ~SecretValue();
};

// Parses a secrets env file's text: `NAME=value` (the rest of the line without surrounding blanks) or
// `NAME=@path` (the file's bytes; a relative path is taken from `base_dir`); blank lines and
// lines starting with '#' are skipped. Errors name `file` and the line, never a value.
std::vector<SecretValue> parse_secrets_env(std::string_view text, const std::filesystem::path& file,
                                           const std::filesystem::path& base_dir);
std::vector<SecretValue> read_secrets_env(const std::filesystem::path& file);

// The largest value the image's receiver accepts: the delivery option max_size, else the default.
std::uint32_t secret_max_bytes(const std::optional<DeliveryConfig>& delivery);

// Refuses, before anything is sent, values for names the image does not declare, declared
// names without a value, empty values and values over `max_bytes`; the message lists the names.
void check_secret_values(const std::vector<SecretValue>& values, const std::vector<SecretDecl>& declared,
                         std::uint32_t max_bytes, const std::filesystem::path& file);

// Where `tdx secrets push` delivers.
struct PushTarget {
  enum class Kind { ssh, vsock, unix_socket };
  Kind kind = Kind::ssh;
  std::string host;            // ssh
  int port = 22;               // ssh port
  std::string user = "tdx-secrets";
  std::string identity;        // -i
  std::string known_hosts;     // -o UserKnownHostsFile=
  StringList ssh_options;      // -o OPTION, before tdx's own (ssh keeps the first value it sees)
  std::uint32_t cid = 0;       // vsock
  std::uint32_t vsock_port = 7070;
  std::string unix_path;       // unix_socket
  int timeout_seconds = 60;    // how long to wait for each answer of the VM
  std::string describe() const;
  std::string transport() const;  // "ssh", "vsock" or "unix"
};

struct PushedSecret {
  std::string name;
  std::size_t bytes = 0;
  bool accepted = false;  // the VM staged it
  bool stored = false;    // the VM reported it in place after commit
};

struct PushReport {
  std::string target;
  std::vector<PushedSecret> secrets;
  StringList missing;  // declared secrets the VM still does not have in place
};

// The ssh command line for a push: BatchMode, no forwarding, the target's key, known_hosts and -o options.
StringList ssh_argv(const PushTarget& target);

// Runs one delivery session. Throws tdx::Error (the VM's refusal, an ssh failure explained,
// an unreachable socket); the messages never hold a value.
PushReport push_secrets(const PushTarget& target, const std::vector<SecretValue>& values);

// `text` with every value of at least 4 bytes replaced by "[value withheld]": for messages that
// quote another program (ssh, the VM), so even a misbehaving one cannot make tdx print a value.
std::string withhold_values(std::string text, const std::vector<SecretValue>& values);

}  // namespace tdx
