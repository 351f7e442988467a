// tdx.builders.go.GoBuild: Go programs with a pinned Go toolchain, and Go itself from source.
//
// Toolchains come from (1) a release this plugin knows, as the golang.org/toolchain module zip
// that Go's own toolchain switching downloads from a Go module proxy (GOPROXY / TDX_GOPROXY),
// (2) compiler=fetch(url, sha256=...) with an official-layout tarball, or (3) GoFromSource(...),
// an earlier build of this image that ran make.bash.
#include <cstdlib>
#include <sstream>

#include "../common.hpp"
#include "../common_toolchain.hpp"

#include <tdx/plugin_api.hpp>

namespace {

using tdx::plugin::option;
using tdx::plugin::shell_quote;

// Digests of golang.org/toolchain@v0.0.1-go<version>.linux-amd64.zip, taken from zips the Go
// command verified against the Go checksum database (module sums h1:LQChnsjY/4sr... for 1.22.5,
// h1:3fR1BkR9KVNj... for 1.23.4).
constexpr tdx::stock::PinnedRelease k_releases[] = {
    {"1.22.5", "0eb73889fac3ef46a759ca3f8079a7ff656158ee6aedfe127221101824001a77"},
    {"1.23.4", "e1e33fbe9bdeed9d1eec878f90eaf9a1dc856b9197d89e6745373b8c61a57c87"},
};

// The first http(s) entry of TDX_GOPROXY, else of GOPROXY.
std::string module_proxy() {
  for (const char* var : {"TDX_GOPROXY", "GOPROXY"}) {
    const char* value = std::getenv(var);
    if (!value) continue;
    std::stringstream ss(value);
    std::string entry;
    while (std::getline(ss, entry, entry.find('|') != std::string::npos ? '|' : ','))
      if (entry.rfind("http://", 0) == 0 || entry.rfind("https://", 0) == 0) {
        while (!entry.empty() && entry.back() == '/') entry.pop_back();
        return entry;
      }
  }
  return "";
}

constexpr const char* k_mount = "/opt/go";

class GoBuilder final : public tdx::plugin::Builder {
 public:
  tdx::StringList validate(const tdx::BuildSpec& spec) const override {
    tdx::StringList problems;
    const std::string w = tdx::stock::where(spec);
    tdx::stock::require_src(spec, problems);
    if (spec.output.empty()) problems.push_back(w + " needs output=, the path of the program (or toolchain folder) in the image");
    if (!spec.artifacts.empty()) problems.push_back(w + ": artifacts= is not used by the go builder; give output=");
    auto compiler = option<std::string>(spec, "compiler", &problems);
    if (compiler && !tdx::stock::compiler_ref_ok(*compiler))
      problems.push_back(w + ": compiler must be a fetch() result or GoFromSource(...), got '" + *compiler + "'");
    tdx::stock::check_version(spec, "version", problems, !compiler);
    if (auto v = option<std::string>(spec, "version"); v && !compiler && !tdx::stock::find_release(k_releases, *v))
      problems.push_back(w + ": Go " + *v + " is not a release this plugin knows (it knows " +
                         tdx::stock::known_versions(k_releases) +
                         "); pass compiler=fetch(url, sha256=...) with a Go tarball, or GoFromSource(...)");
    option<std::string>(spec, "ldflags", &problems);
    option<std::string>(spec, "package", &problems);
    option<tdx::StringList>(spec, "tags", &problems);
    option<bool>(spec, "cgo", &problems);
    option<bool>(spec, "make_toolchain", &problems);
    if (auto pkg = option<std::string>(spec, "package"); pkg && (pkg->empty() || (*pkg)[0] == '/' || pkg->find("..") != std::string::npos))
      problems.push_back(w + ": package '" + *pkg + "' must be a relative path inside src (like ./cmd/app)");
    tdx::plugin::reject_unknown_options(spec, {"version", "compiler", "ldflags", "package", "tags", "cgo", "make_toolchain"},
                                        problems);
    return problems;
  }

