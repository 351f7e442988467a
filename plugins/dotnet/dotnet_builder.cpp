// tdx.builders.dotnet.DotnetBuild: .NET projects published with a pinned SDK.
//
// The SDK is an official dotnet-sdk-<version>-linux-x64 tarball, mounted at /opt/dotnet: (1) for
// sdk_version= of a release this plugin knows, downloaded from the server or mirror the user names
// in TDX_DOTNET_DIST_SERVER and checked against the official SHA-512 it carries (Microsoft
// publishes no SHA-256 for SDK tarballs), or (2) compiler=fetch(url, sha256=...). The network is
// off, so NuGet packages must come from a local feed inside src (a nuget.config pointing at a
// vendored folder).
#include "../common.hpp"
#include "../common_toolchain.hpp"

#include <tdx/plugin_api.hpp>

namespace {

using tdx::plugin::option;
using tdx::plugin::shell_quote;

// The official SHA-512 of dotnet-sdk-10.0.100-linux-x64.tar.gz as Microsoft publishes it (two
// independent public copies of it agree). "10.0" (the specification's example) names that first 10.0 SDK.
constexpr const char* k_sdk_10_0_100 =
    "sha512:f78dbac30c9af2230d67ff5c224de3a5dbf63f8a78d1c206594dedb80e6909d2"
    "cc8a9d865d5105c72c2fd2aa266fc0c6c77dedac60408cbccf272b116bd11b07";
constexpr tdx::stock::PinnedRelease k_releases[] = {
    {"10.0", k_sdk_10_0_100, "10.0.100"},
    {"10.0.100", k_sdk_10_0_100},
};

std::string tarball(const std::string& version) { return "dotnet-sdk-" + version + "-linux-x64.tar.gz"; }

constexpr const char* k_mount = "/opt/dotnet";

class DotnetBuilder final : public tdx::plugin::Builder {
 public:
  tdx::StringList validate(const tdx::BuildSpec& spec) const override {
    tdx::StringList problems;
    const std::string w = tdx::stock::where(spec);
    tdx::stock::require_src(spec, problems);
    if (spec.output.empty()) problems.push_back(w + " needs output=, the folder the published program goes to");
    auto compiler = option<std::string>(spec, "compiler", &problems);
    if (compiler && !tdx::stock::compiler_ref_ok(*compiler))
      problems.push_back(w + ": compiler must be a fetch() result (a dotnet-sdk tarball), got '" + *compiler + "'");
    tdx::stock::check_version(spec, "sdk_version", problems, !compiler);
    if (auto v = option<std::string>(spec, "sdk_version"); v && !compiler && !tdx::stock::find_release(k_releases, *v))
      problems.push_back(w + ": .NET SDK " + *v + " is not a release this plugin knows (it knows " +
                         tdx::stock::known_versions(k_releases) + "); pass compiler=fetch(url, sha256=...) with the " +
                         tarball("<version>") + " tarball of the SDK you want");
    auto project = option<std::string>(spec, "project", &problems);
    if (project && (project->empty() || (*project)[0] == '/' || project->find("..") != std::string::npos))
      problems.push_back(w + ": project '" + *project + "' must be a relative path inside src");
    option<bool>(spec, "self_contained", &problems);
    auto runtime = option<std::string>(spec, "runtime", &problems);
    if (runtime && runtime->find_first_of(" ;'\"$`") != std::string::npos)
      problems.push_back(w + ": runtime '" + *runtime + "' is not a runtime identifier like linux-x64");
    tdx::plugin::reject_unknown_options(spec, {"sdk_version", "compiler", "project", "self_contained", "runtime"}, problems);
    return problems;
  }

  tdx::StringMap key_fields(const tdx::BuildSpec& spec) const override {
    tdx::StringMap f;
    f["sdk_version"] = option<std::string>(spec, "sdk_version").value_or("");
    f["project"] = option<std::string>(spec, "project").value_or(".");
    f["self_contained"] = option<bool>(spec, "self_contained").value_or(false) ? "yes" : "no";
    f["runtime"] = option<std::string>(spec, "runtime").value_or("linux-x64");
    return f;
  }

  tdx::BuildPlan plan(const tdx::BuildSpec& spec) const override {
    tdx::BuildPlan plan;
    plan.toolchains.push_back(toolchain(spec));
    plan.env = {{"DOTNET_ROOT", k_mount},
                {"PATH", std::string(k_mount) + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
                {"DOTNET_CLI_TELEMETRY_OPTOUT", "1"},
                {"DOTNET_NOLOGO", "1"},
                {"DOTNET_SKIP_FIRST_TIME_EXPERIENCE", "1"},
                {"DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", "1"},
                {"NUGET_PACKAGES", "/build/home/nuget"}};
    std::string cmd = "dotnet publish " + shell_quote(option<std::string>(spec, "project").value_or(".")) +
                      " --configuration Release --runtime " +
                      shell_quote(option<std::string>(spec, "runtime").value_or("linux-x64")) + " --self-contained " +
                      (option<bool>(spec, "self_contained").value_or(false) ? "true" : "false") +
                      " --output \"$DESTDIR\"" + shell_quote(spec.output);
    if (spec.reproducible) cmd += " -p:Deterministic=true -p:ContinuousIntegrationBuild=true -p:PathMap=/build/src=/src";
    plan.script = "dotnet --version\n" + cmd + "\n";
    return plan;
  }

 private:
  static tdx::ToolchainInput toolchain(const tdx::BuildSpec& spec) {
    return tdx::stock::compiler_or_pinned(
        spec, "sdk_version", k_releases, k_mount, [](const tdx::stock::PinnedRelease& release) {
          const std::string path = "/dotnet/Sdk/" + release.exact() + "/" + tarball(release.exact());
          return tdx::stock::pinned_toolchain(release, k_mount, tdx::stock::server_from_env({"TDX_DOTNET_DIST_SERVER"}),
                                              path,
                                              "set TDX_DOTNET_DIST_SERVER to your .NET download server or mirror, "
                                              "which serves " + path + ", or pass compiler=fetch(url, sha256=...)");
        });
  }
};

}  // namespace

TDX_BUILDER_PLUGIN(DotnetBuilder, "dotnet", "1.0.0", ".NET projects published with a pinned SDK (dotnet publish)")
