// /etc/tdx/secrets.list: the secrets an image declares, written at build time by the
// delivery plugins and read by the receiver (format: /work/notes/secrets-interface.md,
// docs/secret-delivery.md).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tdx::receiver {

// Everything the receiver refuses; the message names the input and never holds a value.
class ReceiverError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct DeclaredSecret {
  std::string name;
  std::string dest;   // absolute, normalized, inside the receiver's root
  std::string owner;
  std::string group;  // empty: the owner's primary group
  unsigned mode = 0400;
  std::uint32_t max_bytes = 0;
};

inline constexpr std::string_view k_secrets_list_header = "tdx-secrets 1";
inline constexpr std::size_t k_max_declared = 4096;

// Parses the file's text; `file` names it in errors ("<file>:<line>: ...").
std::vector<DeclaredSecret> parse_secrets_list(std::string_view text, const std::string& file);
std::vector<DeclaredSecret> load_secrets_list(const std::string& path);

const DeclaredSecret* find_secret(const std::vector<DeclaredSecret>& list, std::string_view name);

// "0440" for 0440.
std::string mode_string(unsigned mode);

}  // namespace tdx::receiver
