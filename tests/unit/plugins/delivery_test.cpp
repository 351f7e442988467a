// The stock secret-delivery plugins, loaded from the build tree: option checks and what plan() puts in the image.
#include <tdx/plugin_host.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "support/test_support.hpp"

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using tdx::test::error_of;

namespace {

const fs::path k_plugin_dir = TDX_TEST_PLUGIN_DIR;
// Public keys (made with ssh-keygen for these tests; their private halves were thrown away).
const std::string k_ed25519 =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHXz0as8c6OiP0I6t8Jwk8xfxCWTiwHaHSGhT5OCTaHu ops@example";
const std::string k_ecdsa =
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBD0AEthfaEI0jNDukGkMwV2xMTAB1HEc1ekLD+"
    "PwCaaa8m48L1IXjYW+piIcvm6e1BDry7tN9RS1hnmrkFQhn/w=";

class DeliveryTest : public tdx::test::TempDirTest {
 protected:
  tdx::PluginRegistry reg{{k_plugin_dir}};

  void SetUp() override {
    TempDirTest::SetUp();
    receiver = write("libexec/tdx-secret-receiver", std::string("\x7f" "ELF stand-in\0bytes", 18));
    ::setenv("TDX_SECRET_RECEIVER", receiver.c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("TDX_SECRET_RECEIVER");
    TempDirTest::TearDown();
  }

  static tdx::DeliveryConfig config(const std::string& backend, tdx::Options options) {
    return {backend, std::move(options), {"/project/TDXfile", 7}};
  }

  static std::vector<tdx::SecretDecl> secrets() {
    tdx::SecretDecl jwt{"JWT_SECRET", "/etc/nethermind/jwt.hex", "nethermind", "", "0440", {"/project/TDXfile", 3}};
    tdx::SecretDecl tls{"TLS_CERT", "/etc/ssl/private/app.pem", "root", "ssl-cert", "0640", {"/project/TDXfile", 4}};
    tdx::SecretDecl api{"API_TOKEN", "/run/app/token", "nethermind", "", "0400", {"/project/TDXfile", 5}};
    return {jwt, tls, api};
  }

  tdx::DeliveryPlan plan(const tdx::DeliveryConfig& c) const {
    tdx::GuardedDelivery d = reg.delivery(c.backend);
    EXPECT_THAT(d.validate(c), IsEmpty());
    return d.plan(c, secrets());
  }

  static std::map<std::string, const tdx::ImageFile*> by_path(const tdx::DeliveryPlan& p) {
    std::map<std::string, const tdx::ImageFile*> out;
    for (const auto& f : p.files) EXPECT_TRUE(out.emplace(f.path, &f).second) << "planned twice: " << f.path;
    return out;
  }

  fs::path receiver;
};

// What every backend plans, whatever it adds.
void expect_common_parts(const tdx::DeliveryPlan& p, const std::string& receiver_bytes) {
  std::map<std::string, const tdx::ImageFile*> files;
  for (const auto& f : p.files) files[f.path] = &f;
  ASSERT_TRUE(files.count("/usr/lib/tdx/tdx-secret-receiver"));
  EXPECT_EQ(files["/usr/lib/tdx/tdx-secret-receiver"]->content, receiver_bytes);
  EXPECT_EQ(files["/usr/lib/tdx/tdx-secret-receiver"]->mode, 0755u);
  ASSERT_TRUE(files.count("/etc/tdx/secrets.list"));
  EXPECT_EQ(files["/etc/tdx/secrets.list"]->mode, 0644u);
  EXPECT_EQ(files["/etc/tdx/secrets.list"]->content,
            "tdx-secrets 1\n"
            "API_TOKEN\t/run/app/token\tnethermind\t\t0400\t65536\n"
            "JWT_SECRET\t/etc/nethermind/jwt.hex\tnethermind\t\t0440\t65536\n"
            "TLS_CERT\t/etc/ssl/private/app.pem\troot\tssl-cert\t0640\t65536\n");
  ASSERT_TRUE(files.count("/etc/systemd/system/secrets-ready.target"));
  const std::string& target = files["/etc/systemd/system/secrets-ready.target"]->content;
  EXPECT_THAT(target, AllOf(HasSubstr("\nRequires=tdx-secrets-wait.service\n"), HasSubstr("\nAfter=tdx-secrets-wait.service\n"),
                            HasSubstr("\nDefaultDependencies=no\n"), HasSubstr("[Install]\nWantedBy=multi-user.target\n")));
  ASSERT_TRUE(files.count("/etc/systemd/system/tdx-secrets-wait.service"));
  EXPECT_THAT(files["/etc/systemd/system/tdx-secrets-wait.service"]->content,
              AllOf(HasSubstr("Type=oneshot\nRemainAfterExit=yes\nTimeoutStartSec=infinity\n"),
                    HasSubstr("ExecStart=/usr/lib/tdx/tdx-secret-receiver wait\n"), Not(HasSubstr("[Install]"))));
  EXPECT_THAT(p.enable_units, Contains("secrets-ready.target"));
  // Parents of the dests, except under /run (a tmpfs at boot: the receiver makes them).
  EXPECT_THAT(p.commands, Contains("(umask 022 && mkdir -p '/etc/nethermind' '/etc/ssl/private')"));
  EXPECT_THAT(p.commands, Contains(AllOf(HasSubstr("getent passwd 'nethermind' >/dev/null || {"),
                                         HasSubstr("secret '\\''JWT_SECRET'\\'' belongs to user '\\''nethermind'\\''"))));
  EXPECT_THAT(p.commands, Contains(HasSubstr("getent passwd 'root' >/dev/null")));
  EXPECT_THAT(p.commands, Contains(HasSubstr("getent group 'ssl-cert' >/dev/null")));
}

TEST_F(DeliveryTest, SshPlan) {
  tdx::DeliveryPlan p = plan(config("ssh", {{"authorized_keys", tdx::StringList{k_ed25519 + "\n", k_ecdsa}}}));
  expect_common_parts(p, tdx::test::read(receiver));
  auto files = by_path(p);
  EXPECT_EQ(files.at("/etc/tdx/ssh/authorized_keys")->content,
            "# Generated by tdx: the keys that may push secrets to the 'tdx-secrets' account.\n"
            "restrict " + k_ed25519 + "\nrestrict " + k_ecdsa + "\n");
  EXPECT_EQ(files.at("/etc/tdx/ssh/authorized_keys")->mode, 0644u);
  const std::string& sshd = files.at("/etc/ssh/sshd_config.d/tdx-secrets.conf")->content;
  EXPECT_THAT(sshd, HasSubstr("Match User tdx-secrets\n\tAuthorizedKeysFile /etc/tdx/ssh/authorized_keys\n"));
  EXPECT_THAT(sshd, HasSubstr("\tForceCommand /usr/lib/tdx/tdx-secret-receiver relay --unix /run/tdx-secrets/receiver.sock\n"));
  for (const char* off : {"PermitTTY no", "AllowTcpForwarding no", "X11Forwarding no", "PasswordAuthentication no",
                          "AllowAgentForwarding no", "PermitTunnel no", "PermitUserRC no"})
    EXPECT_THAT(sshd, HasSubstr(std::string("\t") + off + "\n"));
  EXPECT_THAT(sshd, Not(HasSubstr("Port ")));
  EXPECT_THAT(files.at("/etc/systemd/system/tdx-secret-receiver.service")->content,
              AllOf(HasSubstr("ExecStart=/usr/lib/tdx/tdx-secret-receiver serve --unix /run/tdx-secrets/receiver.sock "
                              "--socket-group tdx-secrets\n"),
                    HasSubstr("RuntimeDirectory=tdx-secrets\n"), HasSubstr("WantedBy=multi-user.target\n")));
  EXPECT_THAT(files.at("/etc/systemd/system/tdx-ssh-host-keys.service")->content,
              AllOf(HasSubstr("Before=ssh.service\n"), HasSubstr("ExecStart=/usr/bin/ssh-keygen -A\n"),
                    HasSubstr("RequiredBy=ssh.service\n")));
  EXPECT_THAT(p.packages, ElementsAre("openssh-server"));
  ASSERT_EQ(p.users.size(), 1u);
  EXPECT_EQ(p.users[0].name, "tdx-secrets");
  EXPECT_TRUE(p.users[0].system);
  EXPECT_EQ(p.users[0].shell, "/bin/sh");  // it runs the forced command; sshd offers nothing else
  EXPECT_FALSE(p.users[0].create_home);
  EXPECT_THAT(p.enable_units, Contains("tdx-secret-receiver.service"));
  EXPECT_THAT(p.enable_units, Contains("tdx-ssh-host-keys.service"));
  EXPECT_THAT(p.commands, Contains("rm -f /etc/ssh/ssh_host_*"));
  EXPECT_THAT(p.commands, Contains("usermod --password '*' 'tdx-secrets'"));
}

TEST_F(DeliveryTest, SshUserPortAndMaxSize) {
  tdx::DeliveryPlan p = plan(config("ssh", {{"authorized_key", k_ed25519},
                                            {"user", std::string("pusher")},
                                            {"port", std::int64_t{2222}},
                                            {"max_size", std::int64_t{1024}}}));
  auto files = by_path(p);
  const std::string& sshd = files.at("/etc/ssh/sshd_config.d/tdx-secrets.conf")->content;
  EXPECT_THAT(sshd, HasSubstr("\nPort 2222\nMatch User pusher\n"));
  EXPECT_THAT(files.at("/etc/systemd/system/tdx-secret-receiver.service")->content, HasSubstr("--socket-group pusher\n"));
  EXPECT_EQ(p.users.at(0).name, "pusher");
  EXPECT_THAT(files.at("/etc/tdx/secrets.list")->content, HasSubstr("\t0440\t1024\n"));
}

TEST_F(DeliveryTest, SshRefusesBadKeysQuotingThemButNeverAPrivateKey) {
  tdx::GuardedDelivery ssh = reg.delivery("ssh");
  EXPECT_THAT(ssh.validate(config("ssh", {})), ElementsAre(HasSubstr("needs authorized_key=")));
  EXPECT_THAT(ssh.validate(config("ssh", {{"authorized_keys", tdx::StringList{}}})),
              ElementsAre(HasSubstr("needs authorized_key=")));

  const std::pair<std::string, std::string> bad[] = {
      {"hello", "'hello' is not an OpenSSH public key line"},
      {"not a key", "'not a key' has key type 'not'"},
      {"ssh-ed25519", "'ssh-ed25519' is not an OpenSSH public key line"},
      {"command=\"sh\" " + k_ed25519, "options such as command= are set by tdx"},
      {"ssh-dss AAAAB3NzaC1kc3MAAACBAP", "has key type 'ssh-dss'"},
      {"ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIHXz0as8c6OiP0I6t8Jwk8xfxCWTiwHaHSGhT5OCTaHu", "does not hold a ssh-rsa key"},
      {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHXz0as8c6OiP0I6t8Jwk8xfxCWTiwHaHSGhT5OCTaH", "does not hold a ssh-ed25519 key"},
      {k_ed25519 + "\n" + k_ecdsa, "spans several lines"},
  };
  for (const auto& [key, message] : bad) {
    tdx::StringList problems = ssh.validate(config("ssh", {{"authorized_key", key}}));
    ASSERT_EQ(problems.size(), 1u) << key;
    EXPECT_THAT(problems[0], HasSubstr(message)) << key;
  }
  const std::string private_key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
                                  "-----END OPENSSH PRIVATE KEY-----\n";
  tdx::StringList problems = ssh.validate(config("ssh", {{"authorized_key", private_key}}));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0], HasSubstr("is a private key; give the public key line"));
  EXPECT_THAT(problems[0], Not(HasSubstr("b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ")));

