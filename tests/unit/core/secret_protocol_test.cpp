// The secret-delivery wire format: payload round trips, bounds, and frames over a socket pair.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <tdx/secret_protocol.hpp>

namespace sp = tdx::secret_protocol;
using namespace std::chrono_literals;

namespace {

struct SocketPair {
  int fd[2] = {-1, -1};
  SocketPair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd), 0); }
  ~SocketPair() {
    for (int f : fd)
      if (f >= 0) ::close(f);
  }
};

sp::Deadline quick() { return sp::Deadline(2000ms, 5000ms); }

TEST(SecretProtocol, HelloCarriesMagicAndVersion) {
  std::string hello = sp::encode_hello();
  EXPECT_EQ(hello, std::string("TDXS\x00\x01", 6));
  EXPECT_EQ(sp::decode_hello(hello), 1);
  EXPECT_EQ(sp::decode_hello(sp::encode_hello(7)), 7);
  EXPECT_THROW(sp::decode_hello("XXXX\x00\x01"), sp::ProtocolError);
  EXPECT_THROW(sp::decode_hello("TDXS\x00"), sp::ProtocolError);  // cut in the middle of the version
}

TEST(SecretProtocol, WelcomeRoundTrip) {
  std::string payload = sp::encode_welcome({{"JWT_SECRET", 64}, {"TLS_KEY", 65536}});
  sp::Welcome w = sp::decode_welcome(payload);
  EXPECT_EQ(w.version, sp::k_version);
  EXPECT_EQ(w.max_frame, sp::k_max_frame);
  EXPECT_EQ(w.max_session, sp::k_max_session);
  ASSERT_EQ(w.declared.size(), 2u);
  EXPECT_EQ(w.declared[0].name, "JWT_SECRET");
  EXPECT_EQ(w.declared[0].max_bytes, 64u);
  EXPECT_EQ(w.declared[1].name, "TLS_KEY");
  EXPECT_EQ(w.declared[1].max_bytes, 65536u);
  EXPECT_THROW(sp::decode_welcome(payload + "x"), sp::ProtocolError);  // trailing bytes
  EXPECT_THROW(sp::decode_welcome(payload.substr(0, payload.size() - 1)), sp::ProtocolError);
}

TEST(SecretProtocol, SecretValueIsTheRestOfThePayloadByteForByte) {
  std::string value("a\0b\n\xff", 5);
  std::string payload = sp::encode_secret("KEY", value);
  EXPECT_EQ(payload, std::string("\x00\x03KEY", 5) + value);
  auto [name, got] = sp::decode_secret(payload);
  EXPECT_EQ(name, "KEY");
  EXPECT_EQ(got, value);
  auto [empty_name, empty] = sp::decode_secret(sp::encode_secret("E", ""));
  EXPECT_EQ(empty_name, "E");
  EXPECT_TRUE(empty.empty());
  EXPECT_THROW(sp::decode_secret(std::string("\x00\x09KEY", 5)), sp::ProtocolError);  // name runs past the end
}

TEST(SecretProtocol, AcceptedReportAndError) {
  auto [name, size] = sp::decode_accepted(sp::encode_accepted("A", 123456));
  EXPECT_EQ(name, "A");
  EXPECT_EQ(size, 123456u);
  sp::Report r = sp::decode_report(sp::encode_report({{"A", "B"}, {"C"}}));
  EXPECT_EQ(r.stored, (std::vector<std::string>{"A", "B"}));
  EXPECT_EQ(r.missing, (std::vector<std::string>{"C"}));
  auto [code, reason] = sp::decode_error(sp::encode_error(sp::ErrorCode::unknown_name, "X is not declared"));
  EXPECT_EQ(code, sp::ErrorCode::unknown_name);
  EXPECT_EQ(reason, "X is not declared");
  EXPECT_STREQ(sp::error_code_name(sp::ErrorCode::too_large), "too-large");
}

TEST(SecretProtocol, NamesFollowTheDeclarationRule) {
  for (const char* good : {"A", "_x", "JWT_SECRET", "a1_b2"}) EXPECT_TRUE(sp::is_valid_name(good)) << good;
  for (const char* bad : {"", "1A", "../x", "a-b", "a b", "a/b", "a.b", "é"}) EXPECT_FALSE(sp::is_valid_name(bad)) << bad;
  EXPECT_TRUE(sp::is_valid_name(std::string(sp::k_max_name, 'a')));
  EXPECT_FALSE(sp::is_valid_name(std::string(sp::k_max_name + 1, 'a')));
}

TEST(SecretProtocol, FramesOverASocket) {
  SocketPair s;
  sp::write_frame(s.fd[0], sp::FrameType::secret, sp::encode_secret("K", "v"), quick());
  sp::write_frame(s.fd[0], sp::FrameType::commit, "", quick());
  sp::Frame f = sp::read_frame(s.fd[1], quick());
  EXPECT_EQ(f.type, sp::FrameType::secret);
  EXPECT_EQ(sp::decode_secret(f.payload).second, "v");
  sp::Frame c = sp::read_frame(s.fd[1], quick());
  EXPECT_EQ(c.type, sp::FrameType::commit);
  EXPECT_TRUE(c.payload.empty());
  ::close(s.fd[0]);
  s.fd[0] = -1;
  EXPECT_THROW(sp::read_frame(s.fd[1], quick()), sp::EndOfStream);  // clean close between frames
}

TEST(SecretProtocol, OversizedFrameIsRefusedFromItsHeader) {
  SocketPair s;
  // Only the header is sent: the reader must refuse it without waiting for the payload.
  sp::write_all(s.fd[0], sp::frame_header(sp::FrameType::secret, 5000), quick());
  try {
    sp::read_frame(s.fd[1], quick(), 4096);
    FAIL() << "expected too_large";
  } catch (const sp::ProtocolError& e) {
    EXPECT_EQ(e.code(), sp::ErrorCode::too_large);
    EXPECT_NE(std::string(e.what()).find("5000"), std::string::npos);
  }
}

TEST(SecretProtocol, CutFrameAndSilentPeer) {
  SocketPair s;
  sp::write_all(s.fd[0], sp::frame_header(sp::FrameType::secret, 10) + "abc", quick());
  try {
    sp::read_frame(s.fd[1], sp::Deadline(100ms, 1000ms));
    FAIL() << "expected a timeout";
  } catch (const sp::ProtocolError& e) {
    EXPECT_EQ(e.code(), sp::ErrorCode::timeout);
  }
  SocketPair t;
  sp::write_all(t.fd[0], sp::frame_header(sp::FrameType::secret, 10) + "abc", quick());
  ::close(t.fd[0]);
  t.fd[0] = -1;
  try {
    sp::read_frame(t.fd[1], quick());
    FAIL() << "expected a protocol error";
  } catch (const sp::ProtocolError& e) {
    EXPECT_EQ(e.code(), sp::ErrorCode::protocol);
  }
}

TEST(SecretProtocol, WipeClearsTheBytes) {
  std::string v = "value";
  const char* p = v.data();
  sp::wipe(v);
  EXPECT_TRUE(v.empty());
  EXPECT_EQ(std::string(p, 5), std::string(5, '\0'));  // small-string buffer, still owned by v
}

}  // namespace
