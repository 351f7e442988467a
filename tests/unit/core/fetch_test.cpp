// Downloads verified by SHA-512 (for publishers that give nothing else), from a loopback server,
// and toolchains identified by one.
#include <tdx/fetch.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include <tdx/build.hpp>
#include <tdx/hash.hpp>
#include <tdx/process.hpp>

#include "support/loopback_http.hpp"
#include "support/test_support.hpp"

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using tdx::test::error_of;

namespace {

std::string sha512_hex(const std::string& data) {
  tdx::Sha512 h;
  h.update(data.data(), data.size());
  return tdx::to_hex(h.finish());
}

// Every entry below `folder` (relative paths), so a test can say "nothing was left behind".
std::vector<std::string> entries(const fs::path& folder) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(folder, ec); it != fs::recursive_directory_iterator(); ++it)
    out.push_back(fs::relative(it->path(), folder).string());
  return out;
}

class FetchSha512Test : public tdx::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    m_cache = std::make_unique<tdx::test::ScopedEnv>("TDX_CACHE_DIR", (dir() / "cache").c_str());
    // Large enough to arrive in several writes and chunks of the hashing thread.
    m_data.resize(3 * 1024 * 1024 + 17);
    for (std::size_t i = 0; i < m_data.size(); ++i) m_data[i] = static_cast<char>((i * 2654435761u) >> 13);
  }
  void TearDown() override {
    m_cache.reset();
    TempDirTest::TearDown();
  }

  fs::path fetch_dir() const { return dir() / "cache" / "fetch"; }
  tdx::FetchOptions quiet() const {
    tdx::FetchOptions o;
    o.progress = false;
    o.max_attempts = 1;
    return o;
  }

  std::string m_data;
  tdx::test::LoopbackHttp m_server;

 private:
  std::unique_ptr<tdx::test::ScopedEnv> m_cache;
};

TEST_F(FetchSha512Test, RightBytesEnterTheCacheUnderTheirSha256AndASecondCallIsAHit) {
  const std::string url = m_server.add("/sdk.tar.gz", m_data);
  const std::string sha512 = sha512_hex(m_data), sha256 = tdx::to_hex(tdx::sha256(m_data));

  tdx::FetchResult first = tdx::fetch_sha512(url, "sha512:" + sha512, quiet());
  EXPECT_FALSE(first.cached);
  EXPECT_EQ(first.path, fetch_dir() / sha256);
  EXPECT_EQ(first.sha256, sha256);
  EXPECT_EQ(first.size, m_data.size());
  EXPECT_EQ(tdx::test::read(first.path), m_data);
  // The alias names the sha256 the bytes are cached under.
  EXPECT_EQ(tdx::test::read(fetch_dir() / "sha512" / sha512), sha256 + "\n");

  // Bare hex in upper case is the same digest; no second download.
  std::string upper = sha512;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  tdx::FetchResult second = tdx::fetch_sha512(url, upper, quiet());
  EXPECT_TRUE(second.cached);
  EXPECT_EQ(second.path, first.path);
  EXPECT_EQ(second.size, m_data.size());
  EXPECT_THAT(m_server.requests(), ElementsAre("/sdk.tar.gz"));

  EXPECT_EQ(tdx::cached_fetch("sha512:" + sha512), first.path);
  EXPECT_EQ(tdx::cached_fetch("sha256:" + sha256), first.path);
  EXPECT_EQ(tdx::cached_fetch("sha512:" + std::string(128, '0')), std::nullopt);
  // The same bytes fetched by their sha256 are the same cache entry.
  EXPECT_TRUE(tdx::fetch(url, sha256, quiet()).cached);
  EXPECT_THAT(entries(fetch_dir()), ::testing::UnorderedElementsAre(sha256, "sha512", "sha512/" + sha512));
}

TEST_F(FetchSha512Test, WrongBytesAreRefusedNamingBothDigestsAndLeaveNothingInTheCache) {
  const std::string url = m_server.add("/sdk.tar.gz", "not the official SDK");
  const std::string official = sha512_hex(m_data), served = sha512_hex("not the official SDK");
  std::string message = error_of([&] { tdx::fetch_sha512(url, "sha512:" + official, quiet()); });
  EXPECT_THAT(message, AllOf(HasSubstr("fetch: sha512 mismatch for " + url), HasSubstr("expected " + official),
                             HasSubstr("actual   " + served), HasSubstr("hint: ")));
  EXPECT_THAT(entries(fetch_dir()), IsEmpty());
  EXPECT_EQ(tdx::cached_fetch("sha512:" + official), std::nullopt);

  // The caller's next step replaces the default one.
  tdx::FetchOptions options = quiet();
  options.mismatch_hint = "ask the mirror's keeper";
  EXPECT_THAT(error_of([&] { tdx::fetch_sha512(url, official, options); }), HasSubstr("hint: ask the mirror's keeper"));
}

