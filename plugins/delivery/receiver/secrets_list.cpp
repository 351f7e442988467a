#include "secrets_list.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include <tdx/secret_protocol.hpp>

namespace tdx::receiver {

namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    std::size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

// Absolute, no empty, "." or ".." components, no trailing slash, not "/" itself.
bool is_normalized_absolute(std::string_view path) {
  if (path.size() < 2 || path[0] != '/' || path.back() == '/') return false;
  for (auto part : split(path.substr(1), '/'))
    if (part.empty() || part == "." || part == "..") return false;
  return path.find('\0') == std::string_view::npos;
}

// Account names as useradd accepts them, without shell or path characters.
bool is_account_name(std::string_view s) {
  if (s.empty() || s.size() > 32 || s[0] == '-') return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
          c == '.'))
      return false;
  return true;
}

bool parse_mode(std::string_view s, unsigned& mode) {
  if (s.size() < 3 || s.size() > 4 || (s.size() == 4 && s[0] != '0')) return false;
  mode = 0;
  for (char c : s) {
    if (c < '0' || c > '7') return false;
    mode = mode * 8 + static_cast<unsigned>(c - '0');
  }
  return true;
}

bool parse_size(std::string_view s, std::uint32_t& out) {
  if (s.empty() || s.size() > 10 || (s.size() > 1 && s[0] == '0')) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v == 0 || v > secret_protocol::k_max_value) return false;
  out = static_cast<std::uint32_t>(v);
  return true;
}

}  // namespace

std::string mode_string(unsigned mode) {
  std::string out = "0000";
  for (int i = 3; i >= 0; --i, mode >>= 3) out[static_cast<std::size_t>(i)] = static_cast<char>('0' + (mode & 7));
  return out;
}

std::vector<DeclaredSecret> parse_secrets_list(std::string_view text, const std::string& file) {
  auto lines = split(text, '\n');
  if (!text.empty() && text.back() == '\n') lines.pop_back();
  auto fail = [&](std::size_t index, const std::string& what) -> ReceiverError {
    return ReceiverError(file + ":" + std::to_string(index + 1) + ": " + what);
  };
  if (lines.empty() || lines[0] != k_secrets_list_header)
    throw fail(0, "the first line must be exactly '" + std::string(k_secrets_list_header) +
                      "' (a secrets.list written by this version of tdx)");
  std::vector<DeclaredSecret> out;
  std::set<std::string, std::less<>> names, dests;
  if (lines.size() > k_max_declared + 1)
    throw fail(k_max_declared + 1, "more than " + std::to_string(k_max_declared) + " secrets are declared");
  for (std::size_t i = 1; i < lines.size(); ++i) {
    auto fields = split(lines[i], '\t');
    if (fields.size() != 6)
      throw fail(i, "expected 6 TAB-separated fields (name, dest, owner, group, mode, max_bytes), found " +
                        std::to_string(fields.size()));
    DeclaredSecret s;
    if (!secret_protocol::is_valid_name(fields[0]))
      throw fail(i, "'" + std::string(fields[0]) + "' is not a secret name ([A-Za-z_][A-Za-z0-9_]*, at most " +
                        std::to_string(secret_protocol::k_max_name) + " characters)");
    s.name = fields[0];
    if (!is_normalized_absolute(fields[1]))
      throw fail(i, s.name + ": destination '" + std::string(fields[1]) +
                        "' is not an absolute normalized path (no '.', '..', '//' or trailing '/')");
    s.dest = fields[1];
    if (!is_account_name(fields[2])) throw fail(i, s.name + ": owner '" + std::string(fields[2]) + "' is not a user name");
    s.owner = fields[2];
    if (!fields[3].empty() && !is_account_name(fields[3]))
      throw fail(i, s.name + ": group '" + std::string(fields[3]) + "' is not a group name");
    s.group = fields[3];
    if (!parse_mode(fields[4], s.mode))
      throw fail(i, s.name + ": mode '" + std::string(fields[4]) + "' is not an octal mode like 0440");
    if (!parse_size(fields[5], s.max_bytes))
      throw fail(i, s.name + ": max_bytes '" + std::string(fields[5]) + "' is not a size from 1 to " +
                        std::to_string(secret_protocol::k_max_value));
    if (!names.insert(s.name).second) throw fail(i, s.name + " is declared twice");
    if (!dests.insert(s.dest).second) throw fail(i, s.name + ": destination " + s.dest + " is declared twice");
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<DeclaredSecret> load_secrets_list(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw ReceiverError("cannot read the declared secrets " + path + ": " + std::strerror(errno) +
                        " (the image's delivery backend writes it; pass --config FILE for another)");
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > (4u << 20)) {
      ::close(fd);
      throw ReceiverError(path + ": larger than 4 MiB; this is not a secrets.list");
    }
  }
  ::close(fd);
  return parse_secrets_list(text, path);
}

const DeclaredSecret* find_secret(const std::vector<DeclaredSecret>& list, std::string_view name) {
  for (const auto& s : list)
    if (s.name == name) return &s;
  return nullptr;
}

}  // namespace tdx::receiver
