// The host side of secret delivery: the env file, the checks before anything is sent, the ssh
// command line, and that no message can carry a value.
#include <gtest/gtest.h>

#include <tdx/secrets.hpp>

#include "support/test_support.hpp"

namespace fs = std::filesystem;

namespace tdx::test {
namespace {

class SecretsEnvTest : public TempDirTest {
 protected:
  std::vector<SecretValue> parse(const std::string& text) { return parse_secrets_env(text, "s.env", dir()); }
  std::string error(const std::string& text) {
    return error_of([&] { parse(text); });
  }
};

std::vector<SecretDecl> declared(std::initializer_list<const char*> names) {
  std::vector<SecretDecl> out;
  for (const char* n : names) {
    SecretDecl d;
    d.name = n;
    d.dest = std::string("/etc/") + n;
    out.push_back(d);
  }
  return out;
}

TEST_F(SecretsEnvTest, ValuesAreTheRestOfTheLineAndFilesByteForByte) {
  write("certs/tls.pem", std::string("-----BEGIN\0\n", 12));
  auto v = parse(
      "# a comment\n"
      "\n"
      "  \t\n"
      "JWT=ab=cd  \n"
      "  TLS = @certs/tls.pem\n"
      "QUOTED=\"kept\" # not a comment\r\n"
      "ABS=@" + (dir() / "certs/tls.pem").string() + "\n"
      "LAST=no newline");
  ASSERT_EQ(v.size(), 5u);
  EXPECT_EQ(v[0].name, "JWT");
  EXPECT_EQ(v[0].value, "ab=cd");  // the rest of the line, without the blanks around it
  EXPECT_EQ(v[0].line, 4);
  EXPECT_EQ(v[1].name, "TLS");
  EXPECT_EQ(v[1].value, std::string("-----BEGIN\0\n", 12));
  EXPECT_EQ(v[2].value, "\"kept\" # not a comment");  // CR of CRLF dropped, nothing else
  EXPECT_EQ(v[3].value, v[1].value);
  EXPECT_EQ(v[4].value, "no newline");
  EXPECT_EQ(v[4].line, 8);
}

TEST_F(SecretsEnvTest, ErrorsNameTheLineNeverTheValue) {
  EXPECT_EQ(error("A=1\n\nsecretvalue-without-name\n"),
            "s.env:3: expected NAME=value or NAME=@path (the line is not shown: it may hold a value)");
  std::string bad_name = error("1abc=hunter2\n");
  EXPECT_NE(bad_name.find("s.env:1: the text before '=' is not a secret name"), std::string::npos);
  EXPECT_EQ(bad_name.find("hunter2"), std::string::npos);
  EXPECT_EQ(bad_name.find("1abc"), std::string::npos);
  EXPECT_EQ(error("A=one\nB=two\nA=three\n"), "s.env:3: A is set again (first at line 1); each secret is set once");
  EXPECT_EQ(error("A=@\n"), "s.env:1: A=@ needs a file name after '@'");
  std::string missing = error("A=@nope.pem\n");
  EXPECT_NE(missing.find("s.env:1 (A): cannot read " + (dir() / "nope.pem").string() + ": No such file or directory"),
            std::string::npos)
      << missing;
  fs::create_directories(dir() / "folder");
  EXPECT_NE(error("A=@folder\n").find("is a folder"), std::string::npos);
}

TEST_F(SecretsEnvTest, ReadsTheFileRelativeToItsOwnFolder) {
  write("env/secrets.env", "TLS=@tls.pem\n");
  write("env/tls.pem", "pem bytes");
  auto v = read_secrets_env(dir() / "env/secrets.env");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].value, "pem bytes");
  EXPECT_NE(error_of([&] { read_secrets_env(dir() / "absent.env"); }).find("cannot read"), std::string::npos);
}

