#include <tdx/json.hpp>

#include <cmath>
#include <cstdio>
#include <type_traits>
#include <variant>

namespace tdx {

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {  // DEL too: the lockfile's TOML strings need it escaped
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

void JsonWriter::newline() {
  m_out += '\n';
  m_out.append(2 * m_first.size(), ' ');
}

void JsonWriter::before_value() {
  if (m_after_key) {
    m_after_key = false;
    return;
  }
  if (!m_first.empty()) {
    if (!m_first.back()) m_out += ',';
    m_first.back() = false;
    newline();
  }
}

JsonWriter& JsonWriter::begin_object() {
  before_value();
  m_out += '{';
  m_first.push_back(true);
  return *this;
}

JsonWriter& JsonWriter::close(char bracket) {
  bool empty = m_first.back();
  m_first.pop_back();
  if (!empty) newline();
  m_out += bracket;
  return *this;
}

JsonWriter& JsonWriter::end_object() { return close('}'); }

JsonWriter& JsonWriter::begin_array() {
  before_value();
  m_out += '[';
  m_first.push_back(true);
  return *this;
}

JsonWriter& JsonWriter::end_array() { return close(']'); }

JsonWriter& JsonWriter::key(std::string_view k) {
  before_value();
  m_out += json_quote(k) + ": ";
  m_after_key = true;
  return *this;
}

JsonWriter& JsonWriter::value(std::string_view s) {
  before_value();
  m_out += json_quote(s);
  return *this;
}

JsonWriter& JsonWriter::value(std::int64_t n) {
  before_value();
  m_out += std::to_string(n);
  return *this;
}

JsonWriter& JsonWriter::value(double x) {
  before_value();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", std::isfinite(x) ? x : 0.0);  // milliseconds are enough here
  m_out += buf;
  return *this;
}

JsonWriter& JsonWriter::value(bool b) {
  before_value();
  m_out += b ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::null() {
  before_value();
  m_out += "null";
  return *this;
}

JsonWriter& JsonWriter::strings(const std::vector<std::string>& list) {
  begin_array();
  for (const auto& s : list) value(s);
  return end_array();
}

void write_string_map(JsonWriter& w, const StringMap& m) {
  w.begin_object();
  for (const auto& [k, v] : m) w.key(k).value(v);
  w.end_object();
}

void write_option(JsonWriter& w, const OptionValue& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, StringList>) w.strings(x);
        else if constexpr (std::is_same_v<T, StringMap>) write_string_map(w, x);
        else w.value(x);
      },
      v);
}

}  // namespace tdx
