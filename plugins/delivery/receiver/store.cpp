#include "store.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tdx::receiver {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

struct Fd {
  int fd = -1;
  explicit Fd(int f = -1) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
};

std::string read_under(int root_fd, const char* rel, const std::string& shown) {
  Fd fd(::openat(root_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.fd < 0) throw ReceiverError("cannot read " + shown + ": " + errno_text(errno));
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw ReceiverError("cannot read " + shown + ": " + errno_text(errno));
    if (n == 0) return text;
    text.append(buf, static_cast<std::size_t>(n));
  }
}

// Fields of the line in a colon-separated account file whose first field is `name`.
bool find_entry(const std::string& text, const std::string& name, std::vector<std::string>& fields) {
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.compare(0, name.size() + 1, name + ":") != 0) continue;
    fields.clear();
    std::size_t s = 0;
    for (;;) {
      std::size_t c = line.find(':', s);
      fields.push_back(line.substr(s, c == std::string::npos ? std::string::npos : c - s));
      if (c == std::string::npos) break;
      s = c + 1;
    }
    return true;
  }
  return false;
}

bool parse_id(const std::string& s, unsigned& out) {
  if (s.empty() || s.size() > 10) return false;
  unsigned long long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > 0xfffffffeULL) return false;
  out = static_cast<unsigned>(v);
  return true;
}

std::vector<std::string> components(const std::string& dest) {
  std::vector<std::string> out;
  std::size_t start = 1;
  while (start <= dest.size()) {
    std::size_t end = dest.find('/', start);
    if (end == std::string::npos) end = dest.size();
    out.push_back(dest.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string random_suffix() {
  unsigned char bytes[6];
  std::size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw ReceiverError("getrandom: " + errno_text(errno));
    got += static_cast<std::size_t>(n);
  }
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out.push_back(hex[b >> 4]);
    out.push_back(hex[b & 15]);
  }
  return out;
}

}  // namespace

