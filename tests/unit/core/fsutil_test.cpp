#include <tdx/fsutil.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>

#include "support/test_support.hpp"

namespace fs = std::filesystem;

namespace {

std::set<std::string> names_in(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

ino_t inode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_ino;
}

class FsutilTest : public tdx::test::TempDirTest {};

TEST_F(FsutilTest, AtomicWriteCreatesFoldersAndSetsTheMode) {
  fs::path p = dir() / "a" / "b" / "config.json";
  tdx::atomic_write(p, "{}\n", 0600);
  EXPECT_EQ(tdx::test::read(p), "{}\n");
  EXPECT_EQ(mode_of(p), 0600u);
}

TEST_F(FsutilTest, AtomicWriteModeIgnoresTheUmask) {
  // Generated scripts must stay executable for everyone whatever umask tdx runs under.
  mode_t old = ::umask(077);
  tdx::atomic_write(dir() / "script", "#!/bin/sh\n", 0755);
  ::umask(old);
  EXPECT_EQ(mode_of(dir() / "script"), 0755u);
}

TEST_F(FsutilTest, AtomicWriteReplacesAndLeavesNoTemporaryFiles) {
  fs::path p = dir() / "manifest.toml";
  tdx::atomic_write(p, "a much longer first version of the content\n");
  tdx::atomic_write(p, "short\n");
  EXPECT_EQ(tdx::test::read(p), "short\n");
  tdx::atomic_write(p, "");
  EXPECT_EQ(tdx::test::read(p), "");
  EXPECT_EQ(names_in(dir()), std::set<std::string>{"manifest.toml"});
}

TEST_F(FsutilTest, AtomicWriteRenamesANewFileIntoPlace) {
  // A reader holding the old file (here: a hard link to it) keeps seeing the old bytes,
  // which is what rename gives and an in-place rewrite would not.
  fs::path p = dir() / "data";
  tdx::atomic_write(p, "old");
  fs::create_hard_link(p, dir() / "reader");
  tdx::atomic_write(p, "new");
  EXPECT_EQ(tdx::test::read(dir() / "reader"), "old");
  EXPECT_EQ(tdx::test::read(p), "new");
  EXPECT_NE(inode_of(p), inode_of(dir() / "reader"));
}

TEST_F(FsutilTest, AtomicWriteKeepsBinaryContent) {
  std::string bytes("\x00\xff\x7f\n\r", 5);
  tdx::atomic_write(dir() / "bin", bytes);
  EXPECT_EQ(tdx::read_file(dir() / "bin"), bytes);
}

TEST_F(FsutilTest, ReadFileOfAMissingFileThrows) {
  EXPECT_THROW(tdx::read_file(dir() / "missing"), tdx::Error);
}

TEST_F(FsutilTest, TempDirRemovesItselfWithItsContent) {
  fs::path made;
  {
    tdx::TempDir t(dir() / "parent", "work");
    made = t.path();
    EXPECT_TRUE(fs::is_directory(made));
    EXPECT_EQ(made.parent_path(), dir() / "parent");
    EXPECT_EQ(made.filename().string().rfind(".work-", 0), 0u) << made;
    write(made.lexically_relative(dir()) / "sub" / "file", "x");
    tdx::TempDir other(dir() / "parent", "work");
    EXPECT_NE(other.path(), made);
  }
  EXPECT_FALSE(fs::exists(made));
  // Nothing is left beside it either (remove_tree renames aside before deleting).
  EXPECT_TRUE(fs::is_empty(dir() / "parent"));
}

TEST_F(FsutilTest, ReleasedTempDirIsKept) {
  fs::path kept;
  {
    tdx::TempDir t(dir());
    kept = t.path();
    t.release();
    EXPECT_TRUE(t.path().empty());
  }
  EXPECT_TRUE(fs::is_directory(kept));
}

TEST_F(FsutilTest, RemoveTreeRemovesAndToleratesMissingPaths) {
  write("tree/a/b/c", "x");
  fs::create_symlink("/", dir() / "tree" / "root-link");  // must be removed, not followed
  tdx::remove_tree(dir() / "tree");
  EXPECT_FALSE(fs::exists(dir() / "tree"));
  EXPECT_TRUE(fs::is_empty(dir()));
  EXPECT_NO_THROW(tdx::remove_tree(dir() / "never-existed"));
}

class CopyTreeTest : public tdx::test::TempDirTest {
 protected:
  fs::path src() const { return dir() / "src"; }

