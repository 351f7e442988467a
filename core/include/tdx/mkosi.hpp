// Turning an image recipe into an mkosi 24.3 configuration tree, and running mkosi.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>
#include <tdx/image.hpp>

namespace tdx {

// The Debian archive URIs the image (and build roots) install from.
struct AptSources {
  std::string main;       // serves <release> and <release>-updates
  std::string security;   // serves <release>-security; may be empty
};

// `mirror` (from the user) wins; otherwise the machine's own apt configuration
// (/etc/apt/sources.list.d/*.sources, /etc/apt/sources.list) decides.
AptSources resolve_apt_sources(const std::string& release, const std::string& mirror = {});
std::string mkosi_sources_file(const AptSources& sources, const std::string& release);

// A build's artifacts as the image gets them: a tree rooted at the image's /.
struct ArtifactTree {
  std::string key;                    // cache key (hex), names the folder in the emitted tree
  std::filesystem::path tree;         // on the host
};

// The generated tree: relative path -> (content, mode). Deterministic.
// The file the image's finalize script writes into mkosi's output folder: one
// "name\tversion\tarchitecture" line per installed package, sorted.
inline constexpr const char* k_packages_list = "tdx-packages.tsv";

struct GeneratedTree {
  std::map<std::string, std::pair<std::string, std::uint32_t>> files;
  std::vector<ArtifactTree> artifacts;
  // What mkosi's cached image (after package installation) depends on: base, format, package
  // list and apt sources. mkosi itself names that cache only by distribution, release and
  // architecture, so tdx gives each package set a folder of its own.
  std::string package_set;
};

struct AssemblyInputs {
  AptSources sources;
  std::vector<ArtifactTree> artifacts;
  std::optional<DeliveryPlan> delivery;   // from the secret-delivery plugin, applied after the recipe
  std::filesystem::path project_dir;      // call sites are shown relative to it
};

GeneratedTree generate_mkosi_tree(const Image& image, const AssemblyInputs& inputs);

// Writes the tree into `dir` (created fresh); artifacts are hard-linked (copied across devices).
void write_mkosi_tree(const GeneratedTree& tree, const std::filesystem::path& dir);

// Packages the image format itself needs in addition to the recipe's.
StringList format_packages(const Image& image);

}  // namespace tdx
