// Plain data shared by the core, the Python bindings and every plugin.
// These types cross the plugin boundary, so changing a layout bumps k_abi_major.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace tdx {

using StringList = std::vector<std::string>;
using StringMap = std::map<std::string, std::string>;
using OptionValue = std::variant<bool, std::int64_t, std::string, StringList, StringMap>;
using Options = std::map<std::string, OptionValue>;

// Where in Python a recipe entry was declared, so errors can point at it.
struct CallSite {
  std::string file;
  int line = 0;
  std::string str() const { return file.empty() ? std::string("<unknown>") : file + ":" + std::to_string(line); }
};

// One `image.build(...)` request. Common fields are typed; everything a
// builder adds (version, ldflags, features, project, ...) sits in `options`.
struct BuildSpec {
  std::string builder;
  std::string name;
  std::string src;         // absolute path on the host
  std::string output;      // absolute image path the build installs ($DESTDIR tree), or empty
  StringMap artifacts;     // path in the build's work tree -> absolute image path
  StringList build_deps;   // sorted, unique Debian package names
  StringMap env;
  bool reproducible = true;
  Options options;
  CallSite site;
  bool install = true;     // false: the output only feeds other builds (a compiler) and stays out of the image
};

// A toolchain the build needs, mounted read-only in the build root. The core fetches
// and unpacks it once into a content-addressed toolchain cache.
struct ToolchainInput {
  std::string sha256;        // of the archive (hex); its identity in the cache key. For a publisher that
                             // gives only a SHA-512: "sha512:<128 hex>", checked while it downloads
  std::string url;           // where to fetch it when it is not cached yet; may be empty
  std::string from_build;    // instead: the output of an earlier build of the image, by name
  std::string mount;         // absolute path in the build root, e.g. /opt/go
  std::string layout;        // "" (plain tree) or "rust-installer" (merge the listed components)
  StringList executable_dirs;  // folders (relative) whose files get +x (zip archives carry no modes)
  std::string missing_hint;  // said when the archive is neither cached nor fetchable
};

// What a builder plugin asks the core to run for one spec.
struct BuildPlan {
  StringList build_deps;   // packages the builder itself needs in the build root (e.g. make)
  std::string script;      // POSIX shell, run in the writable copy of `src` at /build/src
  StringMap env;           // added to the clean environment (spec.env wins on conflicts)
  StringMap artifacts;     // work-tree path -> image path; empty means "take $DESTDIR"
  std::vector<ToolchainInput> toolchains;
};

// A user the image gets: from image.user() in the recipe, or from a delivery plugin.
struct UserSpec {
  std::string name;
  bool system = false;
  std::optional<std::int64_t> uid;
  std::string home;    // empty: useradd's default
  std::string shell;   // empty: /usr/sbin/nologin for system users, else useradd's default
  StringList groups;
  CallSite site;
  bool create_home = true;  // false: home is only recorded in /etc/passwd (a folder made elsewhere, e.g. at boot)
};

struct SecretDecl {
  std::string name;
  std::string dest;
  std::string owner = "root";
  std::string group;
  std::string mode = "0400";
  CallSite site;
};

struct DeliveryConfig {
  std::string backend;
  Options options;
  CallSite site;
};

// A file a plugin adds to the image (units, receiver configuration, ...).
struct ImageFile {
  std::string path;
  std::string content;
  std::uint32_t mode = 0644;
};

// What a delivery backend adds to the image, applied after the recipe's own steps in this
// order: users (each with its own primary group), files, `systemctl enable` of units, commands.
struct DeliveryPlan {
  std::vector<ImageFile> files;
  StringList packages;
  StringList enable_units;
  StringList commands;     // post-install shell commands
  std::vector<UserSpec> users;
};

}  // namespace tdx