  EXPECT_THAT(ssh.validate(config("ssh", {{"authorized_key", k_ed25519}, {"port", std::int64_t{70000}}})),
              ElementsAre(HasSubstr("port 70000")));
  EXPECT_THAT(ssh.validate(config("ssh", {{"authorized_key", k_ed25519}, {"user", std::string("Root User")}})),
              ElementsAre(HasSubstr("user 'Root User' is not a valid account name")));
  EXPECT_THAT(ssh.validate(config("ssh", {{"authorized_key", std::int64_t{1}}})),
              ElementsAre(HasSubstr("option 'authorized_key' has type int")));
}

TEST_F(DeliveryTest, VsockPlanListensOnItsPort) {
  tdx::DeliveryPlan p = plan(config("vsock", {}));
  expect_common_parts(p, tdx::test::read(receiver));
  auto files = by_path(p);
  EXPECT_THAT(files.at("/etc/systemd/system/tdx-secret-receiver.service")->content,
              AllOf(HasSubstr("ExecStart=/usr/lib/tdx/tdx-secret-receiver serve --vsock 7070\n"),
                    HasSubstr("RestrictAddressFamilies=AF_UNIX AF_VSOCK\n")));
  EXPECT_THAT(p.enable_units, Contains("tdx-secret-receiver.service"));
  EXPECT_THAT(p.users, IsEmpty());
  EXPECT_THAT(p.packages, IsEmpty());
  EXPECT_EQ(files.count("/etc/tdx/ssh/authorized_keys"), 0u);

  tdx::DeliveryPlan other = plan(config("vsock", {{"port", std::int64_t{1024}}}));
  EXPECT_THAT(by_path(other).at("/etc/systemd/system/tdx-secret-receiver.service")->content, HasSubstr("--vsock 1024\n"));
  EXPECT_THAT(reg.delivery("vsock").validate(config("vsock", {{"port", std::int64_t{0xffffffffLL}}})),
              ElementsAre(HasSubstr("port 4294967295 is not a vsock port")));
}

TEST_F(DeliveryTest, ScriptPlanInstallsTheFetchScript) {
  fs::path script = write("fetch.sh", "#!/bin/sh\necho fetching\n");
  tdx::DeliveryPlan p = plan(config("script", {{"fetch_script", script.string()}}));
  expect_common_parts(p, tdx::test::read(receiver));
  auto files = by_path(p);
  EXPECT_EQ(files.at("/usr/lib/tdx/fetch-secrets")->content, "#!/bin/sh\necho fetching\n");
  EXPECT_EQ(files.at("/usr/lib/tdx/fetch-secrets")->mode, 0755u);
  EXPECT_THAT(files.at("/etc/systemd/system/tdx-secrets-fetch.service")->content,
              AllOf(HasSubstr("Type=oneshot\nRemainAfterExit=yes\n"),
                    HasSubstr("ExecStart=/usr/lib/tdx/fetch-secrets\nExecStart=/usr/lib/tdx/tdx-secret-receiver check\n"),
                    HasSubstr("WantedBy=secrets-ready.target\n")));
  EXPECT_THAT(p.enable_units, Contains("tdx-secrets-fetch.service"));
  EXPECT_EQ(files.count("/etc/systemd/system/tdx-secret-receiver.service"), 0u);
}

TEST_F(DeliveryTest, ScriptRefusesAMissingOrUnrunnableScriptNamingIt) {
  tdx::GuardedDelivery script = reg.delivery("script");
  EXPECT_THAT(script.validate(config("script", {})), ElementsAre(HasSubstr("needs fetch_script=")));
  const fs::path missing = dir() / "nope.sh";
  EXPECT_THAT(script.validate(config("script", {{"fetch_script", missing.string()}})),
              ElementsAre(HasSubstr("fetch_script '" + missing.string() + "' does not exist")));
  EXPECT_THAT(script.validate(config("script", {{"fetch_script", dir().string()}})),
              ElementsAre(HasSubstr("is not a regular file")));
  fs::path plain = write("plain.sh", "curl https://example.invalid/\n");
  EXPECT_THAT(script.validate(config("script", {{"fetch_script", plain.string()}})),
              ElementsAre(AllOf(HasSubstr(plain.string()), HasSubstr("does not start with an interpreter line"))));
}

TEST_F(DeliveryTest, EveryBackendTakesMaxSizeAndRefusesUnknownOptions) {
  for (const char* backend : {"ssh", "vsock", "script"}) {
    tdx::GuardedDelivery d = reg.delivery(backend);
    tdx::StringList problems = d.validate(config(backend, {{"max_size", std::int64_t{0}}, {"colour", std::string("x")}}));
    EXPECT_THAT(problems, Contains(HasSubstr("max_size 0 is outside 1..1048576"))) << backend;
    EXPECT_THAT(problems, Contains(AllOf(HasSubstr("unknown parameter 'colour'"), HasSubstr("max_size")))) << backend;
  }
}

TEST_F(DeliveryTest, AMissingReceiverIsAnErrorWithAHint) {
  fs::remove(receiver);
  std::string message = error_of([&] { reg.delivery("vsock").plan(config("vsock", {}), secrets()); });
  EXPECT_THAT(message, HasSubstr("secret-delivery plugin 'vsock'"));
  EXPECT_THAT(message, HasSubstr("the secret receiver program '" + receiver.string() + "' does not exist"));
  EXPECT_THAT(message, HasSubstr("tdx-secret-receiver"));
}

TEST_F(DeliveryTest, TheReceiverIsFoundBesideThePlugins) {
  ::unsetenv("TDX_SECRET_RECEIVER");
  const fs::path beside = k_plugin_dir.parent_path() / "libexec" / "tdx-secret-receiver";
  ASSERT_TRUE(fs::is_regular_file(beside)) << beside << " is built with the plugins";
  tdx::DeliveryPlan p = reg.delivery("vsock").plan(config("vsock", {}), secrets());
  EXPECT_EQ(by_path(p).at("/usr/lib/tdx/tdx-secret-receiver")->content, tdx::test::read(beside));
}

TEST_F(DeliveryTest, NoSecretsGiveAHeaderOnlyList) {
  tdx::DeliveryPlan p = reg.delivery("vsock").plan(config("vsock", {}), {});
  EXPECT_EQ(by_path(p).at("/etc/tdx/secrets.list")->content, "tdx-secrets 1\n");
  for (const auto& c : p.commands) EXPECT_THAT(c, Not(HasSubstr("mkdir"))) << c;
}

}  // namespace
