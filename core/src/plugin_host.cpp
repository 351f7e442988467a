#define BOOST_DLL_USE_STD_FS
#include <tdx/plugin_host.hpp>

#include <boost/dll/shared_library.hpp>

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include <tdx/error.hpp>
#include <tdx/hash.hpp>
#include <tdx/paths.hpp>

namespace fs = std::filesystem;

namespace tdx {

namespace {

// Loaded libraries stay open until the process exits: plugin objects and the
// descriptors' strings live in them. Deliberately never destroyed.
std::vector<boost::dll::shared_library>& open_libraries() {
  static auto* libraries = new std::vector<boost::dll::shared_library>();
  return *libraries;
}

std::string version_string(std::uint32_t major, std::uint32_t minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

}  // namespace

std::string kind_name(plugin::Kind kind) {
  return kind == plugin::Kind::builder ? "builder" : "secret-delivery";
}

std::vector<fs::path> PluginRegistry::default_search_path() {
  std::vector<fs::path> path{plugin_dir()};
  if (const char* extra = std::getenv("TDX_PLUGIN_PATH"); extra && *extra) {
    std::stringstream ss(extra);
    std::string entry;
    while (std::getline(ss, entry, ':'))
      if (!entry.empty()) path.emplace_back(entry);
  }
  return path;
}

PluginRegistry& PluginRegistry::instance() {
  static PluginRegistry registry(default_search_path());
  return registry;
}

PluginRegistry::PluginRegistry(const std::vector<fs::path>& search_path) {
  for (const auto& entry : search_path) {
    std::error_code ec;
    if (fs::is_regular_file(entry, ec)) {
      load_file(entry);
      continue;
    }
    if (!fs::is_directory(entry, ec)) continue;
    std::vector<fs::path> files;
    for (const auto& f : fs::directory_iterator(entry, ec))
      if (f.path().extension() == ".so") files.push_back(f.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) load_file(f);
  }
}

void PluginRegistry::load_file(const fs::path& path) {
  PluginRecord rec;
  rec.path = fs::absolute(path);
  try {
    rec.sha256 = to_hex(sha256_file(path));
    boost::dll::shared_library lib(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
    if (!lib.has(plugin::k_entry_symbol))
      throw Error(std::string("no '") + plugin::k_entry_symbol + "' symbol: not a tdx plugin");
    auto entry = lib.get<const plugin::Descriptor*()>(plugin::k_entry_symbol);
    const plugin::Descriptor* d = entry();
    if (!d) throw Error("its entry point returned no descriptor");
    // Only the three leading fields are read before the versions are known to match.
    rec.abi_major = d->abi_major;
    rec.abi_minor = d->abi_minor;
    std::string ours = version_string(plugin::k_abi_major, plugin::k_abi_minor);
    std::string theirs = version_string(d->abi_major, d->abi_minor);
    if (d->abi_major != plugin::k_abi_major)
      throw Error("plugin interface " + theirs + " is incompatible with this tdx's interface " + ours +
                  " (major versions differ); rebuild the plugin against this tdx's headers");
    if (d->abi_minor > plugin::k_abi_minor)
      throw Error("plugin interface " + theirs + " is newer than this tdx's interface " + ours + "; upgrade tdx");
    if (d->struct_size < sizeof(plugin::Descriptor))
      throw Error("descriptor is " + std::to_string(d->struct_size) + " bytes, expected at least " +
                  std::to_string(sizeof(plugin::Descriptor)));
    if (d->kind != plugin::Kind::builder && d->kind != plugin::Kind::secret_delivery)
      throw Error("unknown plugin kind " + std::to_string(static_cast<std::uint32_t>(d->kind)));
    if (!d->name || !*d->name || !d->version || !d->create || !d->destroy)
      throw Error("descriptor lacks a name, version, create or destroy");
    rec.name = d->name;
    rec.version = d->version;
    rec.description = d->description ? d->description : "";
    rec.kind = d->kind;
    if (const PluginRecord* other = find(rec.kind, rec.name))
      throw Error("duplicate " + kind_name(rec.kind) + " '" + rec.name + "': already provided by " + other->path.string());
    rec.descriptor = d;
    rec.loaded = true;
    open_libraries().push_back(std::move(lib));
  } catch (const std::exception& e) {
    rec.loaded = false;
    rec.descriptor = nullptr;
    rec.error = e.what();
  }
  m_records.push_back(std::move(rec));
}

StringList PluginRegistry::names(plugin::Kind kind) const {
  StringList out;
  for (const auto& r : m_records)
    if (r.loaded && r.kind == kind) out.push_back(r.name);
  std::sort(out.begin(), out.end());
  return out;
}

const PluginRecord* PluginRegistry::find(plugin::Kind kind, const std::string& name) const {
  for (const auto& r : m_records)
    if (r.loaded && r.kind == kind && r.name == name) return &r;
  return nullptr;
}

const PluginRecord& PluginRegistry::require(plugin::Kind kind, const std::string& name) const {
  if (const PluginRecord* r = find(kind, name)) return *r;
  StringList known = names(kind);
  std::string hint = did_you_mean(name, known);
  std::string list;
  for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
  std::string message = "unknown " + kind_name(kind) + " '" + name + "'";
  if (!hint.empty()) message += " (did you mean '" + hint + "'?)";
  message += "; available: " + (list.empty() ? std::string("none") : list);
  for (const auto& r : m_records)
    if (!r.loaded && r.name == name) message += "\n  note: a plugin named '" + name + "' failed to load: " + r.error;
  message += "\n  hint: `tdx plugins list` shows what was found; third-party plugins go on TDX_PLUGIN_PATH";
  throw Error(message);
}

GuardedBuilder PluginRegistry::builder(const std::string& name) const {
  return GuardedBuilder(require(plugin::Kind::builder, name));
}

GuardedDelivery PluginRegistry::delivery(const std::string& name) const {
  return GuardedDelivery(require(plugin::Kind::secret_delivery, name));
}

namespace {
template <typename Interface>
std::shared_ptr<Interface> instantiate(const PluginRecord& rec) {
  const plugin::Descriptor* d = rec.descriptor;
  void* raw = nullptr;
  try {
    raw = d->create();
  } catch (const std::exception& e) {
    throw Error("plugin '" + rec.name + "' (" + rec.path.string() + ") failed to start: " + e.what());
  }
  if (!raw) throw Error("plugin '" + rec.name + "' (" + rec.path.string() + ") returned no instance");
  auto destroy = d->destroy;
  return std::shared_ptr<Interface>(static_cast<Interface*>(raw), [destroy](Interface* p) { destroy(p); });
}

template <typename F>
auto guarded(const std::string& what, const std::string& name, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(what + " plugin '" + name + "': " + e.what());
  } catch (...) {
    throw Error(what + " plugin '" + name + "' threw an unknown exception");
  }
}
}  // namespace

GuardedBuilder::GuardedBuilder(const PluginRecord& record)
    : m_name(record.name), m_version(record.version), m_impl(instantiate<plugin::Builder>(record)) {}

StringList GuardedBuilder::validate(const BuildSpec& spec) const {
  return guarded("builder", m_name, [&] { return m_impl->validate(spec); });
}
StringMap GuardedBuilder::key_fields(const BuildSpec& spec) const {
  return guarded("builder", m_name, [&] { return m_impl->key_fields(spec); });
}
BuildPlan GuardedBuilder::plan(const BuildSpec& spec) const {
  return guarded("builder", m_name, [&] { return m_impl->plan(spec); });
}

GuardedDelivery::GuardedDelivery(const PluginRecord& record)
    : m_name(record.name), m_version(record.version), m_impl(instantiate<plugin::SecretDelivery>(record)) {}

StringList GuardedDelivery::validate(const DeliveryConfig& config) const {
  return guarded("secret-delivery", m_name, [&] { return m_impl->validate(config); });
}
DeliveryPlan GuardedDelivery::plan(const DeliveryConfig& config, const std::vector<SecretDecl>& secrets) const {
  return guarded("secret-delivery", m_name, [&] { return m_impl->plan(config, secrets); });
}

}  // namespace tdx
