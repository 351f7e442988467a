// `tdx secrets push`: one protocol session with a VM's receiver over ssh, AF_VSOCK or a Unix
// socket (docs/secret-delivery.md). The protocol code is the receiver's own header.
#include <linux/vm_sockets.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include <tdx/error.hpp>
#include <tdx/process.hpp>
#include <tdx/secret_protocol.hpp>
#include <tdx/secrets.hpp>

namespace sp = tdx::secret_protocol;

namespace tdx {

namespace {

// The command ssh asks for; an account with a forced command (the image's) runs that instead.
constexpr const char* k_remote_command = "/usr/lib/tdx/tdx-secret-receiver serve --stdio";

std::string join(const StringList& list) {
  std::string out;
  for (const auto& s : list) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// The byte stream to the receiver.
class Channel {
 public:
  virtual ~Channel() = default;
  virtual int read_fd() const = 0;
  virtual int write_fd() const = 0;
  // After a failed session: why, from the transport's point of view ("" when it has nothing to add).
  virtual std::string explain_failure() { return ""; }
};

class SocketChannel final : public Channel {
 public:
  explicit SocketChannel(int fd) : m_fd(fd) {}
  ~SocketChannel() override { ::close(m_fd); }
  int read_fd() const override { return m_fd; }
  int write_fd() const override { return m_fd; }

 private:
  int m_fd;
};

std::unique_ptr<Channel> connect_unix(const PushTarget& t) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (t.unix_path.empty() || t.unix_path.size() >= sizeof addr.sun_path)
    throw Error("--unix '" + t.unix_path + "' is not a usable socket path (at most " +
                std::to_string(sizeof addr.sun_path - 1) + " bytes)");
  std::memcpy(addr.sun_path, t.unix_path.c_str(), t.unix_path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Error(std::string("socket(AF_UNIX): ") + std::strerror(errno));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    ::close(fd);
    throw Error("cannot reach the receiver at " + t.unix_path + ": " + std::strerror(err) +
                "\n  hint: start one with: tdx-secret-receiver serve --unix " + t.unix_path);
  }
  return std::make_unique<SocketChannel>(fd);
}

std::unique_ptr<Channel> connect_vsock(const PushTarget& t) {
  int fd = ::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    throw Error(std::string("this machine cannot open AF_VSOCK sockets: ") + std::strerror(errno) +
                "\n  hint: the host needs the vhost_vsock module (modprobe vhost_vsock) and a VM started with a "
                "vhost-vsock device; or push over ssh with --host");
  sockaddr_vm addr{};
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = t.cid;
  addr.svm_port = t.vsock_port;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    ::close(fd);
    throw Error("cannot reach the receiver at vsock CID " + std::to_string(t.cid) + " port " +
                std::to_string(t.vsock_port) + ": " + std::strerror(err) +
                "\n  hint: is the VM running with guest-cid=" + std::to_string(t.cid) +
                ", and tdx-secret-receiver.service up in it (the delivery option port= sets the port)?");
  }
  return std::make_unique<SocketChannel>(fd);
}

class SshChannel final : public Channel {
 public:
  SshChannel(const PushTarget& target) : m_target(target), m_proc(spawn_piped(ssh_argv(target))) {
    m_reader = std::thread([this] {
      char buf[4096];
      for (;;) {
        ssize_t n = ::read(m_proc.stderr_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        std::lock_guard<std::mutex> lock(m_mutex);
        if (m_stderr.size() < 65536) m_stderr.append(buf, static_cast<std::size_t>(n));
      }
    });
  }
  ~SshChannel() override { finish(); }
  int read_fd() const override { return m_proc.stdout_fd; }
  int write_fd() const override { return m_proc.stdin_fd; }

  // Ends ssh (closing its stdin ends the remote session) and collects its status and stderr.
  int finish() {
    if (m_status >= 0) return m_status;
    ::close(m_proc.stdin_fd);
    m_status = wait_process(m_proc.pid, 10000);
    ::close(m_proc.stdout_fd);
    if (m_reader.joinable()) m_reader.join();
    ::close(m_proc.stderr_fd);
    return m_status;
  }

  std::string explain_failure() override {
    int status = finish();
    std::string err;
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      err = m_stderr;
    }
    std::string where = m_target.describe();
    std::string said;  // ssh's own words, indented
    for (std::size_t start = 0; start < err.size();) {
      std::size_t end = err.find('\n', start);
      if (end == std::string::npos) end = err.size();
      std::string line = err.substr(start, end - start);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) said += "\n    | " + line;
      start = end + 1;
    }
    auto has = [&](const char* s) { return err.find(s) != std::string::npos; };
    if (has("Permission denied"))
      return "the VM refused the ssh key for " + where + said +
             "\n  hint: the image accepts the public keys given as authorized_key= (or authorized_keys=) in "
             "image.secret_delivery(\"ssh\", ...) for the account in user= (default tdx-secrets); pass the matching "
             "private key with --identity KEY and the account with --user NAME";
    if (has("Host key verification failed") || has("REMOTE HOST IDENTIFICATION HAS CHANGED"))
      return "ssh could not verify the VM's host key at " + where + said +
             "\n  hint: pass --known-hosts FILE holding the VM's host key, or -o StrictHostKeyChecking=accept-new to "
             "trust the key the VM shows the first time";
    if (has("Connection refused") || has("timed out") || has("No route to host") || has("Could not resolve") ||
        has("Network is unreachable"))
      return "cannot reach ssh at " + where + said + "\n  hint: is the VM up, and is its ssh port forwarded to the host?";
    if (status == 255) return "ssh to " + where + " failed (exit status 255)" + said;
    if (!said.empty()) return "the session with " + where + " ended early; the VM said:" + said;
    return "";
  }