Root::Root(const std::string& path) : m_path(path.empty() ? "/" : path) {
  while (m_path.size() > 1 && m_path.back() == '/') m_path.pop_back();
  m_fd = ::open(m_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (m_fd < 0) throw ReceiverError("cannot open the root folder " + m_path + ": " + errno_text(errno));
}

Root::~Root() {
  if (m_fd >= 0) ::close(m_fd);
}

std::string Root::display(const std::string& dest) const { return m_path == "/" ? dest : m_path + dest; }

Ownership Root::ownership(const DeclaredSecret& secret) const {
  Ownership o;
  o.owner = secret.owner;
  std::vector<std::string> fields;
  unsigned uid = 0, gid = 0;
  std::string passwd = read_under(m_fd, "etc/passwd", display("/etc/passwd"));
  if (find_entry(passwd, secret.owner, fields)) {
    if (fields.size() < 4 || !parse_id(fields[2], uid) || !parse_id(fields[3], gid))
      throw ReceiverError(display("/etc/passwd") + ": the entry of '" + secret.owner + "' is malformed");
  } else if (secret.owner != "root") {
    throw ReceiverError(secret.name + ": owner '" + secret.owner + "' is not a user in " + display("/etc/passwd"));
  }
  o.uid = uid;
  o.gid = gid;
  o.group = secret.group;
  if (!secret.group.empty()) {
    std::string group = read_under(m_fd, "etc/group", display("/etc/group"));
    if (find_entry(group, secret.group, fields)) {
      if (fields.size() < 3 || !parse_id(fields[2], gid))
        throw ReceiverError(display("/etc/group") + ": the entry of '" + secret.group + "' is malformed");
    } else if (secret.group != "root") {
      throw ReceiverError(secret.name + ": group '" + secret.group + "' is not a group in " + display("/etc/group"));
    } else {
      gid = 0;
    }
    o.gid = gid;
  }
  return o;
}

void Root::remove_created(const std::vector<std::string>& created) const {
  for (auto it = created.rbegin(); it != created.rend(); ++it) ::unlinkat(m_fd, it->c_str(), AT_REMOVEDIR);
}

int Root::open_parent(const DeclaredSecret& secret, bool create, std::vector<std::string>* created) const {
  auto parts = components(secret.dest);
  parts.pop_back();  // the file itself
  Fd cur(::dup(m_fd));
  if (cur.fd < 0) throw ReceiverError("dup: " + errno_text(errno));
  std::string walked;
  for (const auto& part : parts) {
    walked += "/" + part;
    int next = ::openat(cur.fd, part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && create) {
      if (::mkdirat(cur.fd, part.c_str(), 0755) == 0) {
        if (created) created->push_back(walked.substr(1));
      } else if (errno != EEXIST) {
        throw ReceiverError(secret.name + ": cannot create " + display(walked) + ": " + errno_text(errno));
      }
      next = ::openat(cur.fd, part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      // The umask may have narrowed it; folders made for secrets are 0755 root as declared.
      if (next >= 0 && (::fchmod(next, 0755) != 0 || ::fchown(next, 0, 0) != 0)) {
        int err = errno;
        ::close(next);
        throw ReceiverError(secret.name + ": cannot set 0755 root on " + display(walked) + ": " + errno_text(err));
      }
    }
    if (next < 0) {
      int err = errno;
      if (err == ENOENT && !create) return -1;
      struct stat st {};
      bool have = ::fstatat(cur.fd, part.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
      if (have && S_ISLNK(st.st_mode)) {
        char target[4096];
        ssize_t n = ::readlinkat(cur.fd, part.c_str(), target, sizeof target - 1);
        std::string to = n > 0 ? std::string(target, static_cast<std::size_t>(n)) : "?";
        throw ReceiverError(secret.name + ": " + display(walked) + " is a symlink (to " + to +
                            "); the receiver writes " + secret.dest +
                            " only through real folders, so a link cannot send it elsewhere (declare the real path)");
      }
      if (err == ENOTDIR || (have && !S_ISDIR(st.st_mode)))
        throw ReceiverError(secret.name + ": " + display(walked) + " is not a folder");
      throw ReceiverError(secret.name + ": cannot open " + display(walked) + ": " + errno_text(err));
    }
    ::close(cur.fd);
    cur.fd = next;
  }
  return cur.release();
}

StagedSecret::StagedSecret(const Root& root, const DeclaredSecret& secret, std::string_view value)
    : m_root(root), m_name(secret.name), m_shown(root.display(secret.dest)) {
  if (value.size() > secret.max_bytes)
    throw ReceiverError(secret.name + ": the value has " + std::to_string(value.size()) +
                        " bytes, more than its cap of " + std::to_string(secret.max_bytes) +
                        " (raise it with the delivery option max_size)");
  Ownership own = root.ownership(secret);
  try {
    m_dir = root.open_parent(secret, true, &m_created);
  } catch (const ReceiverError&) {
    root.remove_created(m_created);
    throw;
  }
  m_base = secret.dest.substr(secret.dest.rfind('/') + 1);
  struct stat st {};
  if (::fstatat(m_dir, m_base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
    discard();
    throw ReceiverError(secret.name + ": " + m_shown + " is a folder; the secret cannot replace it");
  }
  m_tmp = "." + m_base.substr(0, 200) + ".tdx-new-" + random_suffix();
  Fd fd(::openat(m_dir, m_tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  auto fail = [&](const std::string& what, int err) {
    discard();
    throw ReceiverError(secret.name + ": cannot " + what + " " + m_shown + ": " + errno_text(err));
  };
  if (fd.fd < 0) {
    int err = errno;
    m_tmp.clear();
    discard();
    throw ReceiverError(secret.name + ": cannot create a temporary file beside " + m_shown + ": " + errno_text(err));
  }
  std::size_t done = 0;
  while (done < value.size()) {
    ssize_t n = ::write(fd.fd, value.data() + done, value.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("write", errno);
    done += static_cast<std::size_t>(n);
  }
  if (::fchown(fd.fd, own.uid, own.gid) != 0) fail("set the owner of", errno);
  if (::fchmod(fd.fd, secret.mode) != 0) fail("set the mode of", errno);
  if (::fsync(fd.fd) != 0) fail("sync", errno);
  if (::close(fd.release()) != 0) fail("write", errno);
}

void StagedSecret::discard() {
  if (m_dir < 0) return;
  if (!m_committed && !m_tmp.empty()) ::unlinkat(m_dir, m_tmp.c_str(), 0);
  ::close(m_dir);
  m_dir = -1;
  if (!m_committed) m_root.remove_created(m_created);
}

StagedSecret::~StagedSecret() { discard(); }

void StagedSecret::commit() {
  if (m_committed) return;
  if (::renameat(m_dir, m_tmp.c_str(), m_dir, m_base.c_str()) != 0)
    throw ReceiverError(m_name + ": cannot rename into " + m_shown + ": " + errno_text(errno));
  m_committed = true;
  if (::fsync(m_dir) != 0)
    throw ReceiverError(m_name + ": cannot sync the folder of " + m_shown + ": " + errno_text(errno));
}

void store_secret(const Root& root, const DeclaredSecret& secret, std::string_view value) {
  StagedSecret staged(root, secret, value);
  staged.commit();
}

std::vector<SecretStatus> inspect(const Root& root, const std::vector<DeclaredSecret>& secrets) {
  std::vector<SecretStatus> out;
  for (const auto& s : secrets) {
    SecretStatus st;
    st.name = s.name;
    try {
      Fd dir(root.open_parent(s, false));
      struct stat info {};
      std::string base = s.dest.substr(s.dest.rfind('/') + 1);
      if (dir.fd < 0 || ::fstatat(dir.fd, base.c_str(), &info, AT_SYMLINK_NOFOLLOW) != 0) {
        st.problem = "missing";
      } else if (!S_ISREG(info.st_mode)) {
        st.exists = true;
        st.problem = root.display(s.dest) + " is not a regular file";
      } else {
        st.exists = true;
        Ownership want = root.ownership(s);
        std::string wrong;
        if (info.st_uid != want.uid || info.st_gid != want.gid)
          wrong = "owner " + std::to_string(info.st_uid) + ":" + std::to_string(info.st_gid) + ", expected " +
                  want.owner + (want.group.empty() ? "" : ":" + want.group) + " (" + std::to_string(want.uid) + ":" +
                  std::to_string(want.gid) + ")";
        if ((info.st_mode & 07777) != s.mode)
          wrong += (wrong.empty() ? "" : "; ") + std::string("mode ") + mode_string(info.st_mode & 07777) +
                   ", expected " + mode_string(s.mode);
        if (wrong.empty()) st.in_place = true;
        else st.problem = root.display(s.dest) + ": " + wrong;
      }
    } catch (const ReceiverError& e) {
      st.problem = e.what();
    }
    out.push_back(std::move(st));
  }
  return out;
}

std::vector<std::string> not_in_place(const std::vector<SecretStatus>& status) {
  std::vector<std::string> out;
  for (const auto& s : status)
    if (!s.in_place) out.push_back(s.name);
  return out;
}

}  // namespace tdx::receiver
