// How the stock builders read `compiler=`: "sha256:<hex>" names an archive returned by
// fetch(); "build:<name>" names an earlier build of the image (a compiler built from source).
// And the official releases a builder pins: their digests, and where the user says they come from.
#pragma once

#include <cstdlib>
#include <initializer_list>
#include <span>
#include <string>
#include <tdx/plugin_util.hpp>

namespace tdx::stock {

inline bool compiler_ref_ok(const std::string& ref) {
  return (ref.rfind("sha256:", 0) == 0 && ref.size() == 7 + 64) || (ref.rfind("build:", 0) == 0 && ref.size() > 6);
}

inline ToolchainInput toolchain_from_ref(const std::string& ref, const std::string& mount) {
  ToolchainInput t;
  t.mount = mount;
  if (ref.rfind("build:", 0) == 0) t.from_build = ref.substr(6);
  else t.sha256 = ref.substr(7);
  return t;
}

// An official release a plugin knows by the digest of its archive.
struct PinnedRelease {
  const char* version;            // as a TDXfile names it (toolchain="1.95.0", sdk_version="10.0")
  const char* digest;             // of the archive: sha256 hex, or "sha512:<hex>" (ToolchainInput::sha256)
  const char* release = nullptr;  // the exact release, when `version` is a shorter name for it

  std::string exact() const { return release ? release : version; }
};

inline const PinnedRelease* find_release(std::span<const PinnedRelease> releases, const std::string& version) {
  for (const auto& r : releases)
    if (version == r.version) return &r;
  return nullptr;
}

// "1.22.5, 1.23.4": for errors about a version the plugin does not know.
inline std::string known_versions(std::span<const PinnedRelease> releases) {
  std::string out;
  for (const auto& r : releases) out += (out.empty() ? "" : ", ") + std::string(r.version);
  return out;
}

// The base URL of a release server or mirror from the first of `vars` that is set, without
// trailing slashes; "" when none is. No host is built in: where releases come from is the user's say.
inline std::string server_from_env(std::initializer_list<const char*> vars) {
  for (const char* var : vars) {
    const char* value = std::getenv(var);
    if (!value || !*value) continue;
    std::string url = value;
    while (!url.empty() && url.back() == '/') url.pop_back();
    if (!url.empty()) return url;
  }
  return "";
}

// A pinned release as a toolchain: its official digest, downloaded from `server` + `path` when the
// user named a server (server_from_env); `hint` tells how to name one otherwise.
inline ToolchainInput pinned_toolchain(const PinnedRelease& release, const std::string& mount,
                                       const std::string& server, const std::string& path, const std::string& hint) {
  ToolchainInput t;
  t.mount = mount;
  t.sha256 = release.digest;
  if (!server.empty()) t.url = server + path;
  t.missing_hint = hint;
  return t;
}

// compiler= when the spec gives one, else `pinned(release)` for the release of `releases` that the
// spec's `version_key` option names (validate() made sure it is one of them).
template <typename Pinned>
ToolchainInput compiler_or_pinned(const BuildSpec& spec, const std::string& version_key,
                                  std::span<const PinnedRelease> releases, const std::string& mount, Pinned pinned) {
  if (auto compiler = plugin::option<std::string>(spec, "compiler")) return toolchain_from_ref(*compiler, mount);
  return pinned(*find_release(releases, *plugin::option<std::string>(spec, version_key)));
}

}  // namespace tdx::stock