 private:
  PushTarget m_target;
  PipedProcess m_proc;
  std::thread m_reader;
  std::mutex m_mutex;
  std::string m_stderr;
  int m_status = -1;
};

std::unique_ptr<Channel> open_channel(const PushTarget& t) {
  switch (t.kind) {
    case PushTarget::Kind::unix_socket: return connect_unix(t);
    case PushTarget::Kind::vsock: return connect_vsock(t);
    case PushTarget::Kind::ssh: return std::make_unique<SshChannel>(t);
  }
  throw Error("unknown push target");
}

// The VM answered with a refusal (or declares other secrets): its words are the message.
class VmRefusal : public Error {
 public:
  using Error::Error;
};

class Session {
 public:
  Session(const PushTarget& target, Channel& channel, const std::vector<SecretValue>& values)
      : m_target(target),
        m_channel(channel),
        m_values(values),
        m_deadline(std::chrono::seconds(target.timeout_seconds), std::chrono::seconds(target.timeout_seconds) * 10) {}

  PushReport run() {
    PushReport report;
    report.target = m_target.describe();
    send(sp::FrameType::hello, sp::encode_hello(), "the hello");
    sp::Welcome welcome = sp::decode_welcome(expect(sp::FrameType::welcome, "the hello").payload);
    if (welcome.version != sp::k_version)
      throw Error("the VM's receiver speaks protocol version " + std::to_string(welcome.version) + ", this tdx speaks " +
                  std::to_string(sp::k_version) + "; nothing was sent\n  hint: use the tdx the image was built with");
    compare(welcome);
    for (const auto& v : m_values) {
      std::string payload = sp::encode_secret(v.name, v.value);
      try {
        send(sp::FrameType::secret, payload, v.name);
      } catch (...) {
        sp::wipe(payload);
        throw;
      }
      sp::wipe(payload);
      auto [name, size] = sp::decode_accepted(expect(sp::FrameType::accepted, v.name).payload);
      if (name != v.name || size != v.value.size())
        throw Error("the VM acknowledged " + name + " (" + std::to_string(size) + " bytes) after " + v.name + " (" +
                    std::to_string(v.value.size()) + " bytes) was sent; the session was abandoned");
      report.secrets.push_back({v.name, v.value.size(), true, false});
    }
    m_commit_sent = true;
    send(sp::FrameType::commit, "", "the commit");
    sp::Report r = sp::decode_report(expect(sp::FrameType::report, "the commit").payload);
    for (auto& s : report.secrets) s.stored = std::find(r.stored.begin(), r.stored.end(), s.name) != r.stored.end();
    report.missing = r.missing;
    return report;
  }

 private:
  void send(sp::FrameType type, const std::string& payload, const std::string& what) {
    try {
      sp::write_frame(m_channel.write_fd(), type, payload, m_deadline);
    } catch (const sp::ProtocolError& e) {
      // The VM may have refused and closed while we were writing: its error frame says why.
      try {
        sp::Deadline brief(std::chrono::milliseconds(2000), std::chrono::milliseconds(2000));
        sp::Frame f = sp::read_frame(m_channel.read_fd(), brief);
        if (f.type == sp::FrameType::error) refused(f);
      } catch (const sp::ProtocolError&) {
      } catch (const sp::EndOfStream&) {
      }
      throw sp::ProtocolError(e.code(), std::string("sending ") + what + ": " + e.what());
    }
  }

  sp::Frame expect(sp::FrameType type, const std::string& after) {
    sp::Frame f;
    try {
      f = sp::read_frame(m_channel.read_fd(), m_deadline);
    } catch (const sp::EndOfStream&) {
      throw sp::ProtocolError(sp::ErrorCode::protocol, "the connection closed after " + after + " without an answer");
    }
    if (f.type == sp::FrameType::error) refused(f);
    if (f.type != type)
      throw sp::ProtocolError(sp::ErrorCode::protocol, "the VM answered " + after + " with an unexpected frame");
    return f;
  }

