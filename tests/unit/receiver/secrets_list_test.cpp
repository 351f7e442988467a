// The receiver's reading of /etc/tdx/secrets.list: the format and every refusal, naming the line.
#include <gtest/gtest.h>

#include "secrets_list.hpp"

using namespace tdx::receiver;

namespace {

std::string error_of(const std::string& text) {
  try {
    parse_secrets_list(text, "secrets.list");
  } catch (const ReceiverError& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted: " << text;
  return {};
}

TEST(SecretsList, ParsesTheDeclaredSecrets) {
  auto list = parse_secrets_list(
      "tdx-secrets 1\n"
      "JWT\t/etc/nm/jwt.hex\tnethermind\t\t0400\t64\n"
      "TLS\t/etc/ssl/app.pem\troot\tssl-cert\t440\t65536\n",
      "secrets.list");
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].name, "JWT");
  EXPECT_EQ(list[0].dest, "/etc/nm/jwt.hex");
  EXPECT_EQ(list[0].owner, "nethermind");
  EXPECT_EQ(list[0].group, "");
  EXPECT_EQ(list[0].mode, 0400u);
  EXPECT_EQ(list[0].max_bytes, 64u);
  EXPECT_EQ(list[1].group, "ssl-cert");
  EXPECT_EQ(list[1].mode, 0440u);
  EXPECT_EQ(find_secret(list, "TLS"), &list[1]);
  EXPECT_EQ(find_secret(list, "NOPE"), nullptr);
  EXPECT_TRUE(parse_secrets_list("tdx-secrets 1\n", "f").empty());
  EXPECT_EQ(mode_string(0440), "0440");
}

TEST(SecretsList, RefusesAMalformedFileNamingTheLine) {
  EXPECT_EQ(error_of(""), "secrets.list:1: the first line must be exactly 'tdx-secrets 1' (a secrets.list written by this version of tdx)");
  EXPECT_NE(error_of("tdx-secrets 2\n").find("secrets.list:1:"), std::string::npos);
  EXPECT_NE(error_of("tdx-secrets 1\nA\t/a\troot\t\t0400\n").find("secrets.list:2: expected 6 TAB-separated fields"),
            std::string::npos);
  EXPECT_NE(error_of("tdx-secrets 1\n../x\t/a\troot\t\t0400\t1\n").find("'../x' is not a secret name"), std::string::npos);
  for (const char* dest : {"relative", "/a/../b", "/a//b", "/a/./b", "/a/", "/"})
    EXPECT_NE(error_of(std::string("tdx-secrets 1\nA\t") + dest + "\troot\t\t0400\t1\n").find("not an absolute normalized"),
              std::string::npos)
        << dest;
  EXPECT_NE(error_of("tdx-secrets 1\nA\t/a\tro/ot\t\t0400\t1\n").find("owner 'ro/ot'"), std::string::npos);
  EXPECT_NE(error_of("tdx-secrets 1\nA\t/a\troot\tg:x\t0400\t1\n").find("group 'g:x'"), std::string::npos);
  EXPECT_NE(error_of("tdx-secrets 1\nA\t/a\troot\t\t0800\t1\n").find("mode '0800'"), std::string::npos);
  EXPECT_NE(error_of("tdx-secrets 1\nA\t/a\troot\t\t1400\t1\n").find("mode '1400'"), std::string::npos);
  EXPECT_NE(error_of("tdx-secrets 1\nA\t/a\troot\t\t0400\t0\n").find("max_bytes '0'"), std::string::npos);
  EXPECT_NE(error_of("tdx-secrets 1\nA\t/a\troot\t\t0400\t1048577\n").find("max_bytes '1048577'"), std::string::npos);
  EXPECT_NE(error_of("tdx-secrets 1\nA\t/a\troot\t\t0400\t1\nA\t/b\troot\t\t0400\t1\n").find("secrets.list:3: A is declared twice"),
            std::string::npos);
  EXPECT_NE(error_of("tdx-secrets 1\nA\t/a\troot\t\t0400\t1\nB\t/a\troot\t\t0400\t1\n").find("destination /a is declared twice"),
            std::string::npos);
  EXPECT_NE(error_of("tdx-secrets 1\n\nA\t/a\troot\t\t0400\t1\n").find("secrets.list:2:"), std::string::npos);
}

TEST(SecretsList, MissingFileSaysWhatToDo) {
  try {
    load_secrets_list("/nonexistent/secrets.list");
    FAIL();
  } catch (const ReceiverError& e) {
    EXPECT_NE(std::string(e.what()).find("--config"), std::string::npos) << e.what();
  }
}

}  // namespace
