#include <tdx/secrets.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include <tdx/error.hpp>
#include <tdx/fsutil.hpp>
#include <tdx/secret_protocol.hpp>

namespace fs = std::filesystem;
namespace sp = tdx::secret_protocol;

namespace tdx {

SecretValue::~SecretValue() { sp::wipe(value); }

namespace {

// A view, not a copy: the lines hold values, and every copy would need wiping.
std::string_view trim(std::string_view s) {
  std::size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  std::size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

// The bytes of a value file, capped so that a wrong path (a disk image, /dev/zero) fails fast.
std::string read_value_file(const fs::path& path, const std::string& where) {
  try {
    return read_file(path, sp::k_max_value);
  } catch (const Error& e) {
    throw Error(where + ": " + e.what() + (std::string(e.what()).find("larger") != std::string::npos
                                                ? ", the most a secret can hold"
                                                : ""));
  }
}

std::string join_names(const StringList& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

std::vector<SecretValue> parse_secrets_env(std::string_view text, const fs::path& file, const fs::path& base_dir) {
  std::vector<SecretValue> out;
  std::map<std::string, int> first_line;
  int number = 0;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string where = file.string() + ":" + std::to_string(number);
    std::string_view stripped = trim(line);
    if (stripped.empty() || stripped[0] == '#') continue;
    std::size_t eq = line.find('=');
    // The line is never quoted: without a NAME= it may be a value that lost its name.
    if (eq == std::string_view::npos)
      throw Error(where + ": expected NAME=value or NAME=@path (the line is not shown: it may hold a value)");
    std::string name(trim(line.substr(0, eq)));
    if (!sp::is_valid_name(name))
      throw Error(where + ": the text before '=' is not a secret name (letters, digits and '_', not starting with a "
                          "digit); the line is not shown: it may hold a value");
    if (auto [it, fresh] = first_line.emplace(name, number); !fresh)
      throw Error(where + ": " + name + " is set again (first at line " + std::to_string(it->second) +
                  "); each secret is set once");
    // Blanks around the value are layout (editors add them unseen); exact bytes come from @path.
    std::string_view raw = trim(line.substr(eq + 1));
    SecretValue v;
    v.name = name;
    v.line = number;
    if (!raw.empty() && raw[0] == '@') {
      std::string rel(trim(raw.substr(1)));
      if (rel.empty()) throw Error(where + ": " + name + "=@ needs a file name after '@'");
      fs::path path = fs::path(rel).is_absolute() ? fs::path(rel) : base_dir / rel;
      v.value = read_value_file(path, where + " (" + name + ")");
    } else {
      v.value.assign(raw);
    }
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<SecretValue> read_secrets_env(const fs::path& file) {
  fs::path absolute = fs::absolute(file);
  std::string text = read_value_file(absolute, "secrets file");
  try {
    auto out = parse_secrets_env(text, file, absolute.parent_path());
    sp::wipe(text);
    return out;
  } catch (...) {
    sp::wipe(text);
    throw;
  }
}

std::uint32_t secret_max_bytes(const std::optional<DeliveryConfig>& delivery) {
  if (delivery)
    if (auto it = delivery->options.find("max_size"); it != delivery->options.end())
      if (const auto* n = std::get_if<std::int64_t>(&it->second); n && *n > 0)
        return static_cast<std::uint32_t>(std::min<std::int64_t>(*n, sp::k_max_value));
  return sp::k_default_max_value;
}

void check_secret_values(const std::vector<SecretValue>& values, const std::vector<SecretDecl>& declared,
                         std::uint32_t max_bytes, const fs::path& file) {
  StringList unknown, missing, oversized, empty;
  StringList names;
  for (const auto& d : declared) names.push_back(d.name);
  for (const auto& v : values) {
    if (std::find(names.begin(), names.end(), v.name) == names.end()) {
      std::string hint = did_you_mean(v.name, names);
      unknown.push_back(v.name + " (line " + std::to_string(v.line) + (hint.empty() ? "" : "; did you mean " + hint + "?") + ")");
    } else if (v.value.empty()) {
      empty.push_back(v.name + " (line " + std::to_string(v.line) + ")");
    } else if (v.value.size() > max_bytes) {
      oversized.push_back(v.name + " (line " + std::to_string(v.line) + ": " + std::to_string(v.value.size()) + " bytes)");
    }
  }
  for (const auto& d : declared)
    if (std::none_of(values.begin(), values.end(), [&](const SecretValue& v) { return v.name == d.name; }))
      missing.push_back(d.name);
  std::string message;
  if (!unknown.empty())
    message += "\n  not declared by the TDXfile: " + join_names(unknown) + "\n    declared: " +
               (names.empty() ? std::string("none") : join_names(names));
  if (!missing.empty())
    message += "\n  declared but not set in " + file.string() + ": " + join_names(missing) +
               "\n    add a line NAME=value or NAME=@path for each";
  if (!empty.empty())
    message += "\n  empty (an unset variable, or a file with no bytes?): " + join_names(empty);
  if (!oversized.empty())
    message += "\n  larger than the receiver's cap of " + std::to_string(max_bytes) + " bytes: " + join_names(oversized) +
               "\n    raise it with image.secret_delivery(..., max_size=N) (at most " + std::to_string(sp::k_max_value) + ")";
  if (!message.empty()) throw Error(file.string() + " does not match the image's secrets; nothing was sent:" + message);
}

std::string withhold_values(std::string text, const std::vector<SecretValue>& values) {
  for (const auto& v : values) {
    if (v.value.size() < 4) continue;
    const std::string hidden = "[value withheld]";
    for (std::size_t at = text.find(v.value); at != std::string::npos; at = text.find(v.value, at + hidden.size()))
      text.replace(at, v.value.size(), hidden);
  }
  return text;
}

}  // namespace tdx
