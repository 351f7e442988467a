// The secret-delivery wire protocol (docs/secret-delivery.md), shared by the in-image
// receiver (plugins/delivery/receiver/) and `tdx secrets push`. Header only and
// dependent on nothing but the C++ library and POSIX: the receiver links glibc alone.
//
// Every frame is   type (1 byte) | length (4 bytes, big-endian) | payload (length bytes).
// A string inside a payload is   length (2 bytes, big-endian) | bytes.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tdx::secret_protocol {

inline constexpr std::uint16_t k_version = 1;
inline constexpr std::string_view k_magic = "TDXS";
// The largest value a secrets.list line may allow, and the default (delivery option max_size).
inline constexpr std::uint32_t k_max_value = 1u << 20;
inline constexpr std::uint32_t k_default_max_value = 65536;
inline constexpr std::size_t k_max_name = 128;
// Any one frame's payload: a name and the largest value, with room to spare.
inline constexpr std::uint32_t k_max_frame = k_max_value + 1024;
// Everything a client may send in one session.
inline constexpr std::uint64_t k_max_session = 16u << 20;

enum class FrameType : std::uint8_t {
  hello = 0x01,     // client: magic, version
  secret = 0x02,    // client: name, value (the rest of the payload)
  commit = 0x03,    // client: store everything accepted, then report
  welcome = 0x81,   // receiver: magic, version, declared names with their size caps
  accepted = 0x82,  // receiver: name, value size; staged, stored at commit
  report = 0x83,    // receiver: names stored, names still not in place
  error = 0xEE,     // receiver: code, reason; the session ends and nothing staged is stored
};

enum class ErrorCode : std::uint16_t {
  protocol = 1,      // a frame that is malformed or out of order
  version = 2,       // a protocol version the receiver does not speak
  unknown_name = 3,  // a name that is not declared (or not a name at all)
  too_large = 4,     // a value over its cap, a frame over k_max_frame, a session over k_max_session
  duplicate = 5,     // the same name twice in one session
  store_failed = 6,  // the receiver could not write a destination
  timeout = 7,       // the client was silent too long, or the session ran too long
  unavailable = 8,   // the relay could not reach the receiver service
  config = 9,        // the image's secrets.list is malformed
};

inline const char* error_code_name(ErrorCode c) {
  switch (c) {
    case ErrorCode::protocol: return "protocol";
    case ErrorCode::version: return "version";
    case ErrorCode::unknown_name: return "unknown-name";
    case ErrorCode::too_large: return "too-large";
    case ErrorCode::duplicate: return "duplicate";
    case ErrorCode::store_failed: return "store-failed";
    case ErrorCode::timeout: return "timeout";
    case ErrorCode::unavailable: return "unavailable";
    case ErrorCode::config: return "config";
  }
  return "unknown";
}

// A protocol failure on this side: what to put in an error frame, or to tell the user.
class ProtocolError : public std::runtime_error {
 public:
  ProtocolError(ErrorCode code, const std::string& reason) : std::runtime_error(reason), m_code(code) {}
  ErrorCode code() const { return m_code; }

 private:
  ErrorCode m_code;
};

// The peer closed the stream where a frame should start (not inside one).
class EndOfStream : public std::runtime_error {
 public:
  EndOfStream() : std::runtime_error("the peer closed the connection") {}
};

// Overwrites a buffer that held a secret value before it is freed: its whole capacity, so
// the bytes a moved-from short string keeps in place are cleared too.
inline void wipe(std::string& s) {
  s.resize(s.capacity());
  volatile char* p = s.data();
  for (std::size_t i = 0; i < s.size(); ++i) p[i] = 0;
  s.clear();
}

struct Frame {
  FrameType type{};
  std::string payload;
  Frame() = default;
  Frame(FrameType t, std::string p) : type(t), payload(std::move(p)) {}
  Frame(Frame&&) = default;
  Frame& operator=(Frame&&) = default;
  ~Frame() { wipe(payload); }
};

// ---- payloads -----------------------------------------------------------------

class Writer {
 public:
  Writer& u8(std::uint8_t v) {
    m_out.push_back(static_cast<char>(v));
    return *this;
  }
  Writer& u16(std::uint16_t v) { return u8(static_cast<std::uint8_t>(v >> 8)).u8(static_cast<std::uint8_t>(v)); }
  Writer& u32(std::uint32_t v) { return u16(static_cast<std::uint16_t>(v >> 16)).u16(static_cast<std::uint16_t>(v)); }
  Writer& str(std::string_view s) {
    if (s.size() > 0xffff) throw ProtocolError(ErrorCode::protocol, "a string field is longer than 65535 bytes");
    u16(static_cast<std::uint16_t>(s.size()));
    m_out.append(s);
    return *this;
  }
  Writer& raw(std::string_view s) {
    m_out.append(s);
    return *this;
  }
  std::string take() { return std::move(m_out); }

