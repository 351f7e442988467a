// Running builds: content-addressed cache keys, build roots, the isolated run, the artifact store.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <tdx/hash.hpp>
#include <tdx/mkosi.hpp>
#include <tdx/plugin_host.hpp>
#include <tdx/spec.hpp>

namespace tdx {

inline constexpr const char* k_cache_schema = "tdx-build-cache-v1";

struct BuildKeyInputs {
  const BuildSpec* spec = nullptr;
  std::string builder_version;
  StringMap builder_fields;   // from the plugin's key_fields()
  BuildPlan plan;
  StringList build_deps;      // the full, sorted set the build root holds
  std::string base;           // e.g. debian/bookworm
  Digest source{};            // tree hash of spec.src
  StringList toolchain_ids;   // per plan.toolchains entry: "sha256:<hex>", "sha512:<hex>" or "build:<key>"
};

// Every input that can change a build's output, each field tagged. Paths on the
// host (checkout folder, cache folder) are deliberately not part of it.
Digest build_cache_key(const BuildKeyInputs& in);

// Cached build outputs: <root>/sha256-<key>/{manifest.toml, build.log, artifacts/}.
class ArtifactStore {
 public:
  explicit ArtifactStore(std::filesystem::path root);
  std::filesystem::path entry(const std::string& key) const { return m_root / ("sha256-" + key); }
  // The artifacts tree when the entry is complete.
  std::optional<std::filesystem::path> lookup(const std::string& key) const;
  // Moves a finished staging folder (holding artifacts/ and build.log) into place atomically.
  std::filesystem::path commit(const std::string& key, const std::filesystem::path& staging, const std::string& manifest_toml);
  std::filesystem::path lock_path(const std::string& key) const { return m_root / ".locks" / (key + ".lock"); }
  const std::filesystem::path& root() const { return m_root; }

 private:
  std::filesystem::path m_root;
};

// Minimal distribution trees with a set of build dependencies, made by mkosi, cached per set.
class BuildRootStore {
 public:
  BuildRootStore(std::filesystem::path root, std::filesystem::path package_cache);
  std::filesystem::path ensure(const std::string& distribution, const std::string& release, const AptSources& sources,
                               const StringList& packages, const std::function<void(const std::string&)>& progress);

 private:
  std::filesystem::path m_root, m_package_cache;
};


struct BuildOutcome {
  std::string name;
  std::string builder;
  std::string key;            // hex
  bool cached = false;
  double seconds = 0;
  std::filesystem::path artifacts;
  std::string output;         // the spec's output path, for builds that use this one
  std::filesystem::path src;  // the source folder and its tree hash (what the key took)
  Digest source{};
};

struct BuildEnvironment {
  std::filesystem::path cache_dir;
  AptSources sources;
  std::string distribution, release, base;
  bool no_cache = false;
  std::function<void(const std::string&)> progress;
  const std::vector<BuildOutcome>* earlier = nullptr;  // builds of this image that ran before
};

// An unpacked toolchain ready to mount, and its identity for cache keys.
struct PreparedToolchain {
  std::filesystem::path tree;
  std::string identity;
};

// Fetches (when needed), unpacks and caches one toolchain input.
PreparedToolchain prepare_toolchain(const ToolchainInput& input, const BuildEnvironment& env);

// Normalises a spec (sorted unique build_deps) and has its builder plugin check it;
// throws one tdx::Error listing every problem, located at the spec's call site.
void check_build_spec(BuildSpec& spec);
void check_delivery_config(const DeliveryConfig& config);

// Plans, keys and (on a miss) runs one build in its build root with bubblewrap.
BuildOutcome run_build(const BuildSpec& spec, const BuildEnvironment& env);

// The host programs a build or an image needs, with the hint to install them.
void require_host_tools(bool need_bwrap);

// mkosi's environment: /usr/bin first, so ukify runs the distribution's python3.
std::map<std::string, std::string> mkosi_environment();

}  // namespace tdx
