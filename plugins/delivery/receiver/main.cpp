// tdx-secret-receiver: the one program inside an image that accepts secrets after boot
// (docs/secret-delivery.md). It links nothing but glibc, reads the declared secrets from
// /etc/tdx/secrets.list and never prints or logs a value.
#include <grp.h>
#include <linux/vm_sockets.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <string>
#include <vector>

#include <tdx/secret_protocol.hpp>

#include "session.hpp"

namespace sp = tdx::secret_protocol;
using namespace tdx::receiver;

namespace {

constexpr const char* k_usage = R"(usage: tdx-secret-receiver [--config FILE] [--root DIR] COMMAND [ARGS]

Accepts an image's secrets after boot and writes each one to its declared destination
with its owner, group and mode (temporary file, fsync, rename: never a partial file).
The declared secrets come from FILE (default /etc/tdx/secrets.list, written at build time);
names not declared there are refused, and destinations never come from the client.

Commands:
  serve --stdio                  one session on stdin/stdout (an ssh forced command)
  serve --unix PATH [--socket-group GROUP] [--socket-mode 0660]
                                 sessions on a Unix socket, one at a time
  serve --vsock PORT             sessions on AF_VSOCK (any CID), one at a time
        serve also takes --timeout SECONDS (a silent client is dropped, default 30)
        and --session-timeout SECONDS (no session lasts longer, default 300)
  relay --unix PATH              copy stdin/stdout to and from a receiver's Unix socket
                                 (the forced command of the unprivileged ssh account)
  put NAME                       store the value read on stdin as secret NAME
                                 (for fetch scripts: curl ... | tdx-secret-receiver put TLS_KEY)
  check                          exit 0 when every declared secret is in place with its owner,
                                 group and mode; else list what is missing or wrong and exit 1
  wait [--interval SECONDS]      block until check passes (what secrets-ready.target waits on)

Options:
  --config FILE   the declared secrets (default /etc/tdx/secrets.list)
  --root DIR      read every destination and /etc/passwd, /etc/group under DIR (default /)

The protocol is documented in docs/secret-delivery.md of tdx; the host side is
`tdx secrets push`.
)";

volatile sig_atomic_t g_stop = 0;
bool stopping() { return g_stop != 0; }
void on_signal(int) { g_stop = 1; }

void log(const std::string& message) { std::cerr << "tdx-secret-receiver: " << message << std::endl; }

struct UsageError {
  std::string message;
};

struct Args {
  std::string config = "/etc/tdx/secrets.list";
  std::string root = "/";
  std::string command;
  std::vector<std::string> rest;
};

// --config/--root anywhere; everything else is the command and its arguments.
Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const std::string& flag) {
      if (i + 1 >= argc) throw UsageError{flag + " needs a value"};
      return std::string(argv[++i]);
    };
    if (arg == "--config") a.config = value(arg);
    else if (arg.rfind("--config=", 0) == 0) a.config = arg.substr(9);
    else if (arg == "--root") a.root = value(arg);
    else if (arg.rfind("--root=", 0) == 0) a.root = arg.substr(7);
    else if (a.command.empty() && (arg == "-h" || arg == "--help" || arg == "help")) a.command = "help";
    else if (a.command.empty()) a.command = arg;
    else a.rest.push_back(arg);
  }
  return a;
}

// The command's own --flag VALUE pairs and bare flags.
struct Flags {
  std::vector<std::pair<std::string, std::string>> values;
  std::vector<std::string> positional;
  const std::string* get(const std::string& flag) const {
    for (const auto& [k, v] : values)
      if (k == flag) return &v;
    return nullptr;
  }
  bool has(const std::string& flag) const { return get(flag) != nullptr; }
};

Flags parse_flags(const std::vector<std::string>& rest, const std::vector<std::string>& with_value,
                  const std::vector<std::string>& bare, std::size_t max_positional) {
  Flags f;
  for (std::size_t i = 0; i < rest.size(); ++i) {
    const std::string& arg = rest[i];
    bool known = false;
    for (const auto& w : with_value) {
      if (arg == w) {
        if (i + 1 >= rest.size()) throw UsageError{w + " needs a value"};
        f.values.emplace_back(w, rest[++i]);
        known = true;
      } else if (arg.rfind(w + "=", 0) == 0) {
        f.values.emplace_back(w, arg.substr(w.size() + 1));
        known = true;
      }
    }
    for (const auto& b : bare)
      if (arg == b) {
        f.values.emplace_back(b, "");
        known = true;
      }
    if (known) continue;
    if (arg.rfind("--", 0) == 0) throw UsageError{"unknown option " + arg};
    f.positional.push_back(arg);
  }
  if (f.positional.size() > max_positional) throw UsageError{"unexpected argument '" + f.positional.back() + "'"};
  return f;
}

