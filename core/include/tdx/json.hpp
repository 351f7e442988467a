// A minimal JSON writer: enough for manifests and --json output, no parsing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>
#include <tdx/spec.hpp>

namespace tdx {

std::string json_quote(std::string_view s);

// Builds pretty-printed JSON incrementally; keys are written in call order.
class JsonWriter {
 public:
  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view k);
  JsonWriter& value(std::string_view s);
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(const std::string& s) { return value(std::string_view(s)); }
  JsonWriter& value(std::int64_t n);
  JsonWriter& value(int n) { return value(static_cast<std::int64_t>(n)); }
  JsonWriter& value(bool b);
  JsonWriter& value(double x);  // fixed, three decimals
  JsonWriter& null();
  JsonWriter& strings(const std::vector<std::string>& list);
  std::string str() const { return m_out + "\n"; }

 private:
  void before_value();
  JsonWriter& close(char bracket);
  void newline();
  std::string m_out;
  std::vector<bool> m_first;  // per open container: nothing written yet
  bool m_after_key = false;
};

void write_option(JsonWriter& w, const OptionValue& v);
void write_string_map(JsonWriter& w, const StringMap& m);

}  // namespace tdx
