// File system helpers with the atomicity the caches and outputs rely on.
#pragma once

#include <filesystem>
#include <string>

namespace tdx {

// Writes `content` to a temporary file beside `path`, fsyncs it and renames it
// into place, so readers see the old file or the new one, never a partial one.
void atomic_write(const std::filesystem::path& path, const std::string& content, unsigned mode = 0644);

// The file's bytes; a file larger than `max_bytes` is refused ("... is larger than N bytes").
std::string read_file(const std::filesystem::path& path, std::size_t max_bytes = static_cast<std::size_t>(-1));

// Copies a tree keeping modes and symlinks; `hardlink` links regular files instead of copying.
void copy_tree(const std::filesystem::path& from, const std::filesystem::path& to, bool hardlink = false);

// Renames `path` aside and removes it; deleting in place slows later writes on this ext4.
void remove_tree(const std::filesystem::path& path);

// A fresh directory that is removed when the object goes out of scope.
class TempDir {
 public:
  explicit TempDir(const std::filesystem::path& parent, const std::string& prefix = "tmp");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return m_path; }
  void release() { m_path.clear(); }  // keep the directory (it was renamed into place)

 private:
  std::filesystem::path m_path;
};

// An exclusive advisory lock on a file, held for the object's lifetime.
class FileLock {
 public:
  explicit FileLock(const std::filesystem::path& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int m_fd = -1;
};

}  // namespace tdx
