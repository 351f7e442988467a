// Finds, checks and loads plugins, and keeps them in a registry keyed by name.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>
#include <tdx/plugin_api.hpp>

namespace tdx {

struct PluginRecord {
  std::filesystem::path path;
  std::string sha256;            // of the shared object file
  bool loaded = false;
  std::string error;             // why it did not load
  std::string name, version, description;
  plugin::Kind kind = plugin::Kind::builder;
  std::uint32_t abi_major = 0, abi_minor = 0;
  const plugin::Descriptor* descriptor = nullptr;
};

std::string kind_name(plugin::Kind kind);

class PluginRegistry {
 public:
  // The process-wide registry, loaded on first use from default_search_path().
  static PluginRegistry& instance();

  // The install's plugin folder, then each entry of TDX_PLUGIN_PATH.
  static std::vector<std::filesystem::path> default_search_path();

  explicit PluginRegistry(const std::vector<std::filesystem::path>& search_path);

  const std::vector<PluginRecord>& records() const { return m_records; }
  StringList names(plugin::Kind kind) const;
  const PluginRecord* find(plugin::Kind kind, const std::string& name) const;

  // Throws tdx::Error naming the plugin and suggesting a close name when missing.
  class GuardedBuilder builder(const std::string& name) const;
  class GuardedDelivery delivery(const std::string& name) const;

 private:
  void load_file(const std::filesystem::path& path);
  const PluginRecord& require(plugin::Kind kind, const std::string& name) const;
  std::vector<PluginRecord> m_records;
};

// Calls into a plugin, turning anything it throws into a tdx::Error that names it.
class GuardedBuilder {
 public:
  GuardedBuilder(const PluginRecord& record);
  StringList validate(const BuildSpec& spec) const;
  StringMap key_fields(const BuildSpec& spec) const;
  BuildPlan plan(const BuildSpec& spec) const;
  const std::string& name() const { return m_name; }
  const std::string& version() const { return m_version; }

 private:
  std::string m_name, m_version;
  std::shared_ptr<plugin::Builder> m_impl;
};

class GuardedDelivery {
 public:
  GuardedDelivery(const PluginRecord& record);
  StringList validate(const DeliveryConfig& config) const;
  DeliveryPlan plan(const DeliveryConfig& config, const std::vector<SecretDecl>& secrets) const;
  const std::string& name() const { return m_name; }

 private:
  std::string m_name, m_version;
  std::shared_ptr<plugin::SecretDelivery> m_impl;
};

}  // namespace tdx