unsigned long number(const std::string& flag, const std::string& text, unsigned long min, unsigned long max) {
  char* end = nullptr;
  errno = 0;
  unsigned long v = std::strtoul(text.c_str(), &end, 10);
  if (text.empty() || *end || errno || v < min || v > max)
    throw UsageError{flag + " '" + text + "' is not a number from " + std::to_string(min) + " to " + std::to_string(max)};
  return v;
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;  // no SA_RESTART: a blocked accept or poll returns EINTR
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

SessionOptions session_options(const Args& a, const Flags& f) {
  SessionOptions o;
  o.config = a.config;
  if (auto t = f.get("--timeout")) o.idle = std::chrono::seconds(number("--timeout", *t, 1, 86400));
  if (auto t = f.get("--session-timeout"))
    o.total = std::chrono::seconds(number("--session-timeout", *t, 1, 86400));
  o.interrupted = stopping;
  return o;
}

void report_session(const std::string& peer, const SessionOutcome& s) {
  if (s.committed) {
    std::string missing;
    for (const auto& n : s.missing) missing += (missing.empty() ? "" : ", ") + n;
    log(peer + ": session committed, " + std::to_string(s.stored.size()) + " secret(s) stored" +
        (missing.empty() ? "; every declared secret is in place" : "; still missing: " + missing));
  } else {
    log(peer + ": session ended without storing anything new: " + s.error);
  }
}

// Accepts connections one at a time until SIGTERM/SIGINT.
int accept_loop(int listener, const Root& root, const SessionOptions& options, bool vsock) {
  while (!stopping()) {
    int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      log(std::string("accept: ") + std::strerror(errno));
      return 1;
    }
    std::string peer;
    if (vsock) {
      sockaddr_vm addr{};
      socklen_t len = sizeof addr;
      ::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len);
      peer = "vsock cid " + std::to_string(addr.svm_cid);
    } else {
      ucred cred{};
      socklen_t len = sizeof cred;
      ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len);
      peer = "uid " + std::to_string(cred.uid) + " pid " + std::to_string(cred.pid);
    }
    SessionOutcome s = serve_session(fd, fd, root, options, [&](const std::string& m) { log(peer + ": " + m); });
    ::close(fd);
    report_session(peer, s);
  }
  log("stopping");
  return 0;
}

int serve_unix(const Args& a, const Flags& f, const Root& root) {
  const std::string path = *f.get("--unix");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path[0] != '/' || path.size() >= sizeof addr.sun_path)
    throw UsageError{"--unix '" + path + "' must be an absolute path shorter than " +
                     std::to_string(sizeof addr.sun_path) + " bytes"};
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  unsigned mode = 0660;
  if (auto m = f.get("--socket-mode")) {
    char* end = nullptr;
    mode = static_cast<unsigned>(std::strtoul(m->c_str(), &end, 8));
    if (m->empty() || *end || mode > 0777) throw UsageError{"--socket-mode '" + *m + "' is not an octal mode like 0660"};
  }
  gid_t gid = static_cast<gid_t>(-1);
  if (auto g = f.get("--socket-group")) {
    group* gr = ::getgrnam(g->c_str());
    if (!gr) throw ReceiverError("--socket-group '" + *g + "' is not a group on this system");
    gid = gr->gr_gid;
  }
  // The socket's folder (e.g. /run/tdx-secrets) may not exist yet after boot.
  std::string dir = path.substr(0, path.rfind('/'));
  for (std::size_t at = dir.find('/', 1); !dir.empty(); at = dir.find('/', at + 1)) {
    ::mkdir(dir.substr(0, at).c_str(), 0755);
    if (at == std::string::npos) break;
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw ReceiverError(path + " exists and is not a socket; remove it or choose another --unix path");
    ::unlink(path.c_str());  // a stale socket from an earlier run
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ReceiverError(std::string("socket(AF_UNIX): ") + std::strerror(errno));
  mode_t old = ::umask(0177);  // created 0600, then opened up to exactly --socket-mode
  int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  ::umask(old);
  if (rc != 0) throw ReceiverError("cannot bind " + path + ": " + std::strerror(err));
  if (gid != static_cast<gid_t>(-1) && ::chown(path.c_str(), static_cast<uid_t>(-1), gid) != 0)
    throw ReceiverError("cannot give " + path + " to group " + *f.get("--socket-group") + ": " + std::strerror(errno));
  if (::chmod(path.c_str(), mode) != 0) throw ReceiverError("cannot chmod " + path + ": " + std::strerror(errno));
  if (::listen(fd, 8) != 0) throw ReceiverError("listen on " + path + ": " + std::strerror(errno));
  log("listening on " + path);
  int code = accept_loop(fd, root, session_options(a, f), false);
  ::close(fd);
  ::unlink(path.c_str());
  return code;
}

