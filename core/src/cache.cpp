#include <tdx/cache.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <tdx/error.hpp>
#include <tdx/paths.hpp>

namespace fs = std::filesystem;

namespace tdx {

namespace {

void measure(const fs::path& root, CacheCleanReport::Part& part) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    if (!S_ISDIR(st.st_mode)) {
      part.bytes += static_cast<std::uint64_t>(st.st_blocks) * 512;
      ++part.files;
    }
  }
}

// Build roots hold read-only folders (a Debian tree): make folders writable, then remove.
void remove_all_forced(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (!ec) return;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_directory(ec) && !it->is_symlink(ec))
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
  ec.clear();
  fs::remove_all(path, ec);
  if (ec)
    throw Error("cache clean: cannot remove " + path.string() + ": " + ec.message() +
                "\n  hint: a part of it belongs to another user (build roots made as root?); remove it as that user");
}

}  // namespace

std::vector<std::string> cache_parts(const CacheCleanOptions& options) {
  std::vector<std::string> out;
  bool all = !options.builds && !options.fetches;
  if (all || options.builds) out.insert(out.end(), {"builds", "buildroots", "logs", "digests"});
  if (all || options.fetches) out.insert(out.end(), {"fetch", "git", "toolchains"});
  if (all) out.insert(out.end(), {"work", "mkosi-packages", "mkosi-images"});
  return out;
}

CacheCleanReport clean_cache(const CacheCleanOptions& options) {
  CacheCleanReport report;
  report.cache_dir = cache_dir();
  for (const auto& name : cache_parts(options)) {
    CacheCleanReport::Part part{name, report.cache_dir / name};
    std::error_code ec;
    part.existed = fs::exists(fs::symlink_status(part.path, ec));
    if (part.existed) {
      if (fs::is_symlink(part.path, ec)) {
        // A part linked elsewhere (a shared cache): empty what it points at, keep the link.
        measure(part.path, part);
        for (const auto& child : fs::directory_iterator(part.path, ec)) remove_all_forced(child.path());
      } else {
        measure(part.path, part);
        // Renamed aside first so that a concurrent reader never sees a half-deleted tree.
        fs::path aside = report.cache_dir / ("." + name + ".removing-" + std::to_string(::getpid()));
        if (::rename(part.path.c_str(), aside.c_str()) != 0)
          throw Error("cache clean: cannot remove " + part.path.string() + ": " + std::strerror(errno));
        remove_all_forced(aside);
      }
    }
    report.parts.push_back(std::move(part));
  }
  return report;
}

}  // namespace tdx
