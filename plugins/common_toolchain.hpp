// How the stock builders read `compiler=`: "sha256:<hex>" names an archive returned by
// fetch(); "build:<name>" names an earlier build of the image (a compiler built from source).
#pragma once

#include <string>
#include <tdx/plugin_util.hpp>

namespace tdx::stock {

inline bool compiler_ref_ok(const std::string& ref) {
  return (ref.rfind("sha256:", 0) == 0 && ref.size() == 7 + 64) || (ref.rfind("build:", 0) == 0 && ref.size() > 6);
}

inline ToolchainInput toolchain_from_ref(const std::string& ref, const std::string& mount) {
  ToolchainInput t;
  t.mount = mount;
  if (ref.rfind("build:", 0) == 0) t.from_build = ref.substr(6);
  else t.sha256 = ref.substr(7);
  return t;
}

}  // namespace tdx::stock
