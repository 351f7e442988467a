// Shared by the stock secret-delivery plugins.
#pragma once

#include <stdexcept>
#include <string>
#include <tdx/plugin_util.hpp>

namespace tdx::stock {

inline void reject_unknown(const DeliveryConfig& c, const StringList& known, StringList& problems) {
  plugin::reject_unknown_keys(c.options, known, "secret delivery '" + c.backend + "'", problems);
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
