// A temporary root for the receiver: etc/passwd and etc/group with a service account, and a
// secrets.list beside it.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "secrets_list.hpp"
#include "store.hpp"
#include "support/test_support.hpp"

namespace tdx::test {

class ReceiverRootTest : public TempDirTest {
 protected:
  static constexpr uid_t k_uid = 4711;
  static constexpr gid_t k_gid = 4711;
  static constexpr gid_t k_shared_gid = 4712;

  void SetUp() override {
    TempDirTest::SetUp();
    write("root/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nsvc:x:4711:4711::/var/lib/svc:/usr/sbin/nologin\n");
    write("root/etc/group", "root:x:0:\nsvc:x:4711:\nshared:x:4712:svc\n");
  }

  std::string root() const { return (dir() / "root").string(); }
  std::string list(const std::string& lines) const {
    return write("secrets.list", "tdx-secrets 1\n" + lines).string();
  }
  static bool is_root() { return ::geteuid() == 0; }
  struct stat stat_of(const std::string& rel) const {
    struct stat st {};
    EXPECT_EQ(::lstat((dir() / "root" / rel).c_str(), &st), 0) << rel;
    return st;
  }
  // Every file name under root/, to prove no temporary file was left behind.
  std::vector<std::string> tree() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir() / "root"))
      out.push_back(std::filesystem::relative(e.path(), dir() / "root").string());
    std::sort(out.begin(), out.end());
    return out;
  }
};

}  // namespace tdx::test
