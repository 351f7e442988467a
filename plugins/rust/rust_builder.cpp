// tdx.builders.rust.RustBuild: cargo projects with a pinned Rust toolchain.
//
// The toolchain is a rust-installer tarball (the layout of the official releases: a folder
// with a `components` file and one folder per component): (1) toolchain="<version>" of a release
// this plugin knows, downloaded from the Rust distribution server or mirror the user names in
// TDX_RUST_DIST_SERVER or rustup's RUSTUP_DIST_SERVER and checked against the official sha256 it
// carries, or (2) compiler=fetch(url, sha256=...).
#include "../common.hpp"
#include "../common_toolchain.hpp"

#include <tdx/plugin_api.hpp>

namespace {

using tdx::plugin::option;
using tdx::plugin::shell_quote;

// The official sha256 of rust-<version>-x86_64-unknown-linux-gnu.tar.gz. 1.95.0's is the `hash` of
// [pkg.rust.target.x86_64-unknown-linux-gnu] in the channel manifest rustup verified when it
// installed that release; the others are the published release digests (the tarballs' .sha256 files).
constexpr tdx::stock::PinnedRelease k_releases[] = {
    {"1.72.1", "4fbd8df2000cf73c632d67a219a7fc153537ceffa2e6474491e3db71fdd5a410"},
    {"1.77.1", "1e20ef769a722223a64bb9ebc621ba2b781d8f89ec0d4ab8d0bdc2d3071075b3"},
    {"1.81.0", "4ca7c24e573dae2f382d8d266babfddc307155e1a0a4025f3bc11db58a6cab3e"},
    {"1.95.0", "a47ac940abd12399d59ad15c877e7113fa35f2b9ec7e6a8a045d4fd8b9741dea"},
};

std::string tarball(const std::string& version) { return "rust-" + version + "-x86_64-unknown-linux-gnu.tar.gz"; }

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
    if (auto v = option<std::string>(spec, "toolchain"); v && !compiler && !tdx::stock::find_release(k_releases, *v))
      problems.push_back(w + ": Rust " + *v + " is not a release this plugin knows (it knows " +
                         tdx::stock::known_versions(k_releases) + "); pass compiler=fetch(url, sha256=...) with the " +
                         tarball(*v) + " tarball");
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
    plan.toolchains.push_back(toolchain(spec));
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

 private:
  static tdx::ToolchainInput toolchain(const tdx::BuildSpec& spec) {
    tdx::ToolchainInput t = tdx::stock::compiler_or_pinned(
        spec, "toolchain", k_releases, k_mount, [](const tdx::stock::PinnedRelease& release) {
          const std::string path = "/dist/" + tarball(release.exact());
          return tdx::stock::pinned_toolchain(
              release, k_mount, tdx::stock::server_from_env({"TDX_RUST_DIST_SERVER", "RUSTUP_DIST_SERVER"}), path,
              "set TDX_RUST_DIST_SERVER (or rustup's RUSTUP_DIST_SERVER) to your Rust distribution server or "
              "mirror, which serves " + path + ", or pass compiler=fetch(url, sha256=...)");
        });
    if (t.from_build.empty()) t.layout = "rust-installer";
    return t;
  }
};

}  // namespace

TDX_BUILDER_PLUGIN(RustBuilder, "rust", "1.0.0", "Rust crates with cargo and a pinned toolchain (--remap-path-prefix)")
