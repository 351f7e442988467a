#include <tdx/image.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>

#include "support/test_support.hpp"

using ::testing::HasSubstr;
using ::testing::Not;
using tdx::test::error_of;

namespace {

tdx::CallSite at(int line) { return {"/project/TDXfile", line}; }

tdx::BuildSpec script_build(const std::string& name, const std::string& output, int line) {
  tdx::BuildSpec s;
  s.builder = "script";
  s.name = name;
  s.src = "/project/" + name;
  s.output = output;
  s.options["build_script"] = std::string("make install");
  s.site = at(line);
  return s;
}

tdx::UserSpec user(const std::string& name, int line, std::optional<std::int64_t> uid = std::nullopt) {
  tdx::UserSpec u;
  u.name = name;
  u.uid = uid;
  u.site = at(line);
  return u;
}

tdx::FileSpec file(const std::string& dest, const std::string& content, int line) {
  tdx::FileSpec f;
  f.dest = dest;
  f.content = content;
  f.origin = "content";
  f.site = at(line);
  return f;
}

tdx::SecretDecl secret(const std::string& name, const std::string& dest, int line) {
  tdx::SecretDecl s;
  s.name = name;
  s.dest = dest;
  s.site = at(line);
  return s;
}

TEST(Image, BaseIsSplitIntoDistributionAndRelease) {
  tdx::Image img("app", "debian/trixie", at(1));
  EXPECT_EQ(img.distribution(), "debian");
  EXPECT_EQ(img.release(), "trixie");
  EXPECT_EQ(img.format(), "disk");
}

TEST(Image, UnsupportedBaseSuggestsTheClosest) {
  std::string message = error_of([] { tdx::Image img("app", "debian/bookwrom", at(3)); });
  EXPECT_THAT(message, HasSubstr("/project/TDXfile:3"));
  EXPECT_THAT(message, HasSubstr("'debian/bookwrom'"));
  EXPECT_THAT(message, HasSubstr("did you mean 'debian/bookworm'"));
  EXPECT_THAT(message, HasSubstr("supported: debian/bookworm, debian/trixie"));

  std::string far = error_of([] { tdx::Image img("app", "fedora/40", at(4)); });
  EXPECT_THAT(far, HasSubstr("'fedora/40'"));
  EXPECT_THAT(far, Not(HasSubstr("did you mean")));
}

TEST(Image, NameMustBeUsableAsAFileName) {
  EXPECT_THAT(error_of([] { tdx::Image img("My Image", "debian/bookworm", at(2)); }), HasSubstr("'My Image'"));
  EXPECT_THROW(tdx::Image("../x", "debian/bookworm", at(2)), tdx::Error);
  EXPECT_NO_THROW(tdx::Image("web-1.2_b", "debian/bookworm", at(2)));
}

TEST(Image, SetFormatAcceptsDiskAndDirectoryOnly) {
  tdx::Image img("app", "debian/bookworm", at(1));
  img.set_format("directory");
  EXPECT_EQ(img.format(), "directory");
  EXPECT_THROW(img.set_format("qcow2"), tdx::Error);
  EXPECT_EQ(img.format(), "directory");
}

TEST(Image, InstallIsASortedUnionWithoutDuplicates) {
  tdx::Image img("app", "debian/bookworm", at(1));
  img.install({"curl", "ca-certificates", "curl"}, at(2));
  img.install({"zstd", "ca-certificates", "g++", "0ad"}, at(3));
  EXPECT_EQ(img.packages(), (tdx::StringList{"0ad", "ca-certificates", "curl", "g++", "zstd"}));
}

TEST(Image, InvalidPackageNameIsRejectedWithNameAndCallSite) {
  tdx::Image img("app", "debian/bookworm", at(1));
  img.install({"curl"}, at(2));
  std::string message = error_of([&] { img.install({"jq", "Bad_Name"}, at(7)); });
  EXPECT_THAT(message, HasSubstr("'Bad_Name'"));
  EXPECT_THAT(message, HasSubstr("/project/TDXfile:7"));
  // The whole call is refused: its valid names are not half-installed.
  EXPECT_EQ(img.packages(), tdx::StringList{"curl"});
}

TEST(PackageName, DebianPolicy) {
  for (const char* good : {"curl", "g++", "libc6-dev", "0ad", "python3.11", "ab"})
    EXPECT_TRUE(tdx::is_valid_package_name(good)) << good;
  for (const char* bad : {"", "a", "Curl", "-dash", "+plus", "under_score", "sp ace", "a/b", ".dot"})
    EXPECT_FALSE(tdx::is_valid_package_name(bad)) << bad;
}

TEST(Image, IdenticalBuildIsRegisteredOnce) {
  tdx::Image img("app", "debian/bookworm", at(1));
  EXPECT_TRUE(img.build(script_build("api", "/usr/bin/api", 5)));
  // The same declared spec from another call site (a shared module imported twice) is not a conflict.
  EXPECT_FALSE(img.build(script_build("api", "/usr/bin/api", 9)));
  ASSERT_EQ(img.builds().size(), 1u);
  EXPECT_EQ(img.builds()[0].spec.site.line, 5);
  EXPECT_EQ(img.builds()[0].spec_id.size(), 64u);
}

TEST(Image, BuildsDifferingInAnOptionAreDistinct) {
  tdx::Image img("app", "debian/bookworm", at(1));
  // No output, so the two builds claim no path and only the spec identity decides.
  tdx::BuildSpec a = script_build("api", "", 5);
  tdx::BuildSpec b = a;
  b.options["build_script"] = std::string("make all");
  tdx::BuildSpec c = a;
  c.env["CC"] = "clang";
  EXPECT_TRUE(img.build(a));
  EXPECT_TRUE(img.build(b));
  EXPECT_TRUE(img.build(c));
  EXPECT_FALSE(img.build(a));
  ASSERT_EQ(img.builds().size(), 3u);
  EXPECT_NE(img.builds()[0].spec_id, img.builds()[1].spec_id);
  EXPECT_NE(img.builds()[0].spec_id, img.builds()[2].spec_id);
}

TEST(Image, TwoBuildsWritingOnePathNameBothCallSites) {
  tdx::Image img("app", "debian/bookworm", at(1));
  ASSERT_TRUE(img.build(script_build("a", "/usr/bin/app", 10)));
  std::string message = error_of([&] { img.build(script_build("b", "/usr/bin/app", 12)); });
  EXPECT_THAT(message, HasSubstr("/usr/bin/app"));
  EXPECT_THAT(message, HasSubstr("/project/TDXfile:10"));
  EXPECT_THAT(message, HasSubstr("/project/TDXfile:12"));
  EXPECT_THAT(message, HasSubstr("build 'a'"));
  EXPECT_THAT(message, HasSubstr("build 'b'"));
  EXPECT_EQ(img.builds().size(), 1u);
}

TEST(Image, ArtifactAndFileCollide) {
  tdx::Image img("app", "debian/bookworm", at(1));
  tdx::BuildSpec b = script_build("a", "", 10);
  b.artifacts = {{"bin/tool", "/usr/local/bin/tool"}};
  ASSERT_TRUE(img.build(b));
  std::string message = error_of([&] { img.file(file("/usr/local/bin/tool", "x", 14)); });
  EXPECT_THAT(message, HasSubstr("/project/TDXfile:10"));
  EXPECT_THAT(message, HasSubstr("/project/TDXfile:14"));
}

TEST(Image, RefusedBuildClaimsNoPath) {
  tdx::Image img("app", "debian/bookworm", at(1));
  img.file(file("/etc/shared.conf", "x", 8));
  tdx::BuildSpec b = script_build("a", "/usr/bin/a", 10);
  b.artifacts = {{"shared.conf", "/etc/shared.conf"}};
  EXPECT_THROW(img.build(b), tdx::Error);
  EXPECT_TRUE(img.builds().empty());
  // The refused build must not block another entry from writing /usr/bin/a.
  EXPECT_NO_THROW(img.file(file("/usr/bin/a", "#!/bin/sh\n", 12)));
}

TEST(Image, InvalidBuildDepIsRejected) {
  tdx::Image img("app", "debian/bookworm", at(1));
  tdx::BuildSpec b = script_build("a", "/usr/bin/a", 10);
  b.build_deps = {"make", "Not Valid"};
  EXPECT_THAT(error_of([&] { img.build(b); }), HasSubstr("'Not Valid'"));
  EXPECT_TRUE(img.builds().empty());
}

TEST(Image, DuplicateUserNamesBothCallSites) {
  tdx::Image img("app", "debian/bookworm", at(1));
  img.user(user("svc", 20));
  std::string message = error_of([&] { img.user(user("svc", 25)); });
  EXPECT_THAT(message, HasSubstr("'svc'"));
  EXPECT_THAT(message, HasSubstr("/project/TDXfile:20"));
  EXPECT_THAT(message, HasSubstr("/project/TDXfile:25"));
  EXPECT_EQ(img.users().size(), 1u);
}

TEST(Image, DuplicateUidIsRejected) {
  tdx::Image img("app", "debian/bookworm", at(1));
  img.user(user("alice", 20, 1500));
  img.user(user("carol", 21, 1501));
  std::string message = error_of([&] { img.user(user("bob", 22, 1500)); });
  EXPECT_THAT(message, HasSubstr("uid 1500"));
  EXPECT_THAT(message, HasSubstr("'alice'"));
  EXPECT_THAT(message, HasSubstr("/project/TDXfile:20"));
  EXPECT_THAT(message, HasSubstr("/project/TDXfile:22"));
  // Users without a fixed uid never clash with each other.
  img.user(user("dave", 23));
  EXPECT_NO_THROW(img.user(user("erin", 24)));
}

TEST(Image, UidOutsideRangeAndBadNamesAreRejected) {
  tdx::Image img("app", "debian/bookworm", at(1));
  EXPECT_THROW(img.user(user("zero", 2, 0)), tdx::Error);
  EXPECT_THROW(img.user(user("nobody2", 2, 65534)), tdx::Error);
  EXPECT_THROW(img.user(user("Root", 2)), tdx::Error);
  EXPECT_THROW(img.user(user("9lives", 2)), tdx::Error);
  tdx::UserSpec relative_home = user("web", 3);
  relative_home.home = "srv/web";
  EXPECT_THAT(error_of([&] { img.user(relative_home); }), HasSubstr("'srv/web'"));
  tdx::UserSpec bad_group = user("web", 4);
  bad_group.groups = {"Wheel"};
  EXPECT_THAT(error_of([&] { img.user(bad_group); }), HasSubstr("'Wheel'"));
  EXPECT_TRUE(img.users().empty());
  EXPECT_TRUE(img.steps().empty());
}

TEST(Image, FileDestinationMustBeAbsolute) {
  tdx::Image img("app", "debian/bookworm", at(1));
  std::string message = error_of([&] { img.file(file("etc/app.conf", "x", 30)); });
  EXPECT_THAT(message, HasSubstr("'etc/app.conf'"));
  EXPECT_THAT(message, HasSubstr("/project/TDXfile:30"));
  EXPECT_THROW(img.file(file("", "x", 31)), tdx::Error);
  EXPECT_THROW(img.file(file("/etc/../root/x", "x", 32)), tdx::Error);
  EXPECT_THROW(img.file(file("/etc/..", "x", 33)), tdx::Error);
  EXPECT_TRUE(img.files().empty());
}

TEST(Image, FileModeAboveSevenSevenSevenSevenIsRejected) {
  tdx::Image img("app", "debian/bookworm", at(1));
  tdx::FileSpec f = file("/etc/app.conf", "x", 30);
  f.mode = 010000;
  EXPECT_THROW(img.file(f), tdx::Error);
  f.mode = 04755;
  EXPECT_NO_THROW(img.file(f));
}

TEST(Image, TwoFilesOnOnePathNameBothCallSites) {
  tdx::Image img("app", "debian/bookworm", at(1));
  img.file(file("/etc/app.conf", "a", 30));
  tdx::FileSpec t = file("/etc/app.conf", "b", 31);
  t.origin = "template:app.conf.j2";
  std::string message = error_of([&] { img.file(t); });
  EXPECT_THAT(message, HasSubstr("template writes /etc/app.conf"));
  EXPECT_THAT(message, HasSubstr("file at /project/TDXfile:30"));
  EXPECT_THAT(message, HasSubstr("/project/TDXfile:31"));
}

TEST(ServiceSpec, UnitTextOrdersSectionsUnitServiceOthersInstall) {
  tdx::ServiceSpec s;
  s.name = "web";
  s.exec = "/usr/bin/web --port 8080";
  s.after = {"network-online.target", "postgresql.service"};
  s.wants = {"network-online.target"};
  s.restart = "on-failure";
  s.user = "web";
  s.extra_unit["Install"]["Alias"] = {"webapp.service"};
  s.extra_unit["Service"]["Environment"] = {"A=1", "B=2"};
  s.extra_unit["X-Tdx"]["Note"] = {"generated"};
  s.extra_unit["Unit"]["Documentation"] = {"man:web(8)"};
  EXPECT_EQ(s.unit_text(),
            "[Unit]\n"
            "Description=web\n"
            "After=network-online.target postgresql.service\n"
            "Wants=network-online.target\n"
            "Documentation=man:web(8)\n"
            "\n"
            "[Service]\n"
            "ExecStart=/usr/bin/web --port 8080\n"
            "Restart=on-failure\n"
            "User=web\n"
            "Environment=A=1\n"
            "Environment=B=2\n"
            "\n"
            "[X-Tdx]\n"
            "Note=generated\n"
            "\n"
            "[Install]\n"
            "WantedBy=multi-user.target\n"
            "Alias=webapp.service\n");
}

TEST(ServiceSpec, InstallStaysLastWhenAnotherSectionSortsBeforeIt) {
  tdx::ServiceSpec s;
  s.name = "web";
  s.description = "The web front end";
  s.exec = "/usr/bin/web";
  s.extra_unit["Automount"]["Where"] = {"/srv"};
  s.extra_unit["X-Zeta"]["Z"] = {"1"};
  std::string text = s.unit_text();
  EXPECT_EQ(text.find("[Unit]\nDescription=The web front end\n"), 0u) << text;
  auto service = text.find("[Service]");
  auto automount = text.find("[Automount]");
  auto zeta = text.find("[X-Zeta]");
  auto install = text.find("[Install]");
  ASSERT_NE(install, std::string::npos) << text;
  EXPECT_LT(service, automount);
  EXPECT_LT(automount, zeta);
  EXPECT_LT(zeta, install);
  EXPECT_EQ(text.substr(install), "[Install]\nWantedBy=multi-user.target\n");
}

TEST(ServiceSpec, NoWantedByMeansNoInstallSection) {
  tdx::ServiceSpec s;
  s.name = "oneshot";
  s.exec = "/bin/true";
  s.wanted_by.clear();
  EXPECT_EQ(s.unit_text(), "[Unit]\nDescription=oneshot\n\n[Service]\nExecStart=/bin/true\n");
}

TEST(Image, ServiceNeedsExecAndAValidName) {
  tdx::Image img("app", "debian/bookworm", at(1));
  tdx::ServiceSpec s;
  s.name = "web";
  s.site = at(40);
  EXPECT_THAT(error_of([&] { img.service(s); }), HasSubstr("exec="));
  s.exec = "/usr/bin/web";
  s.name = "web app";
  EXPECT_THROW(img.service(s), tdx::Error);
  s.name = "web@1";
  EXPECT_NO_THROW(img.service(s));
  // The unit file path is claimed like any other file.
  EXPECT_THROW(img.file(file("/etc/systemd/system/web@1.service", "x", 41)), tdx::Error);
}

TEST(Image, RunNeedsACommand) {
  tdx::Image img("app", "debian/bookworm", at(1));
  EXPECT_THROW(img.run({"", at(50)}), tdx::Error);
  EXPECT_TRUE(img.steps().empty());
}

TEST(Image, RecipeJsonListsStepsInCallOrder) {
  tdx::Image img("app", "debian/bookworm", at(1));
  img.install({"curl"}, at(2));
  img.run({"echo first", at(3)});
  img.file(file("/etc/app.conf", "key=value\n", 4));
  img.user(user("app", 5));
  tdx::ServiceSpec s;
  s.name = "app";
  s.exec = "/usr/bin/app";
  s.site = at(6);
  img.service(s);
  img.run({"echo last", at(7)});
  std::string json = img.recipe_json();
  const std::string steps =
      "  \"steps\": [\n"
      "    \"run echo first\",\n"
      "    \"file /etc/app.conf\",\n"
      "    \"user app\",\n"
      "    \"service app\",\n"
      "    \"run echo last\"\n"
      "  ]\n"
      "}\n";
  ASSERT_GE(json.size(), steps.size());
  EXPECT_EQ(json.substr(json.size() - steps.size()), steps) << json;
  EXPECT_THAT(json, HasSubstr("\"name\": \"app\""));
  EXPECT_THAT(json, HasSubstr("\"content\": \"key=value\\n\""));
  EXPECT_THAT(json, HasSubstr("\"mode\": \"0644\""));
  EXPECT_THAT(json, HasSubstr("\"secret_delivery\": null"));
}

TEST(Image, SecretDeclarations) {
  tdx::Image img("app", "debian/bookworm", at(1));
  tdx::SecretDecl s = secret("db_password", "/run/secrets/db", 60);
  s.owner = "app";
  s.mode = "0440";
  img.secret(s);
  tdx::SecretDecl three_digits = secret("api_key", "/run/secrets/api", 61);
  three_digits.mode = "600";
  img.secret(three_digits);
  ASSERT_EQ(img.secrets().size(), 2u);
  EXPECT_EQ(img.secrets()[0].owner, "app");
  // Secrets are delivered at boot, not post-install steps.
  EXPECT_TRUE(img.steps().empty());
  EXPECT_THAT(img.recipe_json(), HasSubstr("\"name\": \"db_password\""));
}

TEST(Image, DuplicateSecretNameNamesBothCallSites) {
  tdx::Image img("app", "debian/bookworm", at(1));
  img.secret(secret("token", "/run/secrets/a", 60));
  std::string message = error_of([&] { img.secret(secret("token", "/run/secrets/b", 64)); });
  EXPECT_THAT(message, HasSubstr("'token'"));
  EXPECT_THAT(message, HasSubstr("/project/TDXfile:60"));
  EXPECT_THAT(message, HasSubstr("/project/TDXfile:64"));
}

TEST(Image, SecretModeNameAndDestinationAreChecked) {
  tdx::Image img("app", "debian/bookworm", at(1));
  for (const char* mode : {"999", "0800", "rw-r-----", "", "00400", "4"}) {
    tdx::SecretDecl s = secret("token", "/run/secrets/token", 60);
    s.mode = mode;
    EXPECT_THAT(error_of([&] { img.secret(s); }), HasSubstr("mode '" + std::string(mode) + "'")) << mode;
  }
  EXPECT_THROW(img.secret(secret("1token", "/run/secrets/t", 61)), tdx::Error);
  EXPECT_THROW(img.secret(secret("to-ken", "/run/secrets/t", 61)), tdx::Error);
  EXPECT_THAT(error_of([&] { img.secret(secret(std::string(129, 'k'), "/run/secrets/t", 61)); }),
              HasSubstr("at most 128 characters"));
  img.secret(secret(std::string(128, 'k'), "/run/secrets/long", 61));  // the receiver's limit, exactly
  ASSERT_EQ(img.secrets().size(), 1u);
  EXPECT_THROW(img.secret(secret("token", "run/secrets/t", 62)), tdx::Error);
  EXPECT_EQ(img.secrets().size(), 1u);
  // The secret's destination is claimed, so a file cannot overwrite it.
  img.secret(secret("token", "/run/secrets/t", 63));
  EXPECT_THAT(error_of([&] { img.file(file("/run/secrets/t", "x", 64)); }), HasSubstr("secret 'token'"));
}

TEST(Image, SecretDestinationsHaveOneSpellingAndOwnersAreNames) {
  tdx::Image img("app", "debian/bookworm", at(1));
  for (const char* dest : {"/etc//token", "/etc/./token", "/etc/../token", "/etc/token/", "/etc/to\tken", "/etc/to ken",
                           "/etc/to\nken", "/", "/etc/.."}) {
    std::string message = error_of([&] { img.secret(secret("token", dest, 60)); });
    EXPECT_THAT(message, HasSubstr("destination '" + std::string(dest) + "'")) << dest;
    EXPECT_THAT(message, HasSubstr("normalized absolute file path")) << dest;
  }
  tdx::SecretDecl s = secret("token", "/etc/app/.token-v2@x", 61);
  s.owner = "app\tx";
  EXPECT_THAT(error_of([&] { img.secret(s); }), HasSubstr("owner 'app\tx' of secret 'token' is not a valid user name"));
  s.owner = "app";
  s.group = "Wheel";
  EXPECT_THAT(error_of([&] { img.secret(s); }), HasSubstr("group 'Wheel' of secret 'token' is not a valid group name"));
  s.group = "";
  s.mode = "440";
  img.secret(s);  // dot files and '@' are fine
  EXPECT_EQ(img.secrets().at(0).mode, "0440");  // one spelling in secrets.list and the manifest
}

TEST(Image, ClaimedByNamesWhatWritesAPath) {
  tdx::Image img("app", "debian/bookworm", at(1));
  img.secret(secret("token", "/etc/app/token", 60));
  EXPECT_THAT(img.claimed_by("/etc/app/token"), HasSubstr("secret 'token' at /project/TDXfile:60"));
  EXPECT_EQ(img.claimed_by("/etc/app/other"), "");
}

TEST(Image, OneSecretDeliveryBackendPerImage) {
  tdx::Image img("app", "debian/bookworm", at(1));
  img.secret_delivery({"ssh", {{"port", std::int64_t{22}}}, at(70)});
  img.secret_delivery({"ssh", {{"port", std::int64_t{2222}}}, at(71)});
  ASSERT_TRUE(img.delivery().has_value());
  EXPECT_EQ(std::get<std::int64_t>(img.delivery()->options.at("port")), 2222);
  std::string message = error_of([&] { img.secret_delivery({"vsock", {}, at(72)}); });
  EXPECT_THAT(message, HasSubstr("'ssh'"));
  EXPECT_THAT(message, HasSubstr("/project/TDXfile:71"));
  EXPECT_THAT(message, HasSubstr("/project/TDXfile:72"));
}

TEST(ImageRegistry, ImagesRegisterWhileAlive) {
  auto& registry = tdx::ImageRegistry::instance();
  const auto count = registry.images().size();
  auto contains = [&](const tdx::Image* img) {
    return std::find(registry.images().begin(), registry.images().end(), img) != registry.images().end();
  };
  auto first = std::make_unique<tdx::Image>("first", "debian/bookworm", at(1));
  auto second = std::make_unique<tdx::Image>("second", "debian/trixie", at(2));
  ASSERT_EQ(registry.images().size(), count + 2);
  EXPECT_EQ(registry.images()[count], first.get());
  EXPECT_EQ(registry.images()[count + 1], second.get());
  const tdx::Image* gone = first.get();
  first.reset();
  EXPECT_FALSE(contains(gone));
  EXPECT_TRUE(contains(second.get()));
  second.reset();
  EXPECT_EQ(registry.images().size(), count);
}

TEST(ImageRegistry, FailedConstructionLeavesNoEntry) {
  auto& registry = tdx::ImageRegistry::instance();
  const auto count = registry.images().size();
  EXPECT_THROW(tdx::Image("app", "debian/sid", at(1)), tdx::Error);
  EXPECT_EQ(registry.images().size(), count);
}

}  // namespace
