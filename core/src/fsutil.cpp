#include <tdx/fsutil.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <vector>

#include <tdx/error.hpp>

namespace fs = std::filesystem;

namespace tdx {

namespace {
std::string unique_suffix() {
  static std::atomic<unsigned> counter{0};
  static const unsigned salt = std::random_device{}();
  return std::to_string(::getpid()) + "-" + std::to_string(salt) + "-" + std::to_string(counter++);
}
}  // namespace

void atomic_write(const fs::path& path, const std::string& content, unsigned mode) {
  fs::create_directories(path.parent_path().empty() ? fs::path(".") : path.parent_path());
  fs::path tmp = path;
  tmp += ".tmp-" + unique_suffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) throw Error("cannot write " + tmp.string() + ": " + std::strerror(errno));
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error("cannot write " + tmp.string() + ": " + std::strerror(err));
    }
    done += static_cast<std::size_t>(n);
  }
  ::fchmod(fd, mode);
  int synced = ::fsync(fd) == 0 ? 0 : errno;
  int closed = ::close(fd) == 0 ? 0 : errno;
  if (synced || closed) {
    ::unlink(tmp.c_str());
    throw Error("cannot write " + path.string() + ": " + std::strerror(synced ? synced : closed));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw Error("cannot rename into " + path.string() + ": " + std::strerror(err));
  }
}

std::string read_file(const fs::path& path, std::size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot read " + path.string() + ": " + std::strerror(errno));
  std::string out;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw Error("cannot read " + path.string() + ": it is a folder");
  }
  if (st.st_size > 0 && static_cast<std::size_t>(st.st_size) <= max_bytes) out.reserve(static_cast<std::size_t>(st.st_size));
  // The bytes may be a secret (tdx secrets push): the chunk buffer is cleared before it goes.
  char buf[1 << 16];
  std::string error;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) error = "cannot read " + path.string() + ": " + std::strerror(errno);
    if (n <= 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) {
      error = path.string() + " is larger than " + std::to_string(max_bytes) + " bytes";
      break;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  std::fill(std::begin(buf), std::end(buf), '\0');
  ::close(fd);
  if (!error.empty()) {
    std::fill(out.begin(), out.end(), '\0');
    throw Error(error);
  }
  return out;
}

void copy_tree(const fs::path& from, const fs::path& to, bool hardlink) {
  fs::create_directories(to);
  // Folder modes are applied last, deepest first, so read-only source folders still get filled.
  std::vector<std::pair<fs::path, fs::perms>> folder_modes{{to, fs::status(from).permissions()}};
  for (auto it = fs::recursive_directory_iterator(from); it != fs::recursive_directory_iterator(); ++it) {
    fs::path target = to / it->path().lexically_relative(from);  // not fs::relative: it follows symlinks
    if (it->is_symlink()) {
      fs::copy_symlink(it->path(), target);
    } else if (it->is_directory()) {
      fs::create_directory(target);
      folder_modes.emplace_back(target, it->status().permissions());
    } else if (hardlink) {
      fs::create_hard_link(it->path(), target);
    } else {
      fs::copy_file(it->path(), target);
    }
  }
  for (auto it = folder_modes.rbegin(); it != folder_modes.rend(); ++it) fs::permissions(it->first, it->second);
}

void remove_tree(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(path, ec))) return;
  fs::path aside = path;
  aside += ".old-" + unique_suffix();
  if (::rename(path.c_str(), aside.c_str()) != 0) aside = path;
  fs::remove_all(aside, ec);
}

TempDir::TempDir(const fs::path& parent, const std::string& prefix) {
  fs::create_directories(parent);
  m_path = parent / ("." + prefix + "-" + unique_suffix());
  fs::create_directory(m_path);
}

TempDir::~TempDir() {
  if (!m_path.empty()) remove_tree(m_path);
}

FileLock::FileLock(const fs::path& path) {
  fs::create_directories(path.parent_path());
  m_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (m_fd < 0) throw Error("cannot open lock " + path.string() + ": " + std::strerror(errno));
  while (::flock(m_fd, LOCK_EX) != 0) {
    if (errno != EINTR) throw Error("cannot lock " + path.string() + ": " + std::strerror(errno));
  }
}

FileLock::~FileLock() {
  if (m_fd >= 0) ::close(m_fd);
}

}  // namespace tdx
