#include <tdx/paths.hpp>

#include <dlfcn.h>

#include <cstdlib>

namespace fs = std::filesystem;

namespace tdx {

fs::path library_dir() {
  Dl_info info{};
  dladdr(reinterpret_cast<void*>(&library_dir), &info);
  return fs::weakly_canonical(fs::path(info.dli_fname)).parent_path();
}

fs::path plugin_dir() { return library_dir() / "tdx" / "plugins"; }
fs::path python_dir() { return library_dir() / "tdx" / "python"; }

fs::path cache_dir() {
  if (const char* dir = std::getenv("TDX_CACHE_DIR"); dir && *dir) return fs::absolute(dir);
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return fs::absolute(xdg) / "tdx";
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : "/root") / ".cache" / "tdx";
}

}  // namespace tdx
