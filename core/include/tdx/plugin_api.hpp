// The versioned interface between the tdx host and its plugins.
//
// A plugin is a shared object that exports exactly one C symbol,
// `tdx_plugin_descriptor`, returning a pointer to a static Descriptor. The host
// reads abi_major/abi_minor/struct_size before touching any other field and
// refuses a plugin whose major differs or whose minor is newer than its own.
// Host and plugin must be built with the same C++ standard library, which is
// what the major version promises.
#pragma once

#include <cstdint>
#include <tdx/spec.hpp>

namespace tdx::plugin {

// 2: DeliveryPlan gained users (and UserSpec create_home).
inline constexpr std::uint32_t k_abi_major = 2;
inline constexpr std::uint32_t k_abi_minor = 0;
inline constexpr const char* k_entry_symbol = "tdx_plugin_descriptor";

enum class Kind : std::uint32_t { builder = 1, secret_delivery = 2 };

struct Descriptor {
  std::uint32_t abi_major;
  std::uint32_t abi_minor;
  std::uint32_t struct_size;
  Kind kind;
  const char* name;
  const char* version;
  const char* description;
  void* (*create)();          // returns a new Builder* or SecretDelivery*, by kind
  void (*destroy)(void*);
};

class Builder {
 public:
  virtual ~Builder() = default;
  // Every problem with the spec, each a full sentence; empty when usable.
  virtual StringList validate(const BuildSpec& spec) const = 0;
  // Builder-specific inputs of the cache key, as name -> canonical value.
  virtual StringMap key_fields(const BuildSpec& spec) const = 0;
  // The commands that turn the source into artifacts; throws when it cannot.
  virtual BuildPlan plan(const BuildSpec& spec) const = 0;
};

class SecretDelivery {
 public:
  virtual ~SecretDelivery() = default;
  // Every problem with the backend's options; empty when usable.
  virtual StringList validate(const DeliveryConfig& config) const = 0;
  // The files, packages and units the image needs to receive the secrets.
  virtual DeliveryPlan plan(const DeliveryConfig& config, const std::vector<SecretDecl>& secrets) const = 0;
};

}  // namespace tdx::plugin

#define TDX_PLUGIN_EXPORT extern "C" __attribute__((visibility("default")))

// Defines the entry point for a plugin whose implementation class is `Impl`.
#define TDX_DEFINE_PLUGIN(KIND, Interface, Impl, NAME, VERSION, DESCRIPTION)                    \
  TDX_PLUGIN_EXPORT const ::tdx::plugin::Descriptor* tdx_plugin_descriptor() {                 \
    static const ::tdx::plugin::Descriptor d{                                                   \
        ::tdx::plugin::k_abi_major, ::tdx::plugin::k_abi_minor,                                 \
        sizeof(::tdx::plugin::Descriptor), KIND, NAME, VERSION, DESCRIPTION,                    \
        []() -> void* { return static_cast<Interface*>(new Impl()); },                          \
        [](void* p) { delete static_cast<Interface*>(p); }};                                    \
    return &d;                                                                                  \
  }

#define TDX_BUILDER_PLUGIN(Impl, NAME, VERSION, DESCRIPTION) \
  TDX_DEFINE_PLUGIN(::tdx::plugin::Kind::builder, ::tdx::plugin::Builder, Impl, NAME, VERSION, DESCRIPTION)
#define TDX_DELIVERY_PLUGIN(Impl, NAME, VERSION, DESCRIPTION) \
  TDX_DEFINE_PLUGIN(::tdx::plugin::Kind::secret_delivery, ::tdx::plugin::SecretDelivery, Impl, NAME, VERSION, DESCRIPTION)
