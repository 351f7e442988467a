// One protocol session over a socket pair: the client side is written out frame by frame, so
// each refusal is checked against what the receiver answers and what it leaves on disk.
#include <sys/socket.h>

#include <filesystem>
#include <thread>

#include <tdx/secret_protocol.hpp>

#include "receiver_support.hpp"
#include "session.hpp"

using namespace tdx::receiver;
namespace sp = tdx::secret_protocol;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace tdx::test {
namespace {

class SessionTest : public ReceiverRootTest {
 protected:
  void SetUp() override {
    ReceiverRootTest::SetUp();
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, m_fd), 0);
    m_config = list("A\t/etc/app/a\troot\t\t0400\t16\nB\t/etc/app/b\troot\t\t0440\t16\n");
  }
  void TearDown() override {
    if (m_server.joinable()) m_server.join();
    for (int f : m_fd)
      if (f >= 0) ::close(f);
    ReceiverRootTest::TearDown();
  }
  void start(std::chrono::milliseconds idle = 2000ms) {
    m_server = std::thread([this, idle] {
      Root r(root());
      SessionOptions o;
      o.config = m_config;
      o.idle = idle;
      m_outcome = serve_session(m_fd[1], m_fd[1], r, o, [this](const std::string& m) { m_log += m + "\n"; });
      ::shutdown(m_fd[1], SHUT_RDWR);
    });
  }
  void send(sp::FrameType t, const std::string& payload) { sp::write_frame(m_fd[0], t, payload, sp::Deadline(2000ms, 5000ms)); }
  sp::Frame receive() { return sp::read_frame(m_fd[0], sp::Deadline(5000ms, 10000ms)); }
  std::pair<sp::ErrorCode, std::string> expect_error() {
    sp::Frame f = receive();
    EXPECT_EQ(f.type, sp::FrameType::error);
    return sp::decode_error(f.payload);
  }
  sp::Welcome hello() {
    send(sp::FrameType::hello, sp::encode_hello());
    sp::Frame f = receive();
    EXPECT_EQ(f.type, sp::FrameType::welcome);
    return sp::decode_welcome(f.payload);
  }
  void finish() {
    if (m_server.joinable()) m_server.join();
  }

  int m_fd[2] = {-1, -1};
  std::string m_config, m_log;
  std::thread m_server;
  SessionOutcome m_outcome;
};

TEST_F(SessionTest, StoresEverythingAtCommitAndReports) {
  start();
  sp::Welcome w = hello();
  ASSERT_EQ(w.declared.size(), 2u);
  EXPECT_EQ(w.declared[0].name, "A");
  EXPECT_EQ(w.declared[0].max_bytes, 16u);
  send(sp::FrameType::secret, sp::encode_secret("A", "alpha"));
  sp::Frame ack = receive();
  ASSERT_EQ(ack.type, sp::FrameType::accepted);
  EXPECT_EQ(sp::decode_accepted(ack.payload), std::make_pair(std::string("A"), 5u));
  EXPECT_FALSE(fs::exists(dir() / "root/etc/app/a"));  // staged, not yet in place
  send(sp::FrameType::commit, "");
  sp::Frame report = receive();
  ASSERT_EQ(report.type, sp::FrameType::report);
  sp::Report r = sp::decode_report(report.payload);
  EXPECT_EQ(r.stored, (std::vector<std::string>{"A"}));
  EXPECT_EQ(r.missing, (std::vector<std::string>{"B"}));
  finish();
  EXPECT_TRUE(m_outcome.committed);
  EXPECT_EQ(read(dir() / "root/etc/app/a"), "alpha");
  EXPECT_EQ(tree(), (std::vector<std::string>{"etc", "etc/app", "etc/app/a", "etc/group", "etc/passwd"}));
  EXPECT_EQ(m_log.find("alpha"), std::string::npos);
}

TEST_F(SessionTest, UnknownNameAbortsAndStoresNothingStaged) {
  start();
  hello();
  send(sp::FrameType::secret, sp::encode_secret("A", "alpha"));
  EXPECT_EQ(receive().type, sp::FrameType::accepted);
  send(sp::FrameType::secret, sp::encode_secret("C", "gamma"));
  auto [code, reason] = expect_error();
  EXPECT_EQ(code, sp::ErrorCode::unknown_name);
  EXPECT_EQ(reason, "C is not declared in " + m_config + "; refused");
  finish();
  EXPECT_FALSE(m_outcome.committed);
  EXPECT_EQ(tree(), (std::vector<std::string>{"etc", "etc/group", "etc/passwd"}));  // nor the folder staging made
}

