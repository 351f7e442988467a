// tdx.builders.rust.RustBuild: cargo projects with a pinned Rust toolchain.
#include "../common.hpp"

#include <tdx/plugin_api.hpp>

namespace {

class RustBuilder final : public tdx::plugin::Builder {
 public:
  tdx::StringList validate(const tdx::BuildSpec& spec) const override {
    tdx::StringList problems;
    tdx::stock::require_src(spec, problems);
    tdx::stock::require_single_output(spec, problems);
    bool has_compiler = spec.options.count("compiler") > 0;
    tdx::stock::check_version(spec, "toolchain", problems, !has_compiler);
    tdx::plugin::option<tdx::StringList>(spec, "features", &problems);
    tdx::plugin::option<std::string>(spec, "bin", &problems);
    tdx::plugin::reject_unknown_options(spec, {"toolchain", "compiler", "features", "bin", "profile"}, problems);
    return problems;
  }

  tdx::StringMap key_fields(const tdx::BuildSpec& spec) const override {
    tdx::StringMap f;
    f["toolchain"] = tdx::plugin::option<std::string>(spec, "toolchain").value_or("");
    std::string features;
    for (const auto& x : tdx::plugin::option<tdx::StringList>(spec, "features").value_or(tdx::StringList{}))
      features += x + ",";
    f["features"] = features;
    return f;
  }

  tdx::BuildPlan plan(const tdx::BuildSpec& spec) const override { tdx::stock::plan_not_available(spec); }
};

}  // namespace

TDX_BUILDER_PLUGIN(RustBuilder, "rust", "0.1.0", "Rust crates with cargo and a pinned toolchain (--remap-path-prefix)")
