#include <tdx/plugin_host.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <string>

#include <tdx/hash.hpp>

#include "support/test_support.hpp"

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using tdx::test::error_of;
using tdx::test::ScopedEnv;

namespace {

const fs::path k_plugin_dir = TDX_TEST_PLUGIN_DIR;

// Loading the eight stock plugins once per test keeps each test independent and is cheap.
class StockPluginsTest : public ::testing::Test {
 protected:
  tdx::PluginRegistry reg{{k_plugin_dir}};

  static tdx::BuildSpec spec(const std::string& builder) {
    tdx::BuildSpec s;
    s.builder = builder;
    s.name = "app";
    s.src = "/project/app";
    s.output = "/usr/bin/app";
    s.site = {"/project/TDXfile", 3};
    return s;
  }
};

TEST_F(StockPluginsTest, AllEightLoad) {
  ASSERT_EQ(reg.records().size(), 8u);
  const std::regex hex64("[0-9a-f]{64}");
  for (const auto& r : reg.records()) {
    EXPECT_TRUE(r.loaded) << r.path << ": " << r.error;
    EXPECT_THAT(r.error, IsEmpty()) << r.path;
    EXPECT_EQ(r.abi_major, 2u) << r.path;
    EXPECT_EQ(r.abi_minor, 0u) << r.path;
    EXPECT_TRUE(std::regex_match(r.sha256, hex64)) << r.path << ": " << r.sha256;
    EXPECT_EQ(r.sha256, tdx::to_hex(tdx::sha256_file(r.path))) << r.path;
    EXPECT_TRUE(r.path.is_absolute()) << r.path;
    EXPECT_NE(r.descriptor, nullptr) << r.path;
    EXPECT_FALSE(r.version.empty()) << r.path;
    EXPECT_FALSE(r.description.empty()) << r.path;
  }
  EXPECT_EQ(reg.names(tdx::plugin::Kind::builder), (tdx::StringList{"c", "dotnet", "go", "rust", "script"}));
  EXPECT_EQ(reg.names(tdx::plugin::Kind::secret_delivery), (tdx::StringList{"script", "ssh", "vsock"}));
}

TEST_F(StockPluginsTest, FindKeepsKindsApart) {
  // "script" is both a builder and a delivery backend; they are different plugins.
  const tdx::PluginRecord* builder = reg.find(tdx::plugin::Kind::builder, "script");
  const tdx::PluginRecord* delivery = reg.find(tdx::plugin::Kind::secret_delivery, "script");
  ASSERT_NE(builder, nullptr);
  ASSERT_NE(delivery, nullptr);
  EXPECT_NE(builder->path, delivery->path);
  EXPECT_EQ(builder->kind, tdx::plugin::Kind::builder);
  EXPECT_EQ(delivery->kind, tdx::plugin::Kind::secret_delivery);
  EXPECT_EQ(reg.find(tdx::plugin::Kind::secret_delivery, "go"), nullptr);
  EXPECT_EQ(tdx::kind_name(tdx::plugin::Kind::builder), "builder");
  EXPECT_EQ(tdx::kind_name(tdx::plugin::Kind::secret_delivery), "secret-delivery");
}

TEST_F(StockPluginsTest, UnknownBuilderSuggestsTheClosestName) {
  std::string message = error_of([&] { reg.builder("scirpt"); });
  EXPECT_THAT(message, HasSubstr("unknown builder 'scirpt'"));
  EXPECT_THAT(message, HasSubstr("did you mean 'script'"));
  EXPECT_THAT(message, HasSubstr("available: c, dotnet, go, rust, script"));

  std::string far = error_of([&] { reg.builder("haskell-stack"); });
  EXPECT_THAT(far, Not(HasSubstr("did you mean")));
  // A delivery backend is not a builder, even with the right name.
  EXPECT_THAT(error_of([&] { reg.builder("vsock"); }), HasSubstr("unknown builder 'vsock'"));
  EXPECT_THAT(error_of([&] { reg.delivery("shh"); }), HasSubstr("did you mean 'ssh'"));
}

TEST_F(StockPluginsTest, SameFolderTwiceRecordsDuplicates) {
  tdx::PluginRegistry twice({k_plugin_dir, k_plugin_dir});
  ASSERT_EQ(twice.records().size(), 16u);
  int duplicates = 0;
  for (const auto& r : twice.records())
    if (!r.loaded) {
      ++duplicates;
      EXPECT_THAT(r.error, HasSubstr("duplicate"));
    }
  EXPECT_EQ(duplicates, 8);
  EXPECT_EQ(twice.names(tdx::plugin::Kind::builder).size(), 5u);
}

TEST_F(StockPluginsTest, ScriptBuilderNeedsABuildScript) {
  tdx::GuardedBuilder script = reg.builder("script");
  EXPECT_EQ(script.name(), "script");
  tdx::BuildSpec s = spec("script");
  tdx::StringList problems = script.validate(s);
  ASSERT_EQ(problems.size(), 1u) << ::testing::PrintToString(problems);
  EXPECT_THAT(problems[0], HasSubstr("script build 'app' needs build_script="));

  s.options["build_script"] = std::string("make install");
  EXPECT_THAT(script.validate(s), IsEmpty());
  EXPECT_EQ(script.plan(s).script, "make install");

  s.options["colour"] = std::string("blue");
  EXPECT_THAT(script.validate(s), Contains(HasSubstr("unknown parameter 'colour'")));
}

TEST_F(StockPluginsTest, ScriptBuilderRejectsAWronglyTypedOption) {
  tdx::BuildSpec s = spec("script");
  s.options["build_script"] = std::int64_t{1};
  EXPECT_THAT(reg.builder("script").validate(s), Contains(HasSubstr("has type int")));
}

TEST_F(StockPluginsTest, VersionedBuildersRejectABadVersion) {
  // Each builder names its version option differently; a fetched compiler stands in for a known release.
  const std::pair<const char*, const char*> cases[] = {
      {"go", "version"}, {"rust", "toolchain"}, {"dotnet", "sdk_version"}};
  const std::string fetched = "sha256:" + std::string(64, 'a');
  for (const auto& [builder, key] : cases) {
    tdx::GuardedBuilder b = reg.builder(builder);
    tdx::BuildSpec s = spec(builder);
    s.options[key] = std::string("1.x");
    EXPECT_THAT(b.validate(s), Contains(HasSubstr("'1.x' is not a version"))) << builder;
    s.options[key] = std::string("1.22.5");
    s.options["compiler"] = fetched;
    EXPECT_THAT(b.validate(s), IsEmpty()) << builder;
    s.options.erase(key);
    s.options.erase("compiler");
    EXPECT_THAT(b.validate(s), Contains(HasSubstr("needs " + std::string(key) + "="))) << builder;
  }
}

TEST_F(StockPluginsTest, GoKnowsItsPinnedReleasesAndSaysWhichOnesOtherwise) {
  tdx::GuardedBuilder go = reg.builder("go");
  tdx::BuildSpec s = spec("go");
  s.options["version"] = std::string("1.22.5");
  EXPECT_THAT(go.validate(s), IsEmpty());
  tdx::BuildPlan plan = go.plan(s);
  ASSERT_EQ(plan.toolchains.size(), 1u);
  EXPECT_EQ(plan.toolchains[0].sha256.size(), 64u);
  EXPECT_EQ(plan.toolchains[0].mount, "/opt/go");
  EXPECT_THAT(plan.script, HasSubstr("-trimpath"));
  s.options["version"] = std::string("1.21.0");
  EXPECT_THAT(go.validate(s), Contains(AllOf(HasSubstr("Go 1.21.0 is not a release this plugin knows"),
                                             HasSubstr("1.22.5"), HasSubstr("compiler=fetch("))));
}

TEST_F(StockPluginsTest, RustPinsOfficialReleasesFetchedFromTheDistServerTheUserNames) {
  tdx::GuardedBuilder rust = reg.builder("rust");
  tdx::BuildSpec s = spec("rust");
  s.options["toolchain"] = std::string("1.95.0");
  EXPECT_THAT(rust.validate(s), IsEmpty());
  {
    ScopedEnv mine("TDX_RUST_DIST_SERVER", "https://example.invalid/rust/");
    ScopedEnv rustup("RUSTUP_DIST_SERVER", "https://rustup.example.invalid");
    tdx::BuildPlan plan = rust.plan(s);
    ASSERT_EQ(plan.toolchains.size(), 1u);
    const tdx::ToolchainInput& t = plan.toolchains[0];
    // The official digest, as rustup's channel manifest for 1.95.0 gives it.
    EXPECT_EQ(t.sha256, "a47ac940abd12399d59ad15c877e7113fa35f2b9ec7e6a8a045d4fd8b9741dea");
    EXPECT_EQ(t.url, "https://example.invalid/rust/dist/rust-1.95.0-x86_64-unknown-linux-gnu.tar.gz");
    EXPECT_EQ(t.layout, "rust-installer");
    EXPECT_EQ(t.mount, "/opt/rust");
  }
  {
    ScopedEnv mine("TDX_RUST_DIST_SERVER", nullptr);
    ScopedEnv rustup("RUSTUP_DIST_SERVER", "https://rustup.example.invalid");
    s.options["toolchain"] = std::string("1.72.1");
    tdx::ToolchainInput t = rust.plan(s).toolchains.at(0);
    EXPECT_EQ(t.sha256, "4fbd8df2000cf73c632d67a219a7fc153537ceffa2e6474491e3db71fdd5a410");
    EXPECT_EQ(t.url, "https://rustup.example.invalid/dist/rust-1.72.1-x86_64-unknown-linux-gnu.tar.gz");
  }
  {
    ScopedEnv mine("TDX_RUST_DIST_SERVER", nullptr);
    ScopedEnv rustup("RUSTUP_DIST_SERVER", nullptr);
    tdx::ToolchainInput t = rust.plan(s).toolchains.at(0);
    EXPECT_THAT(t.url, IsEmpty());
    EXPECT_THAT(t.missing_hint, AllOf(HasSubstr("TDX_RUST_DIST_SERVER"), HasSubstr("RUSTUP_DIST_SERVER"),
                                      HasSubstr("compiler=fetch(url, sha256=...)")));
  }
  for (const char* known : {"1.77.1", "1.81.0"}) {
    s.options["toolchain"] = std::string(known);
    EXPECT_THAT(rust.validate(s), IsEmpty()) << known;
    EXPECT_EQ(rust.plan(s).toolchains.at(0).sha256.size(), 64u) << known;
  }
  s.options["toolchain"] = std::string("1.80.0");
  EXPECT_THAT(rust.validate(s), Contains(AllOf(HasSubstr("Rust 1.80.0 is not a release this plugin knows"),
                                               HasSubstr("1.72.1, 1.77.1, 1.81.0, 1.95.0"),
                                               HasSubstr("compiler=fetch(url, sha256=...) with the "
                                                         "rust-1.80.0-x86_64-unknown-linux-gnu.tar.gz tarball"))));
  // The toolchain option means the same as before in the key.
  EXPECT_EQ(rust.key_fields(s).at("toolchain"), "1.80.0");
}

TEST_F(StockPluginsTest, DotnetPinsSdk10ByItsOfficialSha512) {
  tdx::GuardedBuilder dotnet = reg.builder("dotnet");
  tdx::BuildSpec s = spec("dotnet");
  const std::string sha512 =
      "sha512:f78dbac30c9af2230d67ff5c224de3a5dbf63f8a78d1c206594dedb80e6909d2"
      "cc8a9d865d5105c72c2fd2aa266fc0c6c77dedac60408cbccf272b116bd11b07";
  for (const char* version : {"10.0", "10.0.100"}) {
    s.options["sdk_version"] = std::string(version);
    EXPECT_THAT(dotnet.validate(s), IsEmpty()) << version;
    ScopedEnv server("TDX_DOTNET_DIST_SERVER", "http://127.0.0.1:8080/mirror//");
    tdx::ToolchainInput t = dotnet.plan(s).toolchains.at(0);
    EXPECT_EQ(t.sha256, sha512) << version;
    EXPECT_EQ(t.url, "http://127.0.0.1:8080/mirror/dotnet/Sdk/10.0.100/dotnet-sdk-10.0.100-linux-x64.tar.gz");
    EXPECT_EQ(t.mount, "/opt/dotnet");
    EXPECT_EQ(dotnet.key_fields(s).at("sdk_version"), version);
  }
  {
    ScopedEnv server("TDX_DOTNET_DIST_SERVER", nullptr);
    tdx::ToolchainInput t = dotnet.plan(s).toolchains.at(0);
    EXPECT_THAT(t.url, IsEmpty());
    EXPECT_THAT(t.missing_hint, AllOf(HasSubstr("set TDX_DOTNET_DIST_SERVER"),
                                      HasSubstr("/dotnet/Sdk/10.0.100/dotnet-sdk-10.0.100-linux-x64.tar.gz"),
                                      HasSubstr("compiler=fetch(url, sha256=...)")));
  }
  s.options["sdk_version"] = std::string("9.0");
  EXPECT_THAT(dotnet.validate(s), Contains(AllOf(HasSubstr(".NET SDK 9.0 is not a release this plugin knows"),
                                                 HasSubstr("it knows 10.0, 10.0.100"),
                                                 HasSubstr("compiler=fetch(url, sha256=...)"))));
}

TEST_F(StockPluginsTest, DotnetPlanPublishesWithTheFetchedSdk) {
  tdx::GuardedBuilder dotnet = reg.builder("dotnet");
  tdx::BuildSpec s = spec("dotnet");
  s.output = "/opt/nethermind/";
  s.options["sdk_version"] = std::string("8.0");
  EXPECT_THAT(dotnet.validate(s), Contains(HasSubstr(".NET SDK 8.0 is not a release this plugin knows")));
  s.options["compiler"] = "sha256:" + std::string(64, 'b');
  s.options["project"] = std::string("src/Nethermind/Nethermind.Runner");
  s.options["self_contained"] = true;
  EXPECT_THAT(dotnet.validate(s), IsEmpty());
  tdx::BuildPlan plan = dotnet.plan(s);
  ASSERT_EQ(plan.toolchains.size(), 1u);
  EXPECT_EQ(plan.toolchains[0].sha256, std::string(64, 'b'));
  EXPECT_EQ(plan.toolchains[0].mount, "/opt/dotnet");
  EXPECT_EQ(plan.env.at("DOTNET_CLI_TELEMETRY_OPTOUT"), "1");
  EXPECT_THAT(plan.script, HasSubstr("dotnet publish 'src/Nethermind/Nethermind.Runner' --configuration Release "
                                     "--runtime 'linux-x64' --self-contained true --output \"$DESTDIR\"'/opt/nethermind/'"));
  EXPECT_THAT(plan.script, HasSubstr("-p:Deterministic=true -p:ContinuousIntegrationBuild=true"));
  s.reproducible = false;
  EXPECT_THAT(dotnet.plan(s).script, Not(HasSubstr("Deterministic")));
  s.options["project"] = std::string("../escape");
  EXPECT_THAT(dotnet.validate(s), Contains(HasSubstr("must be a relative path inside src")));
}

TEST_F(StockPluginsTest, RustPlanUsesTheInstallerLayoutAndRemapsPaths) {
  tdx::GuardedBuilder rust = reg.builder("rust");
  tdx::BuildSpec s = spec("rust");
  s.output = "/usr/local/bin/raiko";
  s.options["compiler"] = "sha256:" + std::string(64, 'c');
  s.options["features"] = tdx::StringList{"tdx", "sgx"};
  tdx::BuildPlan plan = rust.plan(s);
  ASSERT_EQ(plan.toolchains.size(), 1u);
  EXPECT_EQ(plan.toolchains[0].layout, "rust-installer");
  EXPECT_THAT(plan.env.at("RUSTFLAGS"), HasSubstr("--remap-path-prefix=/build/src=/src"));
  EXPECT_THAT(plan.script, HasSubstr("--bin 'raiko' --features 'tdx,sgx'"));
  s.reproducible = false;
  EXPECT_EQ(rust.plan(s).env.count("RUSTFLAGS"), 0u);
}

TEST_F(StockPluginsTest, PluginExceptionsBecomeErrorsNamingThePlugin) {
  // tests/plugins/throws: a builder whose every call throws std::runtime_error inside the plugin.
  tdx::PluginRegistry with_thrower({TDX_TEST_PLUGIN_DIR, TDX_TEST_THROWS_PLUGIN_DIR});
  tdx::GuardedBuilder thrower = with_thrower.builder("thrower");
  tdx::BuildSpec s = spec("thrower");
  EXPECT_THAT(error_of([&] { thrower.validate(s); }), HasSubstr("builder plugin 'thrower': boom in validate"));
  EXPECT_THAT(error_of([&] { thrower.plan(s); }), HasSubstr("builder plugin 'thrower': boom in plan"));
}

TEST_F(StockPluginsTest, KeyFieldsComeFromThePlugin) {
  tdx::BuildSpec s = spec("go");
  s.options["version"] = std::string("1.22.5");
  tdx::StringMap fields = reg.builder("go").key_fields(s);
  EXPECT_EQ(fields.at("version"), "1.22.5");
  EXPECT_EQ(fields.at("package"), ".");
}

class PluginFolderTest : public tdx::test::TempDirTest {};

TEST_F(PluginFolderTest, NonPluginFileIsRecordedWithAnError) {
  write("x.so", "this is not a shared object\n");
  write("notes.txt", "ignored: not a .so");
  tdx::PluginRegistry reg({dir()});
  ASSERT_EQ(reg.records().size(), 1u);
  const tdx::PluginRecord& r = reg.records()[0];
  EXPECT_EQ(r.path.filename(), "x.so");
  EXPECT_FALSE(r.loaded);
  EXPECT_FALSE(r.error.empty());
  EXPECT_EQ(r.descriptor, nullptr);
  EXPECT_EQ(r.sha256, tdx::to_hex(tdx::sha256("this is not a shared object\n")));
  EXPECT_THAT(reg.names(tdx::plugin::Kind::builder), IsEmpty());
  EXPECT_THAT(error_of([&] { reg.builder("x"); }), HasSubstr("available: none"));
}

TEST_F(PluginFolderTest, SharedObjectWithoutTheEntryPointIsRefused) {
  // libtdx_core is a real shared object but not a plugin.
  fs::path core = k_plugin_dir.parent_path().parent_path() / "libtdx_core.so";
  ASSERT_TRUE(fs::exists(core)) << core;
  tdx::PluginRegistry reg({core});
  ASSERT_EQ(reg.records().size(), 1u);
  EXPECT_FALSE(reg.records()[0].loaded);
  EXPECT_THAT(reg.records()[0].error, HasSubstr("tdx_plugin_descriptor"));
}

TEST_F(PluginFolderTest, MissingEntriesAreSkipped) {
  tdx::PluginRegistry reg({dir() / "does-not-exist", dir()});
  EXPECT_THAT(reg.records(), IsEmpty());
}

TEST_F(PluginFolderTest, AFileOnTheSearchPathIsLoadedDirectly) {
  tdx::PluginRegistry reg({k_plugin_dir / "tdx-builder-go.so"});
  ASSERT_EQ(reg.records().size(), 1u);
  EXPECT_TRUE(reg.records()[0].loaded) << reg.records()[0].error;
  EXPECT_EQ(reg.names(tdx::plugin::Kind::builder), tdx::StringList{"go"});
}

}  // namespace