TEST_F(SessionTest, TraversalNameIsRefusedWithoutQuotingIt) {
  start();
  hello();
  send(sp::FrameType::secret, sp::encode_secret("../../etc/shadow", "x"));
  auto [code, reason] = expect_error();
  EXPECT_EQ(code, sp::ErrorCode::unknown_name);
  EXPECT_EQ(reason.find("shadow"), std::string::npos) << reason;
  finish();
  EXPECT_EQ(tree(), (std::vector<std::string>{"etc", "etc/group", "etc/passwd"}));
}

TEST_F(SessionTest, OversizedValueIsRefused) {
  start();
  hello();
  send(sp::FrameType::secret, sp::encode_secret("A", std::string(17, 'x')));
  auto [code, reason] = expect_error();
  EXPECT_EQ(code, sp::ErrorCode::too_large);
  EXPECT_EQ(reason, "A: the value has 17 bytes, more than its cap of 16");
  finish();
  EXPECT_FALSE(fs::exists(dir() / "root/etc/app"));
}

TEST_F(SessionTest, SameNameTwiceIsRefused) {
  start();
  hello();
  send(sp::FrameType::secret, sp::encode_secret("A", "1"));
  EXPECT_EQ(receive().type, sp::FrameType::accepted);
  send(sp::FrameType::secret, sp::encode_secret("A", "2"));
  EXPECT_EQ(expect_error().first, sp::ErrorCode::duplicate);
  finish();
  EXPECT_FALSE(fs::exists(dir() / "root/etc/app/a"));
}

TEST_F(SessionTest, OtherVersionIsRefused) {
  start();
  send(sp::FrameType::hello, sp::encode_hello(2));
  auto [code, reason] = expect_error();
  EXPECT_EQ(code, sp::ErrorCode::version);
  EXPECT_NE(reason.find("version 2"), std::string::npos);
}

TEST_F(SessionTest, OversizedFrameHeaderIsRefusedBeforeItsPayload) {
  start();
  hello();
  sp::write_all(m_fd[0], sp::frame_header(sp::FrameType::secret, sp::k_max_frame + 1), sp::Deadline(1000ms, 1000ms));
  EXPECT_EQ(expect_error().first, sp::ErrorCode::too_large);
}

TEST_F(SessionTest, ClientClosingBeforeCommitStoresNothing) {
  start();
  hello();
  send(sp::FrameType::secret, sp::encode_secret("A", "alpha"));
  EXPECT_EQ(receive().type, sp::FrameType::accepted);
  ::shutdown(m_fd[0], SHUT_WR);
  finish();
  EXPECT_FALSE(m_outcome.committed);
  EXPECT_NE(m_outcome.error.find("before commit"), std::string::npos);
  EXPECT_EQ(tree(), (std::vector<std::string>{"etc", "etc/group", "etc/passwd"}));
}

TEST_F(SessionTest, SilentClientIsDropped) {
  start(200ms);
  hello();
  auto [code, reason] = expect_error();
  EXPECT_EQ(code, sp::ErrorCode::timeout);
  EXPECT_EQ(reason, "the peer sent nothing for too long");
}

TEST_F(SessionTest, MalformedConfigIsReportedToTheClient) {
  write("secrets.list", "tdx-secrets 1\nbroken line\n");
  start();
  send(sp::FrameType::hello, sp::encode_hello());
  auto [code, reason] = expect_error();
  EXPECT_EQ(code, sp::ErrorCode::config);
  EXPECT_NE(reason.find("secrets.list:2: expected 6 TAB-separated fields"), std::string::npos) << reason;
}

TEST_F(SessionTest, FirstFrameMustBeHello) {
  start();
  send(sp::FrameType::commit, "");
  EXPECT_EQ(expect_error().first, sp::ErrorCode::protocol);
}

}  // namespace
}  // namespace tdx::test
