// The no-op path of `tdx build`: when nothing the previous build depended on has changed, the
// image stands, and neither the TDXfile's evaluation nor mkosi runs.
//
// After a successful build, a stamp records what the result depended on:
//   - the command (the options that shape the image) and the environment it ran in;
//   - every file the evaluation read (the TDXfile, imported Python files, data files, the
//     folders it listed, tdx.lock), the tools (tdx, its plugins, mkosi) and the apt sources,
//     each by path, device, inode, size, mtime and ctime;
//   - every build source and local module folder, by tree hash (re-checked through the
//     remembered per-file digests, so an unchanged tree costs one lstat per file);
//   - the outputs (image, manifest), by the same file signature.
// The stamp is removed before a build starts and written only after it succeeded, so a failed
// or interrupted build never leaves a stamp that vouches for it.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>
#include <tdx/hash.hpp>

namespace tdx {

struct UpToDateInputs {
  std::vector<std::filesystem::path> files;    // compared by file signature
  std::vector<std::pair<std::filesystem::path, TreeSelection>> trees;  // compared by tree hash
  std::vector<std::pair<std::filesystem::path, Digest>> hashed_trees;  // the same, already hashed (checkout)
  std::vector<std::filesystem::path> outputs;  // compared by file signature
  std::string result;                          // what the no-op path reports (JSON of the last build)
};

class UpToDateStamp {
 public:
  // `command` holds the options that shape the image; the environment is added here.
  UpToDateStamp(const std::filesystem::path& output_dir, const std::filesystem::path& tdxfile,
                const std::string& command);

  // The last build's result when every recorded input is unchanged; nullopt otherwise.
  std::optional<std::string> check() const;
  // Forget the last build (before a new one starts).
  void invalidate() const;
  // Record a successful build. Nothing is written (the next build evaluates again) when an
  // input changed so recently that a later change could keep its timestamp, or a path cannot
  // be recorded.
  void record(const UpToDateInputs& inputs) const;

  const std::filesystem::path& path() const { return m_path; }

 private:
  std::filesystem::path m_path;
  std::string m_command;  // digest of the command and the environment
};

}  // namespace tdx
