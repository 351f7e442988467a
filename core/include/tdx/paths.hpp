// Where tdx keeps things: the install's own folders and the user's cache.
#pragma once

#include <filesystem>

namespace tdx {

// The folder holding libtdx_core (…/lib in both the build and the install tree).
std::filesystem::path library_dir();
std::filesystem::path plugin_dir();   // library_dir()/tdx/plugins
std::filesystem::path python_dir();   // library_dir()/tdx/python

// TDX_CACHE_DIR, else $XDG_CACHE_HOME/tdx, else ~/.cache/tdx.
std::filesystem::path cache_dir();

}  // namespace tdx
