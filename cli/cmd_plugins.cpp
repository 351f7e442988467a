// tdx plugins list: every plugin found, whether it loaded, and what it is.
#include <iostream>

#include <tdx/json.hpp>
#include <tdx/plugin_host.hpp>

#include "context.hpp"

namespace tdx::cli {

namespace {
std::string abi(const PluginRecord& r) {
  return r.abi_major || r.abi_minor ? std::to_string(r.abi_major) + "." + std::to_string(r.abi_minor) : "-";
}

void print_json(const std::vector<PluginRecord>& records) {
  JsonWriter w;
  w.begin_object().key("host_interface").value(std::to_string(plugin::k_abi_major) + "." + std::to_string(plugin::k_abi_minor));
  w.key("search_path").begin_array();
  for (const auto& p : PluginRegistry::default_search_path()) w.value(p.string());
  w.end_array().key("plugins").begin_array();
  for (const auto& r : records) {
    w.begin_object().key("name").value(r.name).key("kind");
    if (r.loaded) w.value(kind_name(r.kind)); else w.null();
    w.key("version").value(r.version).key("interface").value(abi(r)).key("path").value(r.path.string());
    w.key("sha256").value(r.sha256).key("loaded").value(r.loaded).key("error").value(r.error);
    w.key("description").value(r.description).end_object();
  }
  w.end_array().end_object();
  std::cout << w.str();
}

void print_table(const std::vector<PluginRecord>& records) {
  std::cout << "tdx plugin interface " << plugin::k_abi_major << "." << plugin::k_abi_minor << "; search path:";
  for (const auto& p : PluginRegistry::default_search_path()) std::cout << " " << p.string();
  std::cout << "\n\n";
  for (const auto& r : records) {
    if (r.loaded) {
      std::cout << r.name << "  (" << kind_name(r.kind) << ", version " << r.version << ", interface " << abi(r)
                << ")  loaded\n    " << r.description << "\n";
    } else {
      std::cout << r.path.filename().string() << "  NOT LOADED: " << r.error << "\n";
    }
    std::cout << "    " << r.path.string() << "\n    sha256 " << r.sha256 << "\n";
  }
}
}  // namespace

void add_plugins_command(CLI::App& app, Context&) {
  auto* plugins = app.add_subcommand("plugins", "Audit the builder and secret-delivery plugins tdx loads");
  plugins->require_subcommand(1);
  auto* list = plugins->add_subcommand(
      "list",
      "List every plugin found in the install's plugin folder and on TDX_PLUGIN_PATH: name, kind, version,\n"
      "interface version, file, sha256 of the shared object, and whether it loaded (or why not)");
  auto json = std::make_shared<bool>(false);
  list->add_flag("--json", *json, "Machine-readable output");
  list->callback([json] {
    const auto& records = PluginRegistry::instance().records();
    if (*json) print_json(records);
    else print_table(records);
  });
}

}  // namespace tdx::cli
