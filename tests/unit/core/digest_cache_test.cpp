// DigestCache: unchanged files are not read again; any change of stat or content is seen.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include <tdx/digest_cache.hpp>
#include <tdx/hash.hpp>

#include "support/test_support.hpp"

namespace fs = std::filesystem;

namespace {

class DigestCacheTest : public tdx::test::TempDirTest {
 protected:
  fs::path tree() const { return dir() / "tree"; }
  fs::path cache_file() const { return dir() / "digests.bin"; }
  void make_tree(int files) {
    for (int i = 0; i < files; ++i) write("tree/d" + std::to_string(i % 7) + "/f" + std::to_string(i), "content " + std::to_string(i));
  }
};

TEST_F(DigestCacheTest, SecondHashReadsNothingAndAgrees) {
  make_tree(50);
  tdx::Digest plain = tdx::tree_hash(tree());
  {
    tdx::DigestCache cache(cache_file(), /*racy_seconds=*/-10);  // trust files however new
    EXPECT_EQ(tdx::tree_hash(tree(), tdx::TreeSelection::checkout, &cache), plain);
    EXPECT_EQ(cache.hits(), 0u);
    cache.save();
  }
  tdx::DigestCache again(cache_file(), -10);
  EXPECT_EQ(tdx::tree_hash(tree(), tdx::TreeSelection::checkout, &again), plain);
  EXPECT_EQ(again.hits(), 50u);
  EXPECT_EQ(again.misses(), 0u);
}

TEST_F(DigestCacheTest, ChangedFileIsRehashedEvenWithTheSameSize) {
  make_tree(10);
  tdx::DigestCache cache(cache_file(), -10);
  tdx::tree_hash(tree(), tdx::TreeSelection::checkout, &cache);
  cache.save();
  write("tree/d3/f3", "CONTENT 3");  // same size, new bytes: mtime/ctime move
  tdx::DigestCache again(cache_file(), -10);
  EXPECT_EQ(tdx::tree_hash(tree(), tdx::TreeSelection::checkout, &again), tdx::tree_hash(tree()));
  EXPECT_EQ(again.misses(), 1u);
}

TEST_F(DigestCacheTest, TooRecentFilesAreNotRemembered) {
  make_tree(5);
  tdx::DigestCache cache(cache_file());  // the default racy window: these files are brand new
  tdx::tree_hash(tree(), tdx::TreeSelection::checkout, &cache);
  cache.save();
  tdx::DigestCache again(cache_file());
  tdx::tree_hash(tree(), tdx::TreeSelection::checkout, &again);
  EXPECT_EQ(again.hits(), 0u);
}

TEST_F(DigestCacheTest, DamagedCacheFileIsIgnored) {
  make_tree(5);
  write("digests.bin", "tdxdig01 this is not a record");
  tdx::DigestCache cache(cache_file(), -10);
  EXPECT_EQ(tdx::tree_hash(tree(), tdx::TreeSelection::checkout, &cache), tdx::tree_hash(tree()));
  EXPECT_EQ(cache.hits(), 0u);
}

TEST_F(DigestCacheTest, ParallelHashingMatchesTheDefinition) {
  // Enough files to use every core; the summary is still built in sorted order.
  make_tree(300);
  std::vector<std::string> names;
  for (auto& e : fs::recursive_directory_iterator(tree()))
    if (e.is_regular_file()) names.push_back(e.path().lexically_relative(tree()).generic_string());
  std::sort(names.begin(), names.end());
  tdx::Sha256 summary;
  for (const auto& n : names) summary.update(tdx::to_hex(tdx::sha256_file(tree() / n)) + "  " + n + "\n");
  EXPECT_EQ(tdx::tree_hash(tree()), summary.finish());
}

}  // namespace
