#include <tdx/mkosi.hpp>

#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <sstream>
#include <string>

#include "support/test_support.hpp"

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

constexpr const char* k_mirror = "https://example.invalid/debian/";
constexpr const char* k_security = "https://example.invalid/debian-security/";

// The value of `key=` in an INI-style text, or "<missing>" when no line sets it.
std::string ini_value(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + "=", 0) == 0) return line.substr(key.size() + 1);
  return "<missing>";
}

class MkosiTreeTest : public tdx::test::TempDirTest {
 protected:
  tdx::CallSite at(int line) const { return {(dir() / "TDXfile").string(), line}; }

  tdx::AssemblyInputs inputs() const {
    tdx::AssemblyInputs in;
    in.sources = {k_mirror, ""};
    in.project_dir = dir();
    return in;
  }

  // A recipe exercising every step kind, in an order different from the kinds' declaration order.
  void fill(tdx::Image& img) const {
    img.install({"zstd", "curl"}, at(2));
    img.run({"echo first", at(3)});
    tdx::FileSpec f;
    f.dest = "/etc/app/app.conf";
    f.content = "listen = 8080\nsecret = 'quoted'\n";
    f.origin = "content";
    f.mode = 0640;
    f.owner = "app:app";
    f.site = at(4);
    img.file(f);
    tdx::UserSpec u;
    u.name = "app";
    u.system = true;
    u.uid = 1500;
    u.site = at(5);
    img.user(u);
    tdx::ServiceSpec s;
    s.name = "app";
    s.exec = "/usr/bin/app";
    s.user = "app";
    s.site = at(6);
    img.service(s);
    img.run({"echo last", at(7)});
  }

  static const std::string& file_of(const tdx::GeneratedTree& tree, const std::string& rel) {
    static const std::string missing = "<missing>";
    auto it = tree.files.find(rel);
    return it == tree.files.end() ? missing : it->second.first;
  }
};

TEST_F(MkosiTreeTest, ConfHasFormatAndSortedPackagesWithBootPackagesForDisk) {
  tdx::Image img("app", "debian/bookworm", at(1));
  fill(img);
  tdx::GeneratedTree tree = tdx::generate_mkosi_tree(img, inputs());
  const std::string& conf = file_of(tree, "mkosi.conf");
  EXPECT_EQ(ini_value(conf, "Distribution"), "debian");
  EXPECT_EQ(ini_value(conf, "Release"), "bookworm");
  EXPECT_EQ(ini_value(conf, "Format"), "disk");
  EXPECT_EQ(ini_value(conf, "Output"), "app");
  EXPECT_EQ(ini_value(conf, "Bootable"), "yes");
  EXPECT_EQ(ini_value(conf, "Bootloader"), "uki");
  EXPECT_EQ(ini_value(conf, "Packages"),
            "curl,dbus,linux-image-amd64,passwd,systemd,systemd-boot-efi,systemd-sysv,udev,zstd");
  EXPECT_EQ(ini_value(conf, "ExtraTrees"), "tdx-stage:/tdx-stage");
}

TEST_F(MkosiTreeTest, DirectoryFormatAddsPasswdAndSystemdOnlyWhenNeeded) {
  tdx::Image img("app", "debian/bookworm", at(1));
  img.set_format("directory");
  img.install({"zstd", "curl"}, at(2));
  const std::string conf = file_of(tdx::generate_mkosi_tree(img, inputs()), "mkosi.conf");
  EXPECT_EQ(ini_value(conf, "Format"), "directory");
  EXPECT_EQ(ini_value(conf, "Bootable"), "no");
  EXPECT_EQ(ini_value(conf, "Bootloader"), "<missing>");
  EXPECT_EQ(ini_value(conf, "Packages"), "curl,zstd");
  EXPECT_EQ(ini_value(conf, "ExtraTrees"), "<missing>");  // nothing staged

  tdx::UserSpec u;
  u.name = "app";
  u.site = at(3);
  img.user(u);
  EXPECT_EQ(ini_value(file_of(tdx::generate_mkosi_tree(img, inputs()), "mkosi.conf"), "Packages"), "curl,passwd,zstd");

  tdx::ServiceSpec s;
  s.name = "app";
  s.exec = "/usr/bin/app";
  s.site = at(4);
  img.service(s);
  EXPECT_EQ(ini_value(file_of(tdx::generate_mkosi_tree(img, inputs()), "mkosi.conf"), "Packages"),
            "curl,passwd,systemd,zstd");
}

