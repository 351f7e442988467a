// Clearing the user's cache (`tdx cache clean`).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace tdx {

struct CacheCleanOptions {
  bool builds = false;   // builds/ (artifacts), buildroots/, logs/, digests/ (remembered source digests)
  bool fetches = false;  // fetch/ (fetch()), git/ (fetch_git()), toolchains/ (unpacked fetches)
  // Neither: all of the above plus work/, mkosi-packages/ and mkosi-images/.
};

struct CacheCleanReport {
  struct Part {
    std::string name;              // the folder's name under cache_dir()
    std::filesystem::path path;
    std::uint64_t bytes = 0;       // what it held
    std::uint64_t files = 0;
    bool existed = false;
  };
  std::filesystem::path cache_dir;
  std::vector<Part> parts;
};

// The folders under cache_dir() that `options` names, in a fixed order.
std::vector<std::string> cache_parts(const CacheCleanOptions& options);

// Removes those folders (only those: cache_dir() may be a folder the user shares with other things).
CacheCleanReport clean_cache(const CacheCleanOptions& options);

}  // namespace tdx