  [[noreturn]] void refused(const sp::Frame& f) {
    auto [code, reason] = sp::decode_error(f.payload);
    bool during_commit = code == sp::ErrorCode::store_failed && reason.find("already stored") != std::string::npos;
    throw VmRefusal("the VM refused the delivery (" + std::string(sp::error_code_name(code)) + "): " + reason +
                    (during_commit ? "" : "\n  nothing was stored; the VM keeps what it had"));
  }

  void compare(const sp::Welcome& w) {
    StringList not_on_vm, not_in_file, too_big;
    for (const auto& v : m_values) {
      auto it = std::find_if(w.declared.begin(), w.declared.end(), [&](const sp::Declared& d) { return d.name == v.name; });
      if (it == w.declared.end()) not_on_vm.push_back(v.name);
      else if (v.value.size() > it->max_bytes)
        too_big.push_back(v.name + " (" + std::to_string(v.value.size()) + " bytes, cap " + std::to_string(it->max_bytes) + ")");
    }
    for (const auto& d : w.declared)
      if (std::none_of(m_values.begin(), m_values.end(), [&](const SecretValue& v) { return v.name == d.name; }))
        not_in_file.push_back(d.name);
    std::string message;
    if (!not_on_vm.empty()) message += "\n  the VM does not declare: " + join(not_on_vm);
    if (!not_in_file.empty()) message += "\n  the VM also expects: " + join(not_in_file);
    if (!too_big.empty()) message += "\n  larger than the VM accepts: " + join(too_big);
    if (!message.empty())
      throw VmRefusal("the VM's image declares other secrets than this TDXfile; no value was sent:" + message +
                      "\n  hint: push with the TDXfile the VM's image was built from");
  }

 private:
  const PushTarget& m_target;
  Channel& m_channel;
  const std::vector<SecretValue>& m_values;
  sp::Deadline m_deadline;
  bool m_commit_sent = false;

 public:
  bool commit_sent() const { return m_commit_sent; }
};

}  // namespace

std::string PushTarget::transport() const {
  switch (kind) {
    case Kind::ssh: return "ssh";
    case Kind::vsock: return "vsock";
    case Kind::unix_socket: return "unix";
  }
  return "?";
}

std::string PushTarget::describe() const {
  switch (kind) {
    case Kind::ssh: return (user.empty() ? "" : user + "@") + host + ":" + std::to_string(port) + " over ssh";
    case Kind::vsock: return "vsock CID " + std::to_string(cid) + " port " + std::to_string(vsock_port);
    case Kind::unix_socket: return "Unix socket " + unix_path;
  }
  return "?";
}

StringList ssh_argv(const PushTarget& t) {
  StringList argv{::access("/usr/bin/ssh", X_OK) == 0 ? "/usr/bin/ssh" : "ssh", "-T"};
  // ssh keeps the first value of each option: the user's -o come before tdx's defaults.
  for (const auto& o : t.ssh_options) argv.insert(argv.end(), {"-o", o});
  argv.insert(argv.end(), {"-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o",
                           "ConnectTimeout=" + std::to_string(std::max(1, t.timeout_seconds)), "-o", "ForwardAgent=no",
                           "-o", "ForwardX11=no", "-o", "ClearAllForwardings=yes"});
  if (!t.known_hosts.empty())
    argv.insert(argv.end(), {"-o", "UserKnownHostsFile=" + t.known_hosts, "-o", "StrictHostKeyChecking=yes"});
  if (!t.identity.empty()) argv.insert(argv.end(), {"-i", t.identity, "-o", "IdentitiesOnly=yes"});
  argv.insert(argv.end(), {"-p", std::to_string(t.port)});
  if (!t.user.empty()) argv.insert(argv.end(), {"-l", t.user});
  argv.insert(argv.end(), {"--", t.host, k_remote_command});
  return argv;
}

PushReport push_secrets(const PushTarget& target, const std::vector<SecretValue>& values) {
  std::unique_ptr<Channel> channel = open_channel(target);
  Session session(target, *channel, values);
  try {
    return session.run();
  } catch (const VmRefusal& e) {
    throw Error(withhold_values(e.what(), values));
  } catch (const sp::ProtocolError& e) {
    std::string why = channel->explain_failure();
    if (why.empty()) why = "the delivery to " + target.describe() + " failed: " + e.what();
    throw Error(withhold_values(why, values) +
                (session.commit_sent() ? "\n  the connection ended during the commit: the VM may have stored some "
                                         "secrets; pushing again is safe"
                                       : "\n  nothing was stored; the VM keeps what it had"));
  }
}

}  // namespace tdx
