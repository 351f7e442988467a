// Build.script: runs the user's shell script in the build root, takes the declared artifacts.
#include "../common.hpp"

#include <tdx/plugin_api.hpp>

namespace {

class ScriptBuilder final : public tdx::plugin::Builder {
 public:
  tdx::StringList validate(const tdx::BuildSpec& spec) const override {
    tdx::StringList problems;
    tdx::stock::require_src(spec, problems);
    tdx::stock::require_single_output(spec, problems);
    auto script = tdx::plugin::option<std::string>(spec, "build_script", &problems);
    if (!script || script->find_first_not_of(" \t\n") == std::string::npos)
      problems.push_back(tdx::stock::where(spec) + " needs build_script=, the shell commands that build it");
    tdx::plugin::reject_unknown_options(spec, {"build_script"}, problems);
    return problems;
  }

  tdx::StringMap key_fields(const tdx::BuildSpec&) const override { return {}; }

  tdx::BuildPlan plan(const tdx::BuildSpec& spec) const override {
    tdx::BuildPlan plan;
    plan.script = *tdx::plugin::option<std::string>(spec, "build_script");
    return plan;
  }
};

}  // namespace

TDX_BUILDER_PLUGIN(ScriptBuilder, "script", "1.0.0", "Runs a shell build_script in an isolated build root")
