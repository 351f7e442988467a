// Build.make(name=, src=, target="all", artifacts={...}): runs `make TARGET` with gcc.
// An example of a builder shipped by a third party; it uses only the installed headers.
#include <tdx/plugin_api.hpp>
#include <tdx/plugin_util.hpp>

namespace {

class MakeBuilder final : public tdx::plugin::Builder {
 public:
  tdx::StringList validate(const tdx::BuildSpec& spec) const override {
    tdx::StringList problems;
    if (spec.src.empty()) problems.push_back("make build '" + spec.name + "' needs src=");
    if (spec.artifacts.empty()) problems.push_back("make build '" + spec.name + "' needs artifacts={build_path: image_path}");
    if (auto target = tdx::plugin::option<std::string>(spec, "target", &problems);
        target && target->find_first_of(" ;&|$`") != std::string::npos)
      problems.push_back("make build '" + spec.name + "': target '" + *target + "' must be a single make target");
    tdx::plugin::reject_unknown_options(spec, {"target"}, problems);
    return problems;
  }

  tdx::StringMap key_fields(const tdx::BuildSpec& spec) const override {
    return {{"target", tdx::plugin::option<std::string>(spec, "target").value_or("all")}};
  }

  tdx::BuildPlan plan(const tdx::BuildSpec& spec) const override {
    tdx::BuildPlan plan;
    plan.build_deps = {"gcc", "libc6-dev", "make"};
    plan.script = "make " + tdx::plugin::shell_quote(tdx::plugin::option<std::string>(spec, "target").value_or("all"));
    return plan;
  }
};

}  // namespace

TDX_BUILDER_PLUGIN(MakeBuilder, "make", "1.0.0", "Example third-party builder: runs a make target")