  tdx::StringMap key_fields(const tdx::BuildSpec& spec) const override {
    tdx::StringMap f;
    f["version"] = option<std::string>(spec, "version").value_or("");
    f["ldflags"] = option<std::string>(spec, "ldflags").value_or("");
    f["package"] = option<std::string>(spec, "package").value_or(".");
    f["cgo"] = option<bool>(spec, "cgo").value_or(false) ? "1" : "0";
    f["make_toolchain"] = option<bool>(spec, "make_toolchain").value_or(false) ? "1" : "0";
    std::string tags;
    for (const auto& t : option<tdx::StringList>(spec, "tags").value_or(tdx::StringList{})) tags += t + ",";
    f["tags"] = tags;
    return f;
  }

  tdx::BuildPlan plan(const tdx::BuildSpec& spec) const override {
    tdx::BuildPlan plan;
    plan.toolchains.push_back(toolchain(spec));
    const bool cgo = option<bool>(spec, "cgo").value_or(false);
    if (cgo) plan.build_deps = {"gcc", "libc6-dev"};
    plan.env = {{"GOROOT", k_mount},
                {"PATH", std::string(k_mount) + "/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
                {"GOTOOLCHAIN", "local"},
                {"GOPROXY", "off"},
                {"GOFLAGS", "-buildvcs=false"},
                {"GOCACHE", "/build/home/go-cache"},
                {"GOPATH", "/build/home/go"},
                {"CGO_ENABLED", cgo ? "1" : "0"}};
    if (option<bool>(spec, "make_toolchain").value_or(false)) {
      plan.script = make_toolchain_script(spec);
      return plan;
    }
    std::string ldflags = option<std::string>(spec, "ldflags").value_or("");
    std::string cmd = "go build";
    if (spec.reproducible) {
      cmd += " -trimpath";
      ldflags += std::string(ldflags.empty() ? "" : " ") + "-buildid=";
    }
    auto tags = option<tdx::StringList>(spec, "tags").value_or(tdx::StringList{});
    if (!tags.empty()) {
      std::string joined;
      for (const auto& t : tags) joined += (joined.empty() ? "" : ",") + t;
      cmd += " -tags " + shell_quote(joined);
    }
    if (!ldflags.empty()) cmd += " -ldflags=" + shell_quote(ldflags);
    std::string pkg = option<std::string>(spec, "package").value_or(".");
    if (pkg.rfind("./", 0) != 0 && pkg != ".") pkg = "./" + pkg;
    cmd += " -o \"$DESTDIR\"" + shell_quote(spec.output) + " " + shell_quote(pkg);
    plan.script = "go version\n" + cmd + "\n";
    return plan;
  }

 private:
  static tdx::ToolchainInput toolchain(const tdx::BuildSpec& spec) {
    tdx::ToolchainInput t = tdx::stock::compiler_or_pinned(
        spec, "version", k_releases, k_mount, [](const tdx::stock::PinnedRelease& release) {
          return tdx::stock::pinned_toolchain(
              release, k_mount, module_proxy(),
              "/golang.org/toolchain/@v/v0.0.1-go" + release.exact() + ".linux-amd64.zip",
              "set GOPROXY (or TDX_GOPROXY) to your Go module proxy, the value `go env GOPROXY` prints, "
              "or pass compiler=fetch(url, sha256=...)");
        });
    if (t.from_build.empty()) t.executable_dirs = {"bin", "pkg/tool/linux_amd64"};
    return t;
  }

  // Builds Go itself from the source tree in src with the bootstrap toolchain at /opt/go;
  // the output folder is a complete GOROOT.
  static std::string make_toolchain_script(const tdx::BuildSpec& spec) {
    std::string out = "\"$DESTDIR\"" + shell_quote(spec.output);
    return "test -f src/make.bash || { echo 'src= is not a Go source tree (no src/make.bash)' >&2; exit 1; }\n"
           "rm -rf .git\n"
           "test -f VERSION || { echo 'the Go source tree has no VERSION file' >&2; exit 1; }\n"
           "export GOROOT_BOOTSTRAP=/opt/go\n"
           "unset GOROOT\n"
           "(cd src && ./make.bash)\n"
           "rm -rf pkg/obj \"$GOCACHE\"\n"
           "mkdir -p " + out + "\n"
           "cp -a . " + out + "/\n";
  }
};

}  // namespace

TDX_BUILDER_PLUGIN(GoBuilder, "go", "1.0.0", "Go programs with a pinned Go toolchain (-trimpath), and Go from source")
