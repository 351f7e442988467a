#include <tdx/hash.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "support/test_support.hpp"

namespace fs = std::filesystem;

namespace {

// FIPS 180-2, appendix B.1 and the empty message.
constexpr const char* k_sha256_abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr const char* k_sha256_empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(Sha256, MatchesFipsVectors) {
  EXPECT_EQ(tdx::to_hex(tdx::sha256("abc")), k_sha256_abc);
  EXPECT_EQ(tdx::to_hex(tdx::sha256("")), k_sha256_empty);
  // FIPS 180-2 B.2, the two-block message.
  EXPECT_EQ(tdx::to_hex(tdx::sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, IncrementalUpdatesEqualOneShot) {
  tdx::Sha256 h;
  h.update("a");
  h.update("");
  h.update("bc");
  EXPECT_EQ(tdx::to_hex(h.finish()), k_sha256_abc);
}

TEST(Sha256, FinishStartsAFreshDigest) {
  // finish() re-initialises, so a reused hasher must not carry the previous input along.
  tdx::Sha256 h;
  h.update("something else");
  h.finish();
  h.update("abc");
  EXPECT_EQ(tdx::to_hex(h.finish()), k_sha256_abc);
}

TEST(Sha256, Base64OfKnownDigest) {
  EXPECT_EQ(tdx::to_base64(tdx::sha256("abc")), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
}

TEST(Sha512, MatchesFipsVectorsAndUpdatesIncrementally) {
  // FIPS 180-2, appendix C.1 ("abc").
  const std::string abc =
      "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
      "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
  tdx::Sha512 h;
  h.update("a", 1);
  h.update("bc", 2);
  EXPECT_EQ(tdx::to_hex(h.finish()), abc);
  h.update("", 0);  // finish() started a fresh digest: this is the empty message
  EXPECT_EQ(tdx::to_hex(h.finish()),
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
            "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e");
}

TEST(KeyHasher, FieldBoundariesChangeTheDigest) {
  auto two = [](std::string_view a, std::string_view b) {
    return tdx::KeyHasher("schema").field("x", a).field("x", b).finish();
  };
  EXPECT_NE(two("ab", "c"), two("a", "bc"));
  EXPECT_NE(two("", "abc"), two("abc", ""));
  EXPECT_EQ(two("ab", "c"), two("ab", "c"));
  // Without the length a value could carry the next field's header inside it.
  std::string smuggled("vx\0w", 4);
  EXPECT_NE(two("v", "w"), tdx::KeyHasher("schema").field("x", smuggled).finish());
  EXPECT_NE(tdx::KeyHasher("schema").field("x", "v").finish(), tdx::KeyHasher("schema").finish());
}

TEST(KeyHasher, TagsAndSchemaAreHashed) {
  tdx::Digest base = tdx::KeyHasher("s1").field("a", "v").finish();
  EXPECT_NE(base, tdx::KeyHasher("s1").field("b", "v").finish());
  EXPECT_NE(base, tdx::KeyHasher("s2").field("a", "v").finish());
  // A tag that swallows the start of its value must not collide with the split version.
  EXPECT_NE(tdx::KeyHasher("s").field("ab", "c").finish(), tdx::KeyHasher("s").field("a", "bc").finish());
}

TEST(KeyHasher, DigestFieldIsItsRawBytes) {
  tdx::Digest d = tdx::sha256("abc");
  std::string raw(reinterpret_cast<const char*>(d.data()), d.size());
  EXPECT_EQ(tdx::KeyHasher("s").field("d", d).finish(), tdx::KeyHasher("s").field("d", raw).finish());
  tdx::Digest other = d;
  other[0] ^= 1;
  EXPECT_NE(tdx::KeyHasher("s").field("d", d).finish(), tdx::KeyHasher("s").field("d", other).finish());
}

class TreeHashTest : public tdx::test::TempDirTest {
 protected:
  fs::path root() const { return dir() / "src"; }

  // A small tree with nesting, binary content, an empty file and a .git folder.
  void make_tree() {
    write("src/main.go", "package main\n");
    write("src/go.mod", "module example.invalid/app\n");
    write("src/sub/deeper/blob.bin", std::string("\x00\x01\xff\n", 4));
    write("src/sub/empty", "");
    write("src/.gitignore", "build/\n");
    write("src/.git/HEAD", "ref: refs/heads/main\n");
    write("src/.git/objects/ab/cdef", "object");
  }

  // Go's dirhash Hash1, computed from the file list given here rather than by walking the tree.
  static tdx::Digest expected_hash1(const fs::path& root, std::vector<std::string> rel_paths) {
    std::sort(rel_paths.begin(), rel_paths.end());
    std::string summary;
    for (const auto& rel : rel_paths)
      summary += tdx::to_hex(tdx::sha256(tdx::test::read(root / rel))) + "  " + rel + "\n";
    return tdx::sha256(summary);
  }

  using Digest = tdx::Digest;
};

TEST_F(TreeHashTest, EqualsGoDirhashHash1) {
  make_tree();
  Digest expected = expected_hash1(root(), {"main.go", "go.mod", "sub/deeper/blob.bin", "sub/empty", ".gitignore"});
  EXPECT_EQ(tdx::to_hex(tdx::tree_hash(root())), tdx::to_hex(expected));
}

TEST_F(TreeHashTest, GitFolderIsExcluded) {
  make_tree();
  Digest before = tdx::tree_hash(root());
  write("src/.git/objects/new", "another object");
  write("src/sub/.git/config", "[core]\n");  // a nested repository's metadata too
  EXPECT_EQ(tdx::tree_hash(root()), before);
}

TEST_F(TreeHashTest, RootFolderNameDoesNotMatter) {
  make_tree();
  Digest before = tdx::tree_hash(root());
  fs::rename(root(), dir() / "renamed-checkout");
  EXPECT_EQ(tdx::tree_hash(dir() / "renamed-checkout"), before);
}

TEST_F(TreeHashTest, OneChangedByteChangesTheHash) {
  make_tree();
  Digest before = tdx::tree_hash(root());
  write("src/sub/deeper/blob.bin", std::string("\x00\x01\xfe\n", 4));
  EXPECT_NE(tdx::tree_hash(root()), before);
}

TEST_F(TreeHashTest, RenamingAFileChangesTheHash) {
  make_tree();
  Digest before = tdx::tree_hash(root());
  fs::rename(root() / "main.go", root() / "main2.go");
  EXPECT_NE(tdx::tree_hash(root()), before);
}

TEST_F(TreeHashTest, EmptyFoldersDoNotCount) {
  // Hash1 lists files only, like Go modules do.
  make_tree();
  Digest before = tdx::tree_hash(root());
  fs::create_directories(root() / "new" / "empty");
  EXPECT_EQ(tdx::tree_hash(root()), before);
}

TEST_F(TreeHashTest, SymlinkIsHashedAsItsTargetTextUnderItsOwnName) {
  write("src/data.txt", "payload\n");
  fs::create_symlink("data.txt", root() / "link");
  std::string summary = tdx::to_hex(tdx::sha256("payload\n")) + "  data.txt\n" +
                        tdx::to_hex(tdx::sha256("data.txt")) + "  link\n";
  EXPECT_EQ(tdx::to_hex(tdx::tree_hash(root())), tdx::to_hex(tdx::sha256(summary)));
}

TEST_F(TreeHashTest, SymlinkLeavingTheTreeDoesNotTieTheHashToTheCheckoutFolder) {
  write("target.txt", "outside the tree");
  for (const fs::path rel : {"shallow", "deeper/still/deeper"}) {
    write(rel / "main.go", "package main\n");
    fs::create_symlink(dir() / "target.txt", dir() / rel / "link");
  }
  EXPECT_EQ(tdx::tree_hash(dir() / "shallow"), tdx::tree_hash(dir() / "deeper/still/deeper"));
  std::string summary = tdx::to_hex(tdx::sha256((dir() / "target.txt").string())) + "  link\n" +
                        tdx::to_hex(tdx::sha256("package main\n")) + "  main.go\n";
  EXPECT_EQ(tdx::to_hex(tdx::tree_hash(dir() / "shallow")), tdx::to_hex(tdx::sha256(summary)));
}

TEST_F(TreeHashTest, NotADirectoryThrows) {
  write("file", "x");
  EXPECT_THROW(tdx::tree_hash(dir() / "file"), tdx::Error);
  EXPECT_THROW(tdx::tree_hash(dir() / "missing"), tdx::Error);
}

TEST(H1String, IsH1PrefixAndBase64) {
  tdx::Digest d = tdx::sha256("abc");
  std::string h1 = tdx::h1_string(d);
  EXPECT_EQ(h1, "h1:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
  EXPECT_EQ(h1.size(), 3u + 44u);
  EXPECT_EQ(tdx::h1_string(tdx::sha256("")).substr(0, 3), "h1:");
  EXPECT_EQ(tdx::h1_string(tdx::sha256("")).size(), 47u);
}

}  // namespace
