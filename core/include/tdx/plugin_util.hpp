// Small header-only helpers for plugin authors: typed access to BuildSpec options.
#pragma once

#include <optional>
#include <string>
#include <tdx/spec.hpp>

namespace tdx::plugin {

inline const char* option_type_name(const OptionValue& v) {
  switch (v.index()) {
    case 0: return "bool";
    case 1: return "int";
    case 2: return "str";
    case 3: return "list of str";
    default: return "dict of str";
  }
}

// The option's value if present and of type T; `problems` gets a sentence if the type is wrong.
template <typename T>
std::optional<T> option(const BuildSpec& spec, const std::string& key, StringList* problems = nullptr) {
  auto it = spec.options.find(key);
  if (it == spec.options.end()) return std::nullopt;
  if (const T* v = std::get_if<T>(&it->second)) return *v;
  if (problems) {
    problems->push_back(spec.builder + " build '" + spec.name + "': option '" + key + "' has type " +
                        option_type_name(it->second) + ", which this builder does not accept");
  }
  return std::nullopt;
}

// Options nobody asked for, each as a sentence naming `what` and the accepted names.
inline void reject_unknown_keys(const Options& options, const StringList& known, const std::string& what,
                                StringList& problems) {
  for (const auto& [key, value] : options) {
    bool ok = false;
    for (const auto& k : known) ok = ok || k == key;
    if (!ok) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      problems.push_back(what + ": unknown parameter '" + key + "' (accepted: " + (list.empty() ? "none" : list) + ")");
    }
  }
}

inline void reject_unknown_options(const BuildSpec& spec, const StringList& known, StringList& problems) {
  reject_unknown_keys(spec.options, known, spec.builder + " build '" + spec.name + "'", problems);
}

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

// The fields of `text` between `sep`s (n separators give n + 1 fields, empty ones included).
inline StringList split(const std::string& text, char sep) {
  StringList out;
  std::string::size_type start = 0;
  for (auto end = text.find(sep); end != std::string::npos; end = text.find(sep, start = end + 1))
    out.push_back(text.substr(start, end - start));
  out.push_back(text.substr(start));
  return out;
}

}  // namespace tdx::plugin
