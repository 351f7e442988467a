// tdx.builders.c.CBuild: C/C++ projects built by their own script (make, cmake, ...) with gcc.
#include "../common.hpp"

#include <tdx/plugin_api.hpp>

namespace {

class CBuilder final : public tdx::plugin::Builder {
 public:
  tdx::StringList validate(const tdx::BuildSpec& spec) const override {
    tdx::StringList problems;
    tdx::stock::require_src(spec, problems);
    tdx::stock::require_single_output(spec, problems);
    tdx::plugin::option<std::string>(spec, "build_script", &problems);
    tdx::plugin::option<std::string>(spec, "cflags", &problems);
    tdx::plugin::reject_unknown_options(spec, {"build_script", "cflags"}, problems);
    return problems;
  }

  tdx::StringMap key_fields(const tdx::BuildSpec&) const override { return {{"compiler", "debian-gcc"}}; }

  tdx::BuildPlan plan(const tdx::BuildSpec& spec) const override {
    tdx::BuildPlan plan;
    plan.build_deps = {"gcc", "g++", "libc6-dev", "make"};
    plan.script = tdx::plugin::option<std::string>(spec, "build_script").value_or("make");
    std::string flags = tdx::plugin::option<std::string>(spec, "cflags").value_or("-O2");
    if (spec.reproducible) flags += " -ffile-prefix-map=/build/src=. -fdebug-prefix-map=/build/src=.";
    plan.env = {{"CFLAGS", flags}, {"CXXFLAGS", flags}};
    if (spec.reproducible) plan.env["ZERO_AR_DATE"] = "1";
    return plan;
  }
};

}  // namespace

TDX_BUILDER_PLUGIN(CBuilder, "c", "0.1.0", "C and C++ with Debian's gcc, built by a make/cmake script")
