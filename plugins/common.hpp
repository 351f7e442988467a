// Checks shared by the stock builders (header-only, compiled into each plugin).
#pragma once

#include <regex>
#include <stdexcept>
#include <string>
#include <tdx/plugin_util.hpp>

namespace tdx::stock {

inline std::string where(const BuildSpec& spec) { return spec.builder + " build '" + spec.name + "'"; }

inline void require_src(const BuildSpec& spec, StringList& problems) {
  if (spec.src.empty()) problems.push_back(where(spec) + " needs src=, the folder holding its sources");
}

inline void require_single_output(const BuildSpec& spec, StringList& problems) {
  if (spec.output.empty() && spec.artifacts.empty())
    problems.push_back(where(spec) + " needs output= (the path in the image) or artifacts={build_path: image_path}");
}

// A version like 1.22.5 or 10.0: digits separated by dots.
inline void check_version(const BuildSpec& spec, const std::string& key, StringList& problems, bool required) {
  auto v = plugin::option<std::string>(spec, key, &problems);
  if (!v) {
    if (required && spec.options.find(key) == spec.options.end())
      problems.push_back(where(spec) + " needs " + key + "= (for example \"1.22.5\")");
    return;
  }
  if (!std::regex_match(*v, std::regex(R"(\d+(\.\d+){0,2})")))
    problems.push_back(where(spec) + ": " + key + " '" + *v + "' is not a version like 1.22.5");
}

// Builders whose compile step arrives with the toolchain support throw this from plan().
[[noreturn]] inline void plan_not_available(const BuildSpec& spec) {
  throw std::runtime_error(where(spec) + ": this " + spec.builder +
                           " plugin checks specs but cannot run builds yet (toolchain sourcing is not implemented); "
                           "use Build.script(...) with the toolchain in build_deps meanwhile");
}

}  // namespace tdx::stock
