// Remembered file digests, so an unchanged tree is re-checked with one lstat() per file.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>
#include <tdx/hash.hpp>

namespace tdx {

// One cache per tree. A file's digest is trusted while its name, device, inode, size,
// mtime and ctime are unchanged. A file changed less than k_racy_seconds before it was
// hashed is not remembered: a later write within the same timestamp tick would go unseen.
class DigestCache {
 public:
  static constexpr int k_racy_seconds = 2;

  // Where the digests of `tree` (hashed with `selection`) are remembered under `cache_root`.
  static std::filesystem::path file_for(const std::filesystem::path& cache_root, const std::filesystem::path& tree,
                                        TreeSelection selection = TreeSelection::checkout);

  struct Record {
    std::string name;  // path inside the tree, as the tree hash lists it
    std::uint64_t dev = 0, ino = 0, size = 0;
    std::int64_t mtime_ns = 0, ctime_ns = 0;
    Digest digest{};
  };

  // Loads `file` when it exists; a damaged file is ignored (everything is hashed again).
  explicit DigestCache(std::filesystem::path file, int racy_seconds = k_racy_seconds);

  // Per name of `sorted_names` (ascending), the remembered record or nullptr.
  std::vector<const Record*> match(const std::vector<const std::string*>& sorted_names) const;
  static bool unchanged(const Record& r, const struct stat& st);
  // What a Record remembers of `st`; timestamps in nanoseconds.
  static Record record_of(std::string name, const struct stat& st, const Digest& digest);
  static std::int64_t time_ns(const struct timespec& t) {
    return static_cast<std::int64_t>(t.tv_sec) * 1000000000LL + t.tv_nsec;
  }
  // Replaces the remembered set with what the latest hash saw (racy files left out).
  void update(std::vector<Record> records);
  bool is_recent(const struct stat& st) const;
  std::size_t size() const { return m_records.size(); }
  void save();  // atomic; a no-op when nothing changed

  std::size_t hits() const { return m_hits; }
  std::size_t misses() const { return m_misses; }
  void count(std::size_t hits, std::size_t misses) { m_hits += hits, m_misses += misses; }

 private:
  std::filesystem::path m_file;
  std::vector<Record> m_records;  // sorted by name
  std::size_t m_hits = 0, m_misses = 0;
  bool m_dirty = false;
  int m_racy_seconds;
};

}  // namespace tdx