 private:
  std::string m_out;
};

// Reads a payload front to back; running past its end is a protocol error.
class Reader {
 public:
  explicit Reader(std::string_view payload) : m_rest(payload) {}
  std::uint8_t u8() { return static_cast<std::uint8_t>(take(1)[0]); }
  std::uint16_t u16() {
    auto b = take(2);
    return static_cast<std::uint16_t>((static_cast<std::uint8_t>(b[0]) << 8) | static_cast<std::uint8_t>(b[1]));
  }
  std::uint32_t u32() {
    std::uint32_t hi = u16();
    return (hi << 16) | u16();
  }
  std::string_view str() { return take(u16()); }
  std::string_view rest() { return take(m_rest.size()); }
  bool done() const { return m_rest.empty(); }
  void expect_done(const char* what) const {
    if (!done()) throw ProtocolError(ErrorCode::protocol, std::string(what) + " frame has trailing bytes");
  }

 private:
  std::string_view take(std::size_t n) {
    if (n > m_rest.size()) throw ProtocolError(ErrorCode::protocol, "a frame ends in the middle of a field");
    auto out = m_rest.substr(0, n);
    m_rest.remove_prefix(n);
    return out;
  }
  std::string_view m_rest;
};

struct Declared {
  std::string name;
  std::uint32_t max_bytes = 0;
};

struct Welcome {
  std::uint16_t version = 0;
  std::uint32_t max_frame = 0;
  std::uint64_t max_session = 0;
  std::vector<Declared> declared;
};

struct Report {
  std::vector<std::string> stored, missing;
};

inline std::string encode_hello(std::uint16_t version = k_version) {
  return Writer().raw(k_magic).u16(version).take();
}

// The client's version; a wrong magic is a protocol error, a wrong version is left to the caller.
inline std::uint16_t decode_hello(std::string_view payload) {
  if (payload.substr(0, k_magic.size()) != k_magic)
    throw ProtocolError(ErrorCode::protocol, "the first frame is not a tdx secret-delivery hello");
  Reader r(payload.substr(k_magic.size()));
  return r.u16();
}

inline std::string encode_welcome(const std::vector<Declared>& declared) {
  Writer w;
  w.raw(k_magic).u16(k_version).u32(k_max_frame).u32(static_cast<std::uint32_t>(k_max_session));
  w.u16(static_cast<std::uint16_t>(declared.size()));
  for (const auto& d : declared) w.str(d.name).u32(d.max_bytes);
  return w.take();
}

inline Welcome decode_welcome(std::string_view payload) {
  if (payload.substr(0, k_magic.size()) != k_magic)
    throw ProtocolError(ErrorCode::protocol, "the receiver's welcome does not start with the protocol magic");
  Reader r(payload.substr(k_magic.size()));
  Welcome w;
  w.version = r.u16();
  w.max_frame = r.u32();
  w.max_session = r.u32();
  for (std::uint16_t n = r.u16(); n > 0; --n) {
    Declared d;
    d.name = r.str();
    d.max_bytes = r.u32();
    w.declared.push_back(std::move(d));
  }
  r.expect_done("welcome");
  return w;
}

inline std::string encode_secret(std::string_view name, std::string_view value) {
  return Writer().str(name).raw(value).take();
}

// The name, and the value as a view into `payload`.
inline std::pair<std::string, std::string_view> decode_secret(std::string_view payload) {
  Reader r(payload);
  std::string name(r.str());
  return {std::move(name), r.rest()};
}

inline std::string encode_accepted(std::string_view name, std::uint32_t size) {
  return Writer().str(name).u32(size).take();
}

inline std::pair<std::string, std::uint32_t> decode_accepted(std::string_view payload) {
  Reader r(payload);
  std::string name(r.str());
  std::uint32_t size = r.u32();
  r.expect_done("accepted");
  return {std::move(name), size};
}

inline std::string encode_report(const Report& report) {
  Writer w;
  for (const auto* list : {&report.stored, &report.missing}) {
    w.u16(static_cast<std::uint16_t>(list->size()));
    for (const auto& n : *list) w.str(n);
  }
  return w.take();
}

inline Report decode_report(std::string_view payload) {
  Reader r(payload);
  Report report;
  for (auto* list : {&report.stored, &report.missing})
    for (std::uint16_t n = r.u16(); n > 0; --n) list->emplace_back(r.str());
  r.expect_done("report");
  return report;
}

inline std::string encode_error(ErrorCode code, std::string_view reason) {
  return Writer().u16(static_cast<std::uint16_t>(code)).raw(reason.substr(0, 4000)).take();
}

inline std::pair<ErrorCode, std::string> decode_error(std::string_view payload) {
  Reader r(payload);
  auto code = static_cast<ErrorCode>(r.u16());
  return {code, std::string(r.rest())};
}

