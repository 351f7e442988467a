// Shared by the stock secret-delivery plugins.
#pragma once

#include <stdexcept>
#include <string>
#include <tdx/plugin_util.hpp>

namespace tdx::stock {

inline void reject_unknown(const DeliveryConfig& c, const StringList& known, StringList& problems) {
  for (const auto& [key, value] : c.options) {
    bool ok = false;
    for (const auto& k : known) ok = ok || k == key;
    if (!ok) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      problems.push_back("secret delivery '" + c.backend + "': unknown option '" + key + "' (accepted: " +
                         (list.empty() ? std::string("none") : list) + ")");
    }
  }
}

template <typename T>
const T* delivery_option(const DeliveryConfig& c, const std::string& key, StringList& problems) {
  auto it = c.options.find(key);
  if (it == c.options.end()) return nullptr;
  if (const T* v = std::get_if<T>(&it->second)) return v;
  problems.push_back("secret delivery '" + c.backend + "': option '" + key + "' has type " +
                     plugin::option_type_name(it->second));
  return nullptr;
}

[[noreturn]] inline void delivery_not_available(const DeliveryConfig& c) {
  throw std::runtime_error("the '" + c.backend +
                           "' secret delivery backend checks its options but does not generate the image's "
                           "receiver yet; build without secret_delivery() for now");
}

}  // namespace tdx::stock
