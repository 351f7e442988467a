// tdx.builders.rust.RustBuild: cargo projects with a pinned Rust toolchain.
//
// The toolchain is a rust-installer tarball (the layout of the official releases: a folder
// with a `components` file and one folder per component), given as compiler=fetch(...).
#include "../common.hpp"
#include "../common_toolchain.hpp"

#include <tdx/plugin_api.hpp>

namespace {

using tdx::plugin::option;
using tdx::plugin::shell_quote;

constexpr const char* k_mount = "/opt/rust";

class RustBuilder final : public tdx::plugin::Builder {
 public:
  tdx::StringList validate(const tdx::BuildSpec& spec) const override {
    tdx::StringList problems;
    const std::string w = tdx::stock::where(spec);
    tdx::stock::require_src(spec, problems);
    if (spec.output.empty()) problems.push_back(w + " needs output=, the path of the program in the image");
    auto compiler = option<std::string>(spec, "compiler", &problems);
    if (compiler && !tdx::stock::compiler_ref_ok(*compiler))
      problems.push_back(w + ": compiler must be a fetch() result (a rust-installer tarball), got '" + *compiler + "'");
    tdx::stock::check_version(spec, "toolchain", problems, !compiler);
    if (auto v = option<std::string>(spec, "toolchain"); v && !compiler)
      problems.push_back(w + ": this plugin carries no pinned Rust release digests, so toolchain='" + *v +
                         "' alone cannot be fetched; pass compiler=fetch(url, sha256=...) with the "
                         "rust-" + *v + "-x86_64-unknown-linux-gnu tarball");
    option<tdx::StringList>(spec, "features", &problems);
    option<std::string>(spec, "bin", &problems);
    option<std::string>(spec, "profile", &problems);
    tdx::plugin::reject_unknown_options(spec, {"toolchain", "compiler", "features", "bin", "profile"}, problems);
    return problems;
  }

  tdx::StringMap key_fields(const tdx::BuildSpec& spec) const override {
    tdx::StringMap f;
    f["toolchain"] = option<std::string>(spec, "toolchain").value_or("");
    std::string features;
    for (const auto& x : option<tdx::StringList>(spec, "features").value_or(tdx::StringList{})) features += x + ",";
    f["features"] = features;
    f["bin"] = option<std::string>(spec, "bin").value_or("");
    f["profile"] = option<std::string>(spec, "profile").value_or("release");
    return f;
  }

  tdx::BuildPlan plan(const tdx::BuildSpec& spec) const override {
    tdx::BuildPlan plan;
    auto t = tdx::stock::toolchain_from_ref(*option<std::string>(spec, "compiler"), k_mount);
    if (t.from_build.empty()) t.layout = "rust-installer";
    plan.toolchains.push_back(t);
    plan.build_deps = {"gcc", "libc6-dev"};  // cc is rustc's linker
    plan.env = {{"PATH", std::string(k_mount) + "/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
                {"CARGO_HOME", "/build/home/cargo"},
                {"CARGO_TARGET_DIR", "/build/target"},
                {"CARGO_INCREMENTAL", "0"}};
    if (spec.reproducible)
      plan.env["RUSTFLAGS"] = "--remap-path-prefix=/build/src=/src --remap-path-prefix=/build/home/cargo=/cargo -C strip=debuginfo";
    std::string profile = option<std::string>(spec, "profile").value_or("release");
    std::string bin = option<std::string>(spec, "bin").value_or(spec.output.substr(spec.output.find_last_of('/') + 1));
    std::string cmd = "cargo build --offline --profile " + shell_quote(profile) + " --bin " + shell_quote(bin);
    auto features = option<tdx::StringList>(spec, "features").value_or(tdx::StringList{});
    if (!features.empty()) {
      std::string joined;
      for (const auto& f : features) joined += (joined.empty() ? "" : ",") + f;
      cmd += " --features " + shell_quote(joined);
    }
    std::string dir = profile == "dev" ? "debug" : profile;
    plan.script = "rustc --version\n"
                  "if [ -f Cargo.lock ]; then locked=--locked; else locked=; fi\n" +
                  cmd + " $locked\n" + "install -D -m 0755 /build/target/" + dir + "/" + shell_quote(bin) +
                  " \"$DESTDIR\"" + shell_quote(spec.output) + "\n";
    return plan;
  }
};

}  // namespace

TDX_BUILDER_PLUGIN(RustBuilder, "rust", "1.0.0", "Rust crates with cargo and a pinned toolchain (--remap-path-prefix)")
