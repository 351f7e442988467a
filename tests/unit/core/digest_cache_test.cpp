// DigestCache: unchanged files are not read again; any change of stat or content is seen.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <thread>

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
  // Hashes tree() with a fresh load of the cache file (trusting files however new) and saves it.
  tdx::Digest hash_with_cache(std::size_t* hits = nullptr, std::size_t* misses = nullptr) {
    tdx::DigestCache cache(cache_file(), -10);
    tdx::Digest d = tdx::tree_hash(tree(), tdx::TreeSelection::checkout, &cache);
    cache.save();
    if (hits) *hits = cache.hits();
    if (misses) *misses = cache.misses();
    return d;
  }
  // File system timestamps advance by clock ticks of a few milliseconds: wait one out, so a
  // change made now gets a timestamp the cache has not seen.
  static void next_tick() { std::this_thread::sleep_for(std::chrono::milliseconds(30)); }
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

TEST_F(DigestCacheTest, UnchangedTreeIsAnsweredFromItsFoldersWithoutReading) {
  make_tree(40);
  fs::create_directories(tree() / "empty/deeper");
  fs::create_symlink("d1/f1", tree() / "link");
  tdx::Digest plain = tdx::tree_hash(tree());
  EXPECT_EQ(hash_with_cache(), plain);
  tdx::DigestCache cache(cache_file(), -10);
  ASSERT_TRUE(cache.tree().has_value());
  EXPECT_EQ(*cache.tree(), plain);
  EXPECT_EQ(cache.folders().size(), 10u);  // the tree, d0..d6, empty, empty/deeper
  // Answered from memory, not by reading: a remembered hash altered on purpose comes back as it is.
  tdx::Digest marked = plain;
  marked[0] ^= 1;
  cache.remember_tree(cache.folders(), marked);
  EXPECT_EQ(tdx::tree_hash(tree(), tdx::TreeSelection::checkout, &cache), marked);
  EXPECT_EQ(cache.hits(), 40u);
  EXPECT_EQ(cache.misses(), 0u);
}

TEST_F(DigestCacheTest, AddedRemovedRenamedAndRelinkedEntriesAreSeen) {
  make_tree(20);
  fs::create_symlink("d1/f1", tree() / "link");
  fs::create_directories(tree() / "empty");
  hash_with_cache();
  const std::vector<std::function<void()>> changes = {
      [&] { write("tree/d2/new", "a new file"); },
      [&] { write("tree/empty/new", "a file in a folder that had none"); },
      [&] { fs::remove(tree() / "d3/f3"); },
      [&] { fs::rename(tree() / "d4/f4", tree() / "d4/f4-renamed"); },
      [&] { fs::rename(tree() / "d5/f5", tree() / "d6/f5"); },
      [&] { fs::remove(tree() / "link"), fs::create_symlink("d1/f8", tree() / "link"); },
      [&] { fs::create_directories(tree() / "empty/sub"), write("tree/empty/sub/x", "x"); },
      [&] { fs::remove_all(tree() / "d0"); },
  };
  for (std::size_t i = 0; i < changes.size(); ++i) {
    SCOPED_TRACE("change " + std::to_string(i));
    next_tick();
    changes[i]();
    tdx::Digest fresh = tdx::tree_hash(tree());
    EXPECT_EQ(hash_with_cache(), fresh);
    EXPECT_EQ(hash_with_cache(), fresh);  // and remembered again
  }
}

TEST_F(DigestCacheTest, RecentFoldersLeaveTheTreeUnremembered) {
  make_tree(5);
  {
    tdx::DigestCache cache(cache_file());  // the default racy window: the folders are brand new
    tdx::tree_hash(tree(), tdx::TreeSelection::checkout, &cache);
    cache.save();
  }
  tdx::DigestCache again(cache_file());
  EXPECT_FALSE(again.tree().has_value());
  EXPECT_TRUE(again.folders().empty());
}

TEST_F(DigestCacheTest, HashingAFileListForgetsTheRememberedTree) {
  make_tree(10);
  hash_with_cache();
  tdx::DigestCache cache(cache_file(), -10);
  ASSERT_TRUE(cache.tree().has_value());
  tdx::files_hash({{"only", tree() / "d1/f1"}}, &cache);
  EXPECT_FALSE(cache.tree().has_value());
  cache.save();
  next_tick();
  write("tree/d2/new", "not in the file list");
  tdx::DigestCache again(cache_file(), -10);
  EXPECT_EQ(tdx::tree_hash(tree(), tdx::TreeSelection::checkout, &again), tdx::tree_hash(tree()));
}

}  // namespace
