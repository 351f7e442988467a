// `tdx build` after evaluation: builds, assembly of the mkosi tree, mkosi, the manifest.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>
#include <tdx/build.hpp>
#include <tdx/image.hpp>
#include <tdx/lockfile.hpp>

namespace tdx {

struct ImageBuildOptions {
  std::filesystem::path project_dir;
  std::filesystem::path output_dir;     // default: <project>/build
  std::filesystem::path emit_dir;       // set: write the mkosi tree there and stop
  std::string format;                   // overrides the Image's format when set
  std::string mirror;                   // overrides the apt sources' mirror when set
  bool no_cache = false;
  // The tdx.lock entries this TDXfile used (modules and fetches), recorded in the manifest.
  const Lockfile* lock = nullptr;
  // Phase name and a human sentence, for progress lines.
  std::function<void(const std::string& phase, const std::string& message)> progress;
};

struct ImageBuildReport {
  std::vector<BuildOutcome> builds;
  std::filesystem::path image;          // the output (directory or .raw), empty with emit_dir
  std::filesystem::path manifest;
  std::string image_sha256;
  std::string mkosi_version;
  std::string inputs_digest;            // over everything mkosi is given (see image_inputs_digest)
  // "name\tversion\tarchitecture" of every package installed in the image, sorted.
  std::vector<std::string> installed_packages;
  double mkosi_seconds = 0;
  bool mkosi_skipped = false;           // every input was unchanged: the previous image stands
  std::optional<DeliveryPlan> delivery; // what the secret-delivery backend added (for the manifest)
};

// A digest of everything mkosi would see for this tree: the generated files, the artifacts
// (by their content-addressed keys) and the mkosi program. Equal digests, equal images.
std::string image_inputs_digest(const GeneratedTree& tree);

ImageBuildReport build_image(Image& image, const ImageBuildOptions& options);

// The generated tree for an image whose builds are already in the cache or built now; fills
// report.builds and report.delivery. An image with secrets but no delivery backend is refused.
GeneratedTree assemble(const Image& image, const ImageBuildOptions& options, ImageBuildReport& report);

}  // namespace tdx