// ---- frames over a file descriptor (pipe, Unix or vsock stream) -----------------

// When a read or write gives up: `idle` after the last progress, and never after `end`.
class Deadline {
 public:
  using Clock = std::chrono::steady_clock;
  Deadline(std::chrono::milliseconds idle, std::chrono::milliseconds total)
      : m_idle(idle), m_end(Clock::now() + total) {}
  // Milliseconds to wait now, at least 0.
  int wait_ms() const {
    auto now = Clock::now();
    auto left = std::min(m_idle, std::chrono::duration_cast<std::chrono::milliseconds>(m_end - now));
    return left.count() < 0 ? 0 : static_cast<int>(left.count());
  }
  bool session_over() const { return Clock::now() >= m_end; }

 private:
  std::chrono::milliseconds m_idle;
  Clock::time_point m_end;
};

namespace detail {
// Waits for `events` on fd; false on timeout. EINTR counts as "try again", so a signal
// handler that wants to stop the program must also make `interrupted()` true.
inline bool wait_for(int fd, short events, const Deadline& deadline, bool (*interrupted)()) {
  for (;;) {
    if (interrupted && interrupted()) throw ProtocolError(ErrorCode::unavailable, "the receiver is stopping");
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, deadline.wait_ms());
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) throw ProtocolError(ErrorCode::protocol, std::string("poll: ") + std::strerror(errno));
  }
}

inline void timed_out(const Deadline& deadline) {
  throw ProtocolError(ErrorCode::timeout, deadline.session_over() ? "the session ran longer than allowed"
                                                                  : "the peer sent nothing for too long");
}

// Reads exactly n bytes; false if the stream ended before the first byte (only if allow_eof).
inline bool read_exact(int fd, char* buf, std::size_t n, const Deadline& deadline, bool allow_eof,
                       bool (*interrupted)()) {
  std::size_t done = 0;
  while (done < n) {
    if (!wait_for(fd, POLLIN, deadline, interrupted)) timed_out(deadline);
    ssize_t got = ::read(fd, buf + done, n - done);
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw ProtocolError(ErrorCode::protocol, std::string("read: ") + std::strerror(errno));
    }
    if (got == 0) {
      if (done == 0 && allow_eof) return false;
      throw ProtocolError(ErrorCode::protocol, "the connection closed in the middle of a frame");
    }
    done += static_cast<std::size_t>(got);
  }
  return true;
}
}  // namespace detail

inline void write_all(int fd, std::string_view bytes, const Deadline& deadline, bool (*interrupted)() = nullptr) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    if (!detail::wait_for(fd, POLLOUT, deadline, interrupted)) detail::timed_out(deadline);
    // send() with MSG_NOSIGNAL so a vanished peer is an error, not SIGPIPE; pipes take write().
    ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw ProtocolError(ErrorCode::protocol, std::string("write: ") + std::strerror(errno));
    }
    done += static_cast<std::size_t>(n);
  }
}

inline std::string frame_header(FrameType type, std::size_t length) {
  return Writer().u8(static_cast<std::uint8_t>(type)).u32(static_cast<std::uint32_t>(length)).take();
}

inline void write_frame(int fd, FrameType type, std::string_view payload, const Deadline& deadline,
                        bool (*interrupted)() = nullptr) {
  if (payload.size() > k_max_frame) throw ProtocolError(ErrorCode::too_large, "a frame is larger than the protocol allows");
  write_all(fd, frame_header(type, payload.size()), deadline, interrupted);
  write_all(fd, payload, deadline, interrupted);
}

// The next frame; throws EndOfStream when the peer closed cleanly between frames, and
// ProtocolError(too_large) for a frame longer than max_payload, before reading its payload.
inline Frame read_frame(int fd, const Deadline& deadline, std::uint32_t max_payload = k_max_frame,
                        bool (*interrupted)() = nullptr) {
  char header[5];
  if (!detail::read_exact(fd, header, sizeof header, deadline, true, interrupted)) throw EndOfStream();
  Reader r(std::string_view(header, sizeof header));
  Frame f;
  f.type = static_cast<FrameType>(r.u8());
  std::uint32_t length = r.u32();
  if (length > max_payload)
    throw ProtocolError(ErrorCode::too_large, "a frame of " + std::to_string(length) + " bytes is over the limit of " +
                                                  std::to_string(max_payload) + " bytes");
  f.payload.resize(length);
  detail::read_exact(fd, f.payload.data(), length, deadline, false, interrupted);
  return f;
}

// Secret names: [A-Za-z_][A-Za-z0-9_]*, at most k_max_name bytes.
inline bool is_valid_name(std::string_view name) {
  if (name.empty() || name.size() > k_max_name) return false;
  auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
  if (!alpha(name[0])) return false;
  for (char c : name)
    if (!alpha(c) && !(c >= '0' && c <= '9')) return false;
  return true;
}

}  // namespace tdx::secret_protocol
