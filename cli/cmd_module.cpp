// tdx module hash|validate: tools for module authors.
#include <iostream>

#include <tdx/error.hpp>
#include <tdx/hash.hpp>
#include <tdx/json.hpp>

#include "context.hpp"
#include "embed.hpp"

namespace fs = std::filesystem;

namespace tdx::cli {

namespace {

fs::path module_folder(const std::string& path, const char* command) {
  std::error_code ec;
  if (!fs::is_directory(path, ec))
    throw Error(std::string("module ") + command + ": '" + path + "' is not a folder" +
                (fs::exists(path, ec) ? "" : " (it does not exist)") +
                "\n  hint: give the module's folder, the one holding pyproject.toml");
  fs::path folder = fs::absolute(path).lexically_normal();
  return folder.has_filename() ? folder : folder.parent_path();
}

void hash(const std::string& path, bool json) {
  Digest d = tree_hash(module_folder(path, "hash"), TreeSelection::module_source);
  if (json) {
    std::cout << JsonWriter().begin_object().key("path").value(path).key("h1").value(h1_string(d))
                     .key("sha256").value(sha256_string(d)).end_object().str();
  } else {
    std::cout << h1_string(d) << "\n" << sha256_string(d) << "\n";
  }
}

void validate(const std::string& path, bool json) {
  fs::path folder = module_folder(path, "validate");
  python::TdxfileSession session;
  python::ModuleCheck check = session.validate_module(folder);
  if (json) {
    JsonWriter w;
    w.begin_object().key("path").value(folder.string()).key("valid").value(check.problems.empty());
    w.key("name").value(check.name).key("version").value(check.version).key("package").value(check.package);
    w.key("api").value(check.api).key("problems").strings(check.problems).key("notes").strings(check.notes);
    std::cout << w.end_object().str();
  } else {
    std::string what = check.name.empty() ? folder.string() : check.name + (check.version.empty() ? "" : " " + check.version);
    if (!check.package.empty()) what += " (package " + check.package + (check.api.empty() ? "" : ", " + check.api) + ")";
    for (const auto& n : check.notes) std::cout << "note: " << n << "\n";
    if (check.problems.empty()) {
      std::cout << "ok: " << what << " is a valid tdx module\n";
    } else {
      std::cout << what << ": " << check.problems.size() << " problem" << (check.problems.size() == 1 ? "" : "s") << "\n";
      for (const auto& p : check.problems) std::cout << "  problem: " << p << "\n";
    }
  }
  if (!check.problems.empty()) throw Exit{1};
}

}  // namespace

void add_module_command(CLI::App& app, Context&) {
  auto* module = app.add_subcommand("module", "Tools for module authors: content hash and structure check");
  module->require_subcommand(1);

  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto* hash_cmd = module->add_subcommand(
      "hash",
      "Print the content hash of a module folder, as h1:<base64> and sha256:<hex> (the same digest).\n"
      "It is Go's dirhash Hash1 over the folder's files, leaving out .git, __pycache__/, *.pyc and the\n"
      "build/, dist/ and *.egg-info/ folders Python tooling writes; it is the integrity tdx.lock records for\n"
      "a local module used without installing (source = \"path\"). Example: tdx module hash ./modules/hello");
  hash_cmd->add_option("path", *path, "The module's folder")->required();
  hash_cmd->add_flag("--json", *json, "Machine-readable output");
  hash_cmd->callback([path, json] { hash(*path, *json); });

  auto vpath = std::make_shared<std::string>();
  auto vjson = std::make_shared<bool>(false);
  auto* validate_cmd = module->add_subcommand(
      "validate",
      "Check that a folder is a usable tdx module, listing every problem (exit 1 when there is any):\n"
      "  - pyproject.toml has [project] name, version and a dependency on the SDK, \"tdx-vm-sdk\";\n"
      "  - its package (name with '-' as '_') imports, as a TDXfile would import it;\n"
      "  - it exposes apply(image), or a class with setup(image), install(image) and apply(image);\n"
      "  - its data files are in the package pip builds from it, so importlib.resources finds them once\n"
      "    installed (the folder is copied first; nothing is written into it).\n"
      "Example: tdx module validate ./modules/hello");
  validate_cmd->add_option("path", *vpath, "The module's folder (holding pyproject.toml)")->required();
  validate_cmd->add_flag("--json", *vjson, "Machine-readable output");
  validate_cmd->callback([vpath, vjson] { validate(*vpath, *vjson); });
}

}  // namespace tdx::cli
