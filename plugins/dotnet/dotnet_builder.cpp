// tdx.builders.dotnet.DotnetBuild: .NET projects published with a pinned SDK.
#include "../common.hpp"

#include <tdx/plugin_api.hpp>

namespace {

class DotnetBuilder final : public tdx::plugin::Builder {
 public:
  tdx::StringList validate(const tdx::BuildSpec& spec) const override {
    tdx::StringList problems;
    tdx::stock::require_src(spec, problems);
    tdx::stock::require_single_output(spec, problems);
    bool has_compiler = spec.options.count("compiler") > 0;
    tdx::stock::check_version(spec, "sdk_version", problems, !has_compiler);
    tdx::plugin::option<std::string>(spec, "project", &problems);
    tdx::plugin::option<bool>(spec, "self_contained", &problems);
    tdx::plugin::reject_unknown_options(spec, {"sdk_version", "compiler", "project", "self_contained", "runtime"}, problems);
    return problems;
  }

  tdx::StringMap key_fields(const tdx::BuildSpec& spec) const override {
    tdx::StringMap f;
    f["sdk_version"] = tdx::plugin::option<std::string>(spec, "sdk_version").value_or("");
    f["project"] = tdx::plugin::option<std::string>(spec, "project").value_or(".");
    f["self_contained"] = tdx::plugin::option<bool>(spec, "self_contained").value_or(false) ? "yes" : "no";
    return f;
  }

  tdx::BuildPlan plan(const tdx::BuildSpec& spec) const override { tdx::stock::plan_not_available(spec); }
};

}  // namespace

TDX_BUILDER_PLUGIN(DotnetBuilder, "dotnet", "0.1.0", ".NET projects published with a pinned SDK (dotnet publish)")