TEST_F(SecretsEnvTest, OversizedValueFileIsRefusedWhileReading) {
  write("big", std::string((1u << 20) + 1, 'x'));
  EXPECT_NE(error("A=@big\n").find("is larger than 1048576 bytes"), std::string::npos);
}

TEST_F(SecretsEnvTest, ChecksAgainstTheDeclaredSecretsNamingNamesOnly) {
  auto values = parse("JWT=jwtvalue1\nJWTT=typo-value\nBIG=0123456789\nEMPTY=\n");
  std::string message = error_of([&] {
    check_secret_values(values, declared({"JWT", "TLS", "BIG", "EMPTY", "TOKEN"}), 8, "s.env");
  });
  EXPECT_NE(message.find("s.env does not match the image's secrets; nothing was sent:"), std::string::npos);
  EXPECT_NE(message.find("not declared by the TDXfile: JWTT (line 2; did you mean JWT?)"), std::string::npos) << message;
  EXPECT_NE(message.find("declared but not set in s.env: TLS, TOKEN"), std::string::npos) << message;
  EXPECT_NE(message.find("empty (an unset variable, or a file with no bytes?): EMPTY (line 4)"), std::string::npos);
  EXPECT_NE(message.find("larger than the receiver's cap of 8 bytes: JWT (line 1: 9 bytes), BIG (line 3: 10 bytes)"),
            std::string::npos)
      << message;
  for (const char* value : {"jwtvalue1", "typo-value", "0123456789"}) EXPECT_EQ(message.find(value), std::string::npos);
  auto good = parse("TLS=t\nJWT=j\n");
  check_secret_values(good, declared({"JWT", "TLS"}), 8, "s.env");  // order does not matter
}

TEST(SecretsMaxBytes, FromTheDeliveryOptionElseTheDefault) {
  EXPECT_EQ(secret_max_bytes(std::nullopt), 65536u);
  DeliveryConfig c;
  c.backend = "ssh";
  EXPECT_EQ(secret_max_bytes(c), 65536u);
  c.options["max_size"] = std::int64_t{4096};
  EXPECT_EQ(secret_max_bytes(c), 4096u);
}

TEST(SecretsWithhold, ReplacesEveryValueOfFourBytesOrMore) {
  std::vector<SecretValue> values(2);
  values[0].value = "hunter2";
  values[1].value = "abc";  // too short to tell apart from ordinary words
  EXPECT_EQ(withhold_values("ssh: hunter2 and hunter2, abc", values),
            "ssh: [value withheld] and [value withheld], abc");
  values[0].value = "value";  // a value that is part of the replacement text
  EXPECT_EQ(withhold_values("a value", values), "a [value withheld]");
}

TEST(SecretsSshArgv, BatchModeNoForwardingUserOptionsFirst) {
  PushTarget t;
  t.host = "10.0.0.5";
  t.port = 2222;
  t.user = "tdx-secrets";
  t.identity = "/keys/deploy";
  t.known_hosts = "/keys/known_hosts";
  t.ssh_options = {"StrictHostKeyChecking=accept-new"};
  t.timeout_seconds = 30;
  StringList argv = ssh_argv(t);
  std::string joined;
  for (const auto& a : argv) joined += a + " ";
  EXPECT_EQ(joined,
            "/usr/bin/ssh -T -o StrictHostKeyChecking=accept-new -o BatchMode=yes -o LogLevel=ERROR -o ConnectTimeout=30 "
            "-o ForwardAgent=no -o ForwardX11=no -o ClearAllForwardings=yes -o UserKnownHostsFile=/keys/known_hosts "
            "-o StrictHostKeyChecking=yes -i /keys/deploy -o IdentitiesOnly=yes -p 2222 -l tdx-secrets -- 10.0.0.5 "
            "/usr/lib/tdx/tdx-secret-receiver serve --stdio ");
  EXPECT_EQ(t.describe(), "tdx-secrets@10.0.0.5:2222 over ssh");
}

}  // namespace
}  // namespace tdx::test