  void make_source() {
    fs::create_directories(src() / "bin");
    write("src/bin/tool", "#!/bin/sh\necho tool\n");
    fs::permissions(src() / "bin" / "tool", static_cast<fs::perms>(0751));
    write("src/private.key", "secret");
    fs::permissions(src() / "private.key", static_cast<fs::perms>(0600));
    write("src/etc/app/app.conf", "k=v\n");
    fs::permissions(src() / "etc" / "app", static_cast<fs::perms>(0700));
    fs::permissions(src(), static_cast<fs::perms>(0750));
  }
};

TEST_F(CopyTreeTest, KeepsContentAndModes) {
  make_source();
  tdx::copy_tree(src(), dir() / "dst");
  fs::path dst = dir() / "dst";
  EXPECT_EQ(tdx::test::read(dst / "bin" / "tool"), "#!/bin/sh\necho tool\n");
  EXPECT_EQ(tdx::test::read(dst / "etc" / "app" / "app.conf"), "k=v\n");
  EXPECT_EQ(mode_of(dst), 0750u);
  EXPECT_EQ(mode_of(dst / "bin" / "tool"), 0751u);
  EXPECT_EQ(mode_of(dst / "private.key"), 0600u);
  EXPECT_EQ(mode_of(dst / "etc" / "app"), 0700u);
  // A copy, not a link: changing it leaves the source alone.
  EXPECT_NE(inode_of(dst / "private.key"), inode_of(src() / "private.key"));
}

TEST_F(CopyTreeTest, KeepsSymlinksAsSymlinks) {
  make_source();
  fs::create_symlink("bin/tool", src() / "tool-link");
  // Absolute, to a file inside this test's folder, so a misplaced copy cannot reach outside it.
  write("elsewhere.txt", "outside the tree");
  fs::create_symlink(dir() / "elsewhere.txt", src() / "absolute-link");
  fs::create_symlink("does-not-exist", src() / "dangling-link");
  tdx::copy_tree(src(), dir() / "dst");
  fs::path dst = dir() / "dst";
  for (const char* link : {"tool-link", "absolute-link", "dangling-link"}) {
    ASSERT_TRUE(fs::is_symlink(fs::symlink_status(dst / link))) << link;
    EXPECT_EQ(fs::read_symlink(dst / link), fs::read_symlink(src() / link)) << link;
  }
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(dst / "bin" / "tool")));
  EXPECT_EQ(tdx::test::read(dst / "bin" / "tool"), "#!/bin/sh\necho tool\n");
}

TEST_F(CopyTreeTest, HardlinkModeSharesInodes) {
  make_source();
  tdx::copy_tree(src(), dir() / "dst", /*hardlink=*/true);
  fs::path dst = dir() / "dst";
  EXPECT_EQ(inode_of(dst / "bin" / "tool"), inode_of(src() / "bin" / "tool"));
  EXPECT_EQ(inode_of(dst / "etc" / "app" / "app.conf"), inode_of(src() / "etc" / "app" / "app.conf"));
  EXPECT_EQ(fs::hard_link_count(dst / "private.key"), 2u);
  // Folders are made anew, with the source's modes.
  EXPECT_NE(inode_of(dst / "etc"), inode_of(src() / "etc"));
  EXPECT_EQ(mode_of(dst / "etc" / "app"), 0700u);
}

TEST_F(FsutilTest, FileLockIsExclusiveWhileHeld) {
  fs::path lock_path = dir() / "locks" / "key.lock";
  auto try_lock = [&] {
    // A separate open file description, so flock conflicts with the one FileLock holds.
    int fd = ::open(lock_path.c_str(), O_RDWR | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    bool got = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
    ::close(fd);
    return got;
  };
  {
    tdx::FileLock lock(lock_path);
    EXPECT_TRUE(fs::exists(lock_path));
    EXPECT_FALSE(try_lock());
  }
  EXPECT_TRUE(try_lock());
}

}  // namespace
