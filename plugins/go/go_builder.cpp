// tdx.builders.go.GoBuild: Go programs with a pinned Go toolchain.
#include "../common.hpp"

#include <tdx/plugin_api.hpp>

namespace {

class GoBuilder final : public tdx::plugin::Builder {
 public:
  tdx::StringList validate(const tdx::BuildSpec& spec) const override {
    tdx::StringList problems;
    tdx::stock::require_src(spec, problems);
    tdx::stock::require_single_output(spec, problems);
    bool has_compiler = spec.options.count("compiler") > 0;
    tdx::stock::check_version(spec, "version", problems, !has_compiler);
    tdx::plugin::option<std::string>(spec, "ldflags", &problems);
    tdx::plugin::option<std::string>(spec, "package", &problems);
    tdx::plugin::option<tdx::StringList>(spec, "tags", &problems);
    tdx::plugin::reject_unknown_options(spec, {"version", "compiler", "ldflags", "package", "tags"}, problems);
    return problems;
  }

  tdx::StringMap key_fields(const tdx::BuildSpec& spec) const override {
    tdx::StringMap f;
    f["version"] = tdx::plugin::option<std::string>(spec, "version").value_or("");
    f["ldflags"] = tdx::plugin::option<std::string>(spec, "ldflags").value_or("");
    f["package"] = tdx::plugin::option<std::string>(spec, "package").value_or(".");
    return f;
  }

  tdx::BuildPlan plan(const tdx::BuildSpec& spec) const override { tdx::stock::plan_not_available(spec); }
};

}  // namespace

TDX_BUILDER_PLUGIN(GoBuilder, "go", "0.1.0", "Go programs with a pinned Go toolchain (-trimpath)")