int serve_vsock(const Args& a, const Flags& f, const Root& root) {
  unsigned long port = number("--vsock", *f.get("--vsock"), 1, 0xfffffffeUL);
  int fd = ::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    throw ReceiverError(std::string("socket(AF_VSOCK): ") + std::strerror(errno) +
                        " (the kernel needs vsock support: the VM needs a vhost-vsock device)");
  sockaddr_vm addr{};
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = VMADDR_CID_ANY;
  addr.svm_port = static_cast<unsigned>(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw ReceiverError("cannot bind vsock port " + std::to_string(port) + ": " + std::strerror(errno));
  if (::listen(fd, 8) != 0) throw ReceiverError(std::string("listen on vsock: ") + std::strerror(errno));
  log("listening on vsock port " + std::to_string(port));
  int code = accept_loop(fd, root, session_options(a, f), true);
  ::close(fd);
  return code;
}

int serve(const Args& a, const Root& root) {
  Flags f = parse_flags(a.rest, {"--unix", "--vsock", "--socket-group", "--socket-mode", "--timeout", "--session-timeout"},
                        {"--stdio"}, 0);
  int transports = f.has("--stdio") + f.has("--unix") + f.has("--vsock");
  if (transports != 1) throw UsageError{"serve needs exactly one of --stdio, --unix PATH, --vsock PORT"};
  if ((f.has("--socket-group") || f.has("--socket-mode")) && !f.has("--unix"))
    throw UsageError{"--socket-group and --socket-mode go with --unix"};
  load_secrets_list(a.config);  // a malformed list stops the service at once, with the line
  install_signal_handlers();
  if (f.has("--unix")) return serve_unix(a, f, root);
  if (f.has("--vsock")) return serve_vsock(a, f, root);
  SessionOutcome s = serve_session(0, 1, root, session_options(a, f), [](const std::string& m) { log(m); });
  report_session("stdio", s);
  return s.committed ? 0 : 1;
}

// Copies stdin to the socket and the socket to stdout until the receiver closes it.
int relay(const Args& a) {
  Flags f = parse_flags(a.rest, {"--unix"}, {}, 0);
  if (!f.has("--unix")) throw UsageError{"relay needs --unix PATH (the receiver service's socket)"};
  const std::string path = *f.get("--unix");
  signal(SIGPIPE, SIG_IGN);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw UsageError{"--unix path is too long"};
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0 || ::connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::string reason = "the receiver service is not reachable at " + path + ": " + std::strerror(errno) +
                         " (is tdx-secret-receiver.service running? journalctl -u tdx-secret-receiver)";
    log(reason);
    try {
      sp::Deadline brief(std::chrono::milliseconds(2000), std::chrono::milliseconds(2000));
      sp::write_frame(1, sp::FrameType::error, sp::encode_error(sp::ErrorCode::unavailable, reason), brief);
    } catch (const sp::ProtocolError&) {
    }
    return 1;
  }
  pollfd fds[2] = {{0, POLLIN, 0}, {sock, POLLIN, 0}};
  char buf[65536];
  auto write_all = [](int fd, const char* p, std::size_t n) {
    while (n > 0) {
      ssize_t w = ::write(fd, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      p += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  };
  for (;;) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::read(0, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::shutdown(sock, SHUT_WR);
        fds[0].fd = -1;  // poll ignores it from now on
      } else if (!write_all(sock, buf, static_cast<std::size_t>(n))) {
        break;
      }
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::read(sock, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || !write_all(1, buf, static_cast<std::size_t>(n))) break;
    }
  }
  std::memset(buf, 0, sizeof buf);
  ::close(sock);
  return 0;
}

