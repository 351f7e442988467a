// Writing secrets under a temporary root: contents, owners, modes, atomic replacement and the
// refusals that must leave nothing behind.
#include <fcntl.h>

#include <filesystem>
#include <memory>

#include "receiver_support.hpp"

using namespace tdx::receiver;
namespace fs = std::filesystem;

namespace tdx::test {
namespace {

class StoreTest : public ReceiverRootTest {};

TEST_F(StoreTest, StoresWithOwnerGroupAndMode) {
  if (!is_root()) GTEST_SKIP() << "chown to another user needs root";
  auto secrets = load_secrets_list(list("A\t/etc/app/a.key\tsvc\t\t0400\t100\nB\t/etc/app/sub/b.pem\tsvc\tshared\t0440\t100\n"));
  Root r(root());
  store_secret(r, secrets[0], "alpha");
  store_secret(r, secrets[1], std::string("b\0eta", 5));
  EXPECT_EQ(read(dir() / "root/etc/app/a.key"), "alpha");
  EXPECT_EQ(read(dir() / "root/etc/app/sub/b.pem"), std::string("b\0eta", 5));
  auto a = stat_of("etc/app/a.key");
  EXPECT_EQ(a.st_uid, k_uid);
  EXPECT_EQ(a.st_gid, k_gid);  // the owner's primary group
  EXPECT_EQ(a.st_mode & 07777, 0400u);
  auto b = stat_of("etc/app/sub/b.pem");
  EXPECT_EQ(b.st_gid, k_shared_gid);
  EXPECT_EQ(b.st_mode & 07777, 0440u);
  auto folder = stat_of("etc/app/sub");  // made by the receiver: 0755 root
  EXPECT_EQ(folder.st_mode & 07777, 0755u);
  EXPECT_EQ(folder.st_uid, 0u);
  auto status = inspect(r, secrets);
  EXPECT_TRUE(status[0].in_place && status[1].in_place) << status[0].problem << status[1].problem;
}

TEST_F(StoreTest, ReplacesAtomicallyAndLeavesNoTemporaryFile) {
  auto secrets = load_secrets_list(list("A\t/etc/a\troot\t\t0400\t100\n"));
  Root r(root());
  store_secret(r, secrets[0], "old");
  int fd = ::open((dir() / "root/etc/a").c_str(), O_RDONLY);  // a reader holding the old file
  ASSERT_GE(fd, 0);
  store_secret(r, secrets[0], "new value");
  char buf[16] = {};
  EXPECT_EQ(::read(fd, buf, sizeof buf), 3);
  EXPECT_EQ(std::string(buf), "old");  // the old inode, whole: the new one was renamed over it
  ::close(fd);
  EXPECT_EQ(read(dir() / "root/etc/a"), "new value");
  EXPECT_EQ(tree(), (std::vector<std::string>{"etc", "etc/a", "etc/group", "etc/passwd"}));
}

TEST_F(StoreTest, StagedButNotCommittedLeavesNothing) {
  auto secrets = load_secrets_list(list("A\t/etc/a\troot\t\t0400\t100\n"));
  Root r(root());
  store_secret(r, secrets[0], "kept");
  {
    StagedSecret staged(r, secrets[0], "dropped");
    EXPECT_EQ(tree().size(), 5u);  // the temporary file exists while staged
  }
  EXPECT_EQ(read(dir() / "root/etc/a"), "kept");
  EXPECT_EQ(tree(), (std::vector<std::string>{"etc", "etc/a", "etc/group", "etc/passwd"}));
}

TEST_F(StoreTest, DiscardedStagingRemovesTheFoldersItMade) {
  auto secrets = load_secrets_list(list("A\t/etc/new/deeper/a\troot\t\t0400\t100\nB\t/etc/new/b\troot\t\t0400\t100\n"));
  Root r(root());
  {
    auto a = std::make_unique<StagedSecret>(r, secrets[0], "a");
    auto b = std::make_unique<StagedSecret>(r, secrets[1], "b");
    EXPECT_TRUE(fs::is_directory(dir() / "root/etc/new/deeper"));
    b.reset();  // newest first, as a session discards
    a.reset();
  }
  EXPECT_EQ(tree(), (std::vector<std::string>{"etc", "etc/group", "etc/passwd"}));
  fs::create_directories(dir() / "root/etc/kept");
  auto kept = load_secrets_list(list("A\t/etc/kept/a\troot\t\t0400\t100\n"));
  { StagedSecret s(r, kept[0], "a"); }
  EXPECT_TRUE(fs::is_directory(dir() / "root/etc/kept"));  // only folders it made itself
}

TEST_F(StoreTest, RefusesAnOversizedValue) {
  auto secrets = load_secrets_list(list("A\t/etc/app/a\troot\t\t0400\t4\n"));
  Root r(root());
  std::string message;
  try {
    store_secret(r, secrets[0], "12345");
  } catch (const ReceiverError& e) {
    message = e.what();
  }
  EXPECT_EQ(message, "A: the value has 5 bytes, more than its cap of 4 (raise it with the delivery option max_size)");
  EXPECT_FALSE(fs::exists(dir() / "root/etc/app"));
}

TEST_F(StoreTest, RefusesASymlinkedParentThatLeadsOutside) {
  fs::create_directories(dir() / "outside");
  fs::create_directories(dir() / "root/etc");
  fs::create_symlink(dir() / "outside", dir() / "root/etc/app");
  auto secrets = load_secrets_list(list("A\t/etc/app/a.key\troot\t\t0400\t100\n"));
  Root r(root());
  std::string message;
  try {
    store_secret(r, secrets[0], "value");
  } catch (const ReceiverError& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("/etc/app is a symlink (to " + (dir() / "outside").string() + ")"), std::string::npos) << message;
  EXPECT_TRUE(fs::is_empty(dir() / "outside"));
  auto status = inspect(r, secrets);
  EXPECT_FALSE(status[0].in_place);
  EXPECT_NE(status[0].problem.find("symlink"), std::string::npos);
}

TEST_F(StoreTest, RefusesAFolderAtTheDestinationAndAFileAsAParent) {
  fs::create_directories(dir() / "root/etc/a");
  write("root/etc/f", "x");
  auto secrets = load_secrets_list(list("A\t/etc/a\troot\t\t0400\t100\nB\t/etc/f/b\troot\t\t0400\t100\n"));
  Root r(root());
  EXPECT_THROW(store_secret(r, secrets[0], "v"), ReceiverError);
  try {
    store_secret(r, secrets[1], "v");
    FAIL();
  } catch (const ReceiverError& e) {
    EXPECT_NE(std::string(e.what()).find("/etc/f is not a folder"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(dir() / "root/etc/a"));
}

TEST_F(StoreTest, UnknownOwnerIsRefusedBeforeAnythingIsWritten) {
  auto secrets = load_secrets_list(list("A\t/etc/app/a\tnobody2\t\t0400\t100\nB\t/etc/app/b\tsvc\tnogroup2\t0400\t100\n"));
  Root r(root());
  try {
    store_secret(r, secrets[0], "v");
    FAIL();
  } catch (const ReceiverError& e) {
    EXPECT_NE(std::string(e.what()).find("owner 'nobody2' is not a user in " + root() + "/etc/passwd"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(store_secret(r, secrets[1], "v"), ReceiverError);
  EXPECT_FALSE(fs::exists(dir() / "root/etc/app"));
}

TEST_F(StoreTest, InspectReportsMissingWrongOwnerAndMode) {
  if (!is_root()) GTEST_SKIP() << "chown needs root";
  auto secrets = load_secrets_list(list("A\t/etc/a\tsvc\t\t0400\t100\nB\t/etc/b\troot\t\t0400\t100\n"));
  Root r(root());
  write("root/etc/a", "x");
  ::chmod((dir() / "root/etc/a").c_str(), 0644);
  auto status = inspect(r, secrets);
  EXPECT_FALSE(status[0].in_place);
  EXPECT_EQ(status[0].problem, root() + "/etc/a: owner 0:0, expected svc (4711:4711); mode 0644, expected 0400");
  EXPECT_EQ(status[1].problem, "missing");
  EXPECT_EQ(not_in_place(status), (std::vector<std::string>{"A", "B"}));
}

}  // namespace
}  // namespace tdx::test