TEST_F(FetchSha512Test, CredentialsInAMirrorUrlReachNeitherMessagesNorTheLockRecord) {
  const std::string url = m_server.add("/sdk.tar.gz", m_data);
  const std::string with_credentials = "http://mirror-user:s3cret-pass@" + url.substr(std::string("http://").size());
  EXPECT_EQ(tdx::redact_url(with_credentials), "http://***@" + url.substr(std::string("http://").size()));
  tdx::fetch_sha512(with_credentials, sha512_hex(m_data), quiet());
  tdx::fetch(with_credentials, tdx::to_hex(tdx::sha256(m_data)), quiet());
  for (const auto& r : tdx::FetchLog::instance().records()) EXPECT_THAT(r.url, ::testing::Not(HasSubstr("s3cret")));
  EXPECT_THAT(error_of([&] { tdx::fetch_sha512(with_credentials, std::string(128, 'a'), quiet()); }),
              AllOf(HasSubstr("http://***@"), ::testing::Not(HasSubstr("s3cret"))));
}

TEST_F(FetchSha512Test, ABadDigestIsRefusedBeforeAnyDownload) {
  const std::string url = m_server.add("/x", m_data);
  EXPECT_THAT(error_of([&] { tdx::fetch_sha512(url, "sha512:abc", quiet()); }),
              HasSubstr("'sha512:abc' is not a sha512 digest (128 hex digits"));
  EXPECT_THAT(error_of([&] { tdx::fetch_sha512(url, sha512_hex(m_data).substr(0, 64), quiet()); }),
              HasSubstr("is not a sha512 digest"));
  EXPECT_THAT(m_server.requests(), IsEmpty());
}

TEST(ParseIntegrity, NamesTheAlgorithmAndRefusesAnythingElse) {
  const std::string h64(64, 'A'), h128(128, 'b');
  EXPECT_EQ(tdx::parse_integrity(h64), "sha256:" + std::string(64, 'a'));
  EXPECT_EQ(tdx::parse_integrity("sha256:" + h64), "sha256:" + std::string(64, 'a'));
  EXPECT_EQ(tdx::parse_integrity("sha512:" + h128), "sha512:" + h128);
  EXPECT_THAT(error_of([&] { tdx::parse_integrity(h128); }), HasSubstr("is not a digest"));
  EXPECT_THAT(error_of([&] { tdx::parse_integrity("sha512:" + h64); }), HasSubstr("is not a sha512 digest"));
  EXPECT_THAT(error_of([&] { tdx::parse_integrity("md5:00"); }), HasSubstr("'md5:00' is not a digest"));
}

// A toolchain whose builder pins it by SHA-512: fetched from the server, unpacked, identified by it.
TEST_F(FetchSha512Test, AToolchainPinnedBySha512IsFetchedUnpackedAndCached) {
  write("sdk/dotnet", "#!/bin/sh\necho sdk\n");
  write("sdk/sdk/10.0.100/version.txt", "10.0.100\n");
  fs::path archive = dir() / "sdk.tar";
  ASSERT_EQ(tdx::run_process({"tar", "-cf", archive.string(), "-C", (dir() / "sdk").string(), "."}, dir() / "tar.log")
                .exit_code,
            0);
  const std::string bytes = tdx::test::read(archive);
  const std::string identity = "sha512:" + sha512_hex(bytes);

  tdx::BuildEnvironment env;
  env.cache_dir = dir() / "cache";
  tdx::ToolchainInput input;
  input.sha256 = identity;
  input.mount = "/opt/dotnet";
  input.missing_hint = "set THE_SERVER";

  // Not cached, no URL: the plugin's hint.
  EXPECT_THAT(error_of([&] { tdx::prepare_toolchain(input, env); }),
              AllOf(HasSubstr("toolchain " + identity + " is not in the fetch cache and has no URL"),
                    HasSubstr("hint: set THE_SERVER")));

  // Other bytes at the URL: refused, with the next step for a pinned release, and nothing cached.
  input.url = m_server.add("/wrong.tar", "other bytes");
  EXPECT_THAT(error_of([&] { tdx::prepare_toolchain(input, env); }),
              AllOf(HasSubstr("sha512 mismatch for " + input.url), HasSubstr("expected " + identity.substr(7)),
                    HasSubstr("which the builder plugin pins")));
  EXPECT_THAT(entries(fetch_dir()), IsEmpty());

  input.url = m_server.add("/dotnet-sdk.tar", bytes);
  tdx::PreparedToolchain ready = tdx::prepare_toolchain(input, env);
  EXPECT_EQ(ready.identity, identity);
  EXPECT_EQ(tdx::test::read(ready.tree / "sdk/10.0.100/version.txt"), "10.0.100\n");
  EXPECT_EQ(tdx::prepare_toolchain(input, env).tree, ready.tree);

  // With its unpacked tree gone, the archive comes from the fetch cache through the alias: no download.
  fs::remove_all(ready.tree);
  input.url.clear();
  EXPECT_EQ(tdx::prepare_toolchain(input, env).tree, ready.tree);
  EXPECT_TRUE(fs::exists(ready.tree / "dotnet"));
  EXPECT_THAT(m_server.requests(), ElementsAre("/wrong.tar", "/dotnet-sdk.tar"));
}

}  // namespace