int put(const Args& a, const Root& root) {
  Flags f = parse_flags(a.rest, {}, {}, 1);
  if (f.positional.empty()) throw UsageError{"put needs the secret's NAME (its value is read on stdin)"};
  const std::string& name = f.positional[0];
  if (!sp::is_valid_name(name)) throw ReceiverError("'" + name + "' is not a secret name ([A-Za-z_][A-Za-z0-9_]*)");
  auto declared = load_secrets_list(a.config);
  const DeclaredSecret* secret = find_secret(declared, name);
  if (!secret) {
    std::string names;
    for (const auto& d : declared) names += (names.empty() ? "" : ", ") + d.name;
    throw ReceiverError(name + " is not declared in " + a.config + " (declared: " + (names.empty() ? "none" : names) + ")");
  }
  std::string value;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(0, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw ReceiverError(std::string("reading the value on stdin: ") + std::strerror(errno));
    if (n == 0) break;
    value.append(buf, static_cast<std::size_t>(n));
    if (value.size() > secret->max_bytes) {
      std::memset(buf, 0, sizeof buf);
      sp::wipe(value);
      throw ReceiverError(name + ": the value on stdin is larger than its cap of " + std::to_string(secret->max_bytes) +
                          " bytes; nothing was written");
    }
  }
  std::memset(buf, 0, sizeof buf);
  try {
    store_secret(root, *secret, value);
  } catch (...) {
    sp::wipe(value);
    throw;
  }
  log("stored " + name + " -> " + root.display(secret->dest) + " (" + std::to_string(value.size()) + " bytes)");
  sp::wipe(value);
  return 0;
}

// Prints what is not in place; true when everything is.
bool describe(const std::vector<SecretStatus>& status, bool to_log) {
  std::string missing;
  std::vector<std::string> wrong;
  for (const auto& s : status) {
    if (s.in_place) continue;
    if (s.problem == "missing") missing += (missing.empty() ? "" : ", ") + s.name;
    else wrong.push_back(s.name + ": " + s.problem);
  }
  auto say = [to_log](const std::string& line) {
    if (to_log) log(line);
    else std::cerr << line << "\n";
  };
  if (!missing.empty()) say("missing: " + missing);
  for (const auto& w : wrong) say(w);
  return missing.empty() && wrong.empty();
}

int check(const Args& a, const Root& root) {
  parse_flags(a.rest, {}, {}, 0);
  auto declared = load_secrets_list(a.config);
  auto status = inspect(root, declared);
  if (!describe(status, false)) return 1;
  std::cerr << "all " << declared.size() << " declared secret(s) are in place\n";
  return 0;
}

int wait_for_secrets(const Args& a, const Root& root) {
  Flags f = parse_flags(a.rest, {"--interval"}, {}, 0);
  unsigned long interval_ms = 1000;
  if (auto i = f.get("--interval")) {
    char* end = nullptr;
    double s = std::strtod(i->c_str(), &end);
    if (i->empty() || *end || !(s >= 0.05 && s <= 3600)) throw UsageError{"--interval '" + *i + "' is not 0.05 to 3600 seconds"};
    interval_ms = static_cast<unsigned long>(s * 1000);
  }
  std::vector<std::string> last;
  bool first = true;
  for (;;) {
    auto declared = load_secrets_list(a.config);
    auto status = inspect(root, declared);
    auto missing = not_in_place(status);
    if (missing.empty()) {
      log("all " + std::to_string(declared.size()) + " declared secret(s) are in place");
      return 0;
    }
    if (first || missing != last) {
      log("waiting for " + std::to_string(missing.size()) + " of " + std::to_string(declared.size()) + " secret(s)");
      describe(status, true);
    }
    first = false;
    last = missing;
    timespec ts{static_cast<time_t>(interval_ms / 1000), static_cast<long>((interval_ms % 1000) * 1000000)};
    while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Args a = parse_args(argc, argv);
    if (a.command.empty() || a.command == "help") {
      std::cout << k_usage;
      return a.command.empty() ? 2 : 0;
    }
    if (a.command == "relay") return relay(a);
    ::umask(077);
    Root root(a.root);
    if (a.command == "serve") return serve(a, root);
    if (a.command == "put") return put(a, root);
    if (a.command == "check") return check(a, root);
    if (a.command == "wait") return wait_for_secrets(a, root);
    throw UsageError{"unknown command '" + a.command + "' (serve, relay, put, check, wait)"};
  } catch (const UsageError& e) {
    std::cerr << "tdx-secret-receiver: usage error: " << e.message << "\n(see tdx-secret-receiver --help)\n";
    return 2;
  } catch (const ReceiverError& e) {
    log(std::string("error: ") + e.what());
    return 1;
  } catch (const sp::ProtocolError& e) {
    log(std::string("error: ") + e.what());
    return 1;
  } catch (const std::exception& e) {
    log(std::string("internal error: ") + e.what());
    return 1;
  }
}
