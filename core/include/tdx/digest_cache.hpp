// Remembered file digests, so an unchanged tree is re-checked with one lstat() per file.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>
#include <tdx/hash.hpp>

namespace tdx {

// One cache per tree. A file's digest is trusted while its name, device, inode, size,
// mtime and ctime are unchanged. A file changed less than k_racy_seconds before it was
// hashed is not remembered: a later write within the same timestamp tick would go unseen.
//
// After a walk that could remember everything, the cache also holds the tree's folders
// (device, inode, mtime, ctime) and the tree hash itself. A folder's mtime and ctime move
// whenever an entry in it is added, removed or renamed, so while no folder and no file has
// changed the listing is the same and the remembered tree hash holds: a re-check then stats
// each folder and file once and reads and lists nothing.
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

  struct Folder {
    std::string name;  // path inside the tree; "" is the tree itself
    std::uint64_t dev = 0, ino = 0;
    std::int64_t mtime_ns = 0, ctime_ns = 0;
  };

  // Loads `file` when it exists; a damaged file is ignored (everything is hashed again).
  explicit DigestCache(std::filesystem::path file, int racy_seconds = k_racy_seconds);

  // Per name of `sorted_names` (ascending), the remembered record or nullptr.
  std::vector<const Record*> match(const std::vector<const std::string*>& sorted_names) const;
  static bool unchanged(const Record& r, const struct stat& st);
  static bool unchanged(const Folder& f, const struct stat& st);
  // What a Record remembers of `st`; timestamps in nanoseconds.
  static Record record_of(std::string name, const struct stat& st, const Digest& digest);
  static std::int64_t time_ns(const struct timespec& t) {
    return static_cast<std::int64_t>(t.tv_sec) * 1000000000LL + t.tv_nsec;
  }
  // Replaces the remembered set with what the latest hash saw (racy files left out).
  void update(std::vector<Record> records);
  // The whole tree as the latest walk saw it: its folders and its hash. Without them (a racy
  // folder or file, or a hash of a given file list) a re-check walks the tree.
  void remember_tree(std::vector<Folder> folders, const Digest& tree);
  void forget_tree();
  const std::vector<Folder>& folders() const { return m_folders; }
  const std::vector<Record>& records() const { return m_records; }
  const std::optional<Digest>& tree() const { return m_tree; }
  bool is_recent(const struct stat& st) const;
  std::size_t size() const { return m_records.size(); }
  void save();  // atomic; a no-op when nothing changed

  std::size_t hits() const { return m_hits; }
  std::size_t misses() const { return m_misses; }
  void count(std::size_t hits, std::size_t misses) { m_hits += hits, m_misses += misses; }

 private:
  bool parse(const std::string& data);

  std::filesystem::path m_file;
  std::vector<Record> m_records;  // sorted by name
  std::vector<Folder> m_folders;  // sorted by name; empty unless m_tree is set
  std::optional<Digest> m_tree;
  std::size_t m_hits = 0, m_misses = 0;
  bool m_dirty = false;
  int m_racy_seconds;
};

}  // namespace tdx