TEST_F(MkosiTreeTest, FormatPackages) {
  tdx::Image img("app", "debian/bookworm", at(1));
  EXPECT_EQ(tdx::format_packages(img),
            (tdx::StringList{"dbus", "linux-image-amd64", "systemd", "systemd-boot-efi", "systemd-sysv", "udev"}));
  img.set_format("directory");
  EXPECT_TRUE(tdx::format_packages(img).empty());
}

TEST_F(MkosiTreeTest, SeedIsAStableUuidPerImageName) {
  tdx::Image a("app", "debian/bookworm", at(1));
  tdx::Image a_again("app", "debian/trixie", at(2));
  tdx::Image b("app2", "debian/bookworm", at(3));
  std::string seed_a = ini_value(file_of(tdx::generate_mkosi_tree(a, inputs()), "mkosi.conf"), "Seed");
  std::string seed_a_again = ini_value(file_of(tdx::generate_mkosi_tree(a_again, inputs()), "mkosi.conf"), "Seed");
  std::string seed_b = ini_value(file_of(tdx::generate_mkosi_tree(b, inputs()), "mkosi.conf"), "Seed");
  EXPECT_EQ(seed_a, seed_a_again);
  EXPECT_NE(seed_a, seed_b);
  // mkosi wants a UUID; version 4 with the RFC 4122 variant.
  const std::regex uuid("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  EXPECT_TRUE(std::regex_match(seed_a, uuid)) << seed_a;
  EXPECT_TRUE(std::regex_match(seed_b, uuid)) << seed_b;
}

TEST_F(MkosiTreeTest, PostinstListsStepsInCallOrder) {
  tdx::Image img("app", "debian/bookworm", at(1));
  fill(img);
  tdx::GeneratedTree tree = tdx::generate_mkosi_tree(img, inputs());
  ASSERT_EQ(tree.files.count("mkosi.postinst.chroot"), 1u);
  EXPECT_EQ(tree.files.at("mkosi.postinst.chroot").second, 0755u);
  const std::string& script = file_of(tree, "mkosi.postinst.chroot");
  EXPECT_EQ(script.rfind("#!/bin/sh\n", 0), 0u);
  EXPECT_THAT(script, HasSubstr("set -eu\n"));
  // Call sites are shown relative to the project folder.
  const std::vector<std::string> in_order = {
      "\n# run (TDXfile:3)\necho first\n",
      "\n# file /etc/app/app.conf (TDXfile:4)\n",
      "\n# user app (TDXfile:5)\n",
      "\n# service app (TDXfile:6)\n",
      "\n# run (TDXfile:7)\necho last\n",
      "\nrm -rf \"$stage\"\n",
  };
  std::size_t previous = 0;
  for (const auto& piece : in_order) {
    std::size_t pos = script.find(piece);
    ASSERT_NE(pos, std::string::npos) << "missing: " << piece << "\nin:\n" << script;
    EXPECT_GT(pos, previous) << piece << " is out of order in:\n" << script;
    previous = pos;
  }
  EXPECT_THAT(script, HasSubstr("groupadd --system --gid 1500 'app'\n"));
  EXPECT_THAT(script, HasSubstr("useradd --system --uid 1500 --gid 1500 --no-create-home "
                                "--shell '/usr/sbin/nologin' 'app'\n"));
  EXPECT_THAT(script, HasSubstr("systemctl enable 'app.service'\n"));
}

TEST_F(MkosiTreeTest, StagedFilesHoldTheRecordedContent) {
  tdx::Image img("app", "debian/bookworm", at(1));
  fill(img);
  tdx::GeneratedTree tree = tdx::generate_mkosi_tree(img, inputs());
  const std::string& script = file_of(tree, "mkosi.postinst.chroot");
  // The file is staged first (0001), the unit second (0002): the order of their steps.
  EXPECT_EQ(file_of(tree, "tdx-stage/0001"), img.files()[0].content);
  EXPECT_THAT(script, HasSubstr("install -D -m 0640 \"$stage/0001\" '/etc/app/app.conf'\n"
                                "chown 'app:app' '/etc/app/app.conf'\n"));
  EXPECT_EQ(file_of(tree, "tdx-stage/0002"), img.services()[0].unit_text());
  EXPECT_THAT(script, HasSubstr("install -D -m 0644 \"$stage/0002\" '/etc/systemd/system/app.service'\n"));
  EXPECT_EQ(tree.files.count("tdx-stage/0003"), 0u);
}

TEST_F(MkosiTreeTest, SiteOutsideTheProjectShowsFolderAndFile) {
  tdx::Image img("app", "debian/bookworm", at(1));
  img.run({"true", {"/elsewhere/lib/common.py", 12}});
  const std::string& script = file_of(tdx::generate_mkosi_tree(img, inputs()), "mkosi.postinst.chroot");
  EXPECT_THAT(script, HasSubstr("# run (lib/common.py:12)\n"));
  EXPECT_THAT(script, Not(HasSubstr("/elsewhere")));
}

TEST_F(MkosiTreeTest, GeneratingTwiceGivesIdenticalTrees) {
  tdx::Image img("app", "debian/bookworm", at(1));
  fill(img);
  tdx::AssemblyInputs in = inputs();
  in.sources.security = k_security;
  in.artifacts = {{"0123abcd", dir() / "artifact"}};
  tdx::GeneratedTree first = tdx::generate_mkosi_tree(img, in);
  tdx::GeneratedTree second = tdx::generate_mkosi_tree(img, in);
  EXPECT_EQ(first.files, second.files);
  ASSERT_EQ(second.artifacts.size(), 1u);
  EXPECT_EQ(second.artifacts[0].key, "0123abcd");
  EXPECT_THAT(file_of(first, "mkosi.conf"), HasSubstr("ExtraTrees=artifacts/0123abcd:/\n"));
}

TEST_F(MkosiTreeTest, SecretDeliveryExtrasComeAfterTheRecipe) {
  tdx::Image img("app", "debian/bookworm", at(1));
  img.set_format("directory");
  img.run({"echo recipe", at(2)});
  tdx::AssemblyInputs in = inputs();
  tdx::DeliveryPlan plan;
  plan.files = {{"/usr/lib/tdx/receiver", "#!/bin/sh\n", 0755}};
  plan.packages = {"openssh-server"};
  plan.enable_units = {"tdx-receiver.service"};
  plan.commands = {"echo delivered"};
  tdx::UserSpec account;
  account.name = "tdx-secrets";
  account.system = true;
  account.home = "/run/tdx-secrets";
  account.create_home = false;
  account.shell = "/bin/sh";
  plan.users = {account};
  in.delivery = plan;
  tdx::GeneratedTree tree = tdx::generate_mkosi_tree(img, in);
  EXPECT_EQ(ini_value(file_of(tree, "mkosi.conf"), "Packages"), "openssh-server,passwd,systemd");
  EXPECT_EQ(file_of(tree, "tdx-stage/0001"), "#!/bin/sh\n");
  const std::string& script = file_of(tree, "mkosi.postinst.chroot");
  std::size_t recipe = script.find("echo recipe");
  std::size_t delivery = script.find("# secret delivery\n");
  ASSERT_NE(delivery, std::string::npos) << script;
  EXPECT_LT(recipe, delivery);
  EXPECT_THAT(script.substr(delivery),
              HasSubstr("useradd --system --user-group --home-dir '/run/tdx-secrets' --no-create-home --shell '/bin/sh' "
                        "'tdx-secrets'\n"
                        "install -D -m 0755 \"$stage/0001\" '/usr/lib/tdx/receiver'\n"
                        "systemctl enable 'tdx-receiver.service'\n"
                        "echo delivered\n"));
  EXPECT_THAT(script, Not(HasSubstr("mkdir -p '/run/tdx-secrets'")));  // the home is made at boot, not in the image
}

TEST_F(MkosiTreeTest, NoDeliveryNoDeliverySection) {
  tdx::Image img("app", "debian/bookworm", at(1));
  img.set_format("directory");
  tdx::GeneratedTree tree = tdx::generate_mkosi_tree(img, inputs());
  EXPECT_THAT(file_of(tree, "mkosi.postinst.chroot"), Not(HasSubstr("secret delivery")));
  EXPECT_EQ(ini_value(file_of(tree, "mkosi.conf"), "Packages"), "<missing>");
}

TEST(MkosiSourcesFile, MainOnly) {
  EXPECT_EQ(tdx::mkosi_sources_file({k_mirror, ""}, "bookworm"),
            "Types: deb\n"
            "URIs: https://example.invalid/debian/\n"
            "Suites: bookworm bookworm-updates\n"
            "Components: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n");
}

TEST(MkosiSourcesFile, WithSecurity) {
  EXPECT_EQ(tdx::mkosi_sources_file({k_mirror, k_security}, "trixie"),
            "Types: deb\n"
            "URIs: https://example.invalid/debian/\n"
            "Suites: trixie trixie-updates\n"
            "Components: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
            "\n"
            "Types: deb\n"
            "URIs: https://example.invalid/debian-security/\n"
            "Suites: trixie-security\n"
            "Components: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n");
}

TEST_F(MkosiTreeTest, TreeCarriesTheSourcesFile) {
  tdx::Image img("app", "debian/trixie", at(1));
  tdx::AssemblyInputs in = inputs();
  in.sources.security = k_security;
  EXPECT_EQ(file_of(tdx::generate_mkosi_tree(img, in), "mkosi.pkgmngr/etc/apt/sources.list.d/mkosi.sources"),
            tdx::mkosi_sources_file(in.sources, "trixie"));
}

TEST_F(MkosiTreeTest, WriteTreeWritesModesAndLinksArtifacts) {
  tdx::Image img("app", "debian/bookworm", at(1));
  fill(img);
  write("artifact/usr/bin/app", "ELF");
  tdx::AssemblyInputs in = inputs();
  in.artifacts = {{"feedbeef", dir() / "artifact"}};
  tdx::GeneratedTree tree = tdx::generate_mkosi_tree(img, in);
  fs::path out = dir() / "mkosi";
  write("mkosi/stale-file", "left over from an earlier run");
  tdx::write_mkosi_tree(tree, out);

  EXPECT_FALSE(fs::exists(out / "stale-file"));
  for (const auto& [rel, entry] : tree.files) {
    EXPECT_EQ(tdx::test::read(out / rel), entry.first) << rel;
    struct stat st {};
    ASSERT_EQ(::stat((out / rel).c_str(), &st), 0) << rel;
    EXPECT_EQ(st.st_mode & 07777, entry.second) << rel;
  }
  fs::path linked = out / "artifacts" / "feedbeef" / "usr" / "bin" / "app";
  EXPECT_EQ(tdx::test::read(linked), "ELF");
  EXPECT_TRUE(fs::equivalent(linked, dir() / "artifact" / "usr" / "bin" / "app"));
}

}  // namespace
