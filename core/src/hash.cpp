#include <tdx/hash.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <openssl/evp.h>

#include <algorithm>
#include <fstream>
#include <stdexcept>
#include <vector>

#include <tdx/digest_cache.hpp>
#include <tdx/error.hpp>

namespace fs = std::filesystem;

namespace tdx {

namespace {
// Fetched once: EVP_MD_fetch does a provider lookup that is too slow per hash.
const EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}
const EVP_MD* sha512_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA512", nullptr);
  return md;
}

std::string hex_of(const std::uint8_t* data, std::size_t size) {
  static const char* k_digits = "0123456789abcdef";
  std::string s;
  s.reserve(2 * size);
  for (std::size_t i = 0; i < size; ++i) {
    s += k_digits[data[i] >> 4];
    s += k_digits[data[i] & 15];
  }
  return s;
}
}  // namespace

// One EVP context; its algorithm follows from the digest's size.
template <typename DigestT>
struct Sha2<DigestT>::Impl {
  static constexpr bool k_sha512 = sizeof(DigestT) == 64;
  const EVP_MD* md = k_sha512 ? sha512_md() : sha256_md();
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  Impl() {
    if (!ctx || !md || EVP_DigestInit_ex2(ctx, md, nullptr) != 1)
      throw std::runtime_error(std::string("openssl: cannot initialise ") + (k_sha512 ? "SHA-512" : "SHA-256"));
  }
  ~Impl() { EVP_MD_CTX_free(ctx); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
};

template <typename DigestT>
Sha2<DigestT>::Sha2() : m_impl(std::make_unique<Impl>()) {}
template <typename DigestT>
Sha2<DigestT>::~Sha2() = default;
template <typename DigestT>
Sha2<DigestT>::Sha2(Sha2&&) noexcept = default;
template <typename DigestT>
Sha2<DigestT>& Sha2<DigestT>::operator=(Sha2&&) noexcept = default;

template <typename DigestT>
void Sha2<DigestT>::update(const void* data, std::size_t size) {
  EVP_DigestUpdate(m_impl->ctx, data, size);
}

template <typename DigestT>
DigestT Sha2<DigestT>::finish() {
  DigestT d{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(m_impl->ctx, d.data(), &len);
  EVP_DigestInit_ex2(m_impl->ctx, m_impl->md, nullptr);
  return d;
}

template class Sha2<Digest>;
template class Sha2<Digest512>;

std::string to_hex(const Digest& d) { return hex_of(d.data(), d.size()); }
std::string to_hex(const Digest512& d) { return hex_of(d.data(), d.size()); }

std::string to_base64(const Digest& d) {
  std::string out(4 * ((d.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), d.data(), static_cast<int>(d.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

Digest sha256(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finish();
}

Digest sha256_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path.string());
  Sha256 h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.update(buf.data(), static_cast<std::size_t>(in.gcount()));
  }
  return h.finish();
}

KeyHasher::KeyHasher(std::string_view schema) { field("schema", schema); }

KeyHasher& KeyHasher::field(std::string_view tag, std::string_view value) {
  std::string header = std::string(tag) + '\0' + std::to_string(value.size()) + '\0';
  m_sha.update(header);
  m_sha.update(value);
  return *this;
}

KeyHasher& KeyHasher::field(std::string_view tag, const Digest& value) {
  return field(tag, std::string_view(reinterpret_cast<const char*>(value.data()), value.size()));
}

namespace {

std::string kind_of(fs::file_type t) {
  switch (t) {
    case fs::file_type::fifo: return "a fifo";
    case fs::file_type::socket: return "a socket";
    case fs::file_type::block: return "a block device";
    case fs::file_type::character: return "a character device";
    default: return "not a regular file";
  }
}

bool generated_by_python_tooling(const std::string& name, bool is_dir, int depth) {
  if (is_dir && name == "__pycache__") return true;
  if (!is_dir && name.size() > 4 && name.compare(name.size() - 4, 4, ".pyc") == 0) return true;
  if (is_dir && depth == 0) {
    if (name == "build" || name == "dist") return true;
    if (name.size() > 9 && name.compare(name.size() - 9, 9, ".egg-info") == 0) return true;
  }
  return false;
}

}  // namespace

namespace {

using FolderStats = std::vector<std::pair<std::string, struct stat>>;

// Lists a tree with readdir's d_type, so the walk itself costs no stat() per entry. With
// `folders`, each folder's own stat is taken before it is read (so a change while it is read
// shows as a newer mtime next time).
void walk(const std::string& dir, const std::string& rel, int depth, TreeSelection selection,
          std::vector<std::pair<std::string, std::string>>& out, FolderStats* folders) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw Error("tree hash: cannot list " + dir + ": " + std::strerror(errno));
  std::unique_ptr<DIR, int (*)(DIR*)> closer(d, ::closedir);
  if (folders) {
    folders->emplace_back();
    folders->back().first = rel;
    if (::fstat(::dirfd(d), &folders->back().second) != 0)
      throw Error("tree hash: cannot stat " + dir + ": " + std::strerror(errno));
  }
  // A folder sorts as "name/" so that visiting each folder in this order lists the whole
  // tree in Hash1's bytewise order of full paths ("a-b" < "a/c"), with no global sort.
  std::vector<std::pair<std::string, bool>> children;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    unsigned char type = e->d_type;
    if (type == DT_UNKNOWN) {
      struct stat st;
      std::string path = dir + "/" + name;
      if (::lstat(path.c_str(), &st) != 0) throw Error("tree hash: cannot stat " + path + ": " + std::strerror(errno));
      type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : S_ISLNK(st.st_mode) ? DT_LNK : DT_FIFO;
    }
    const bool is_dir = type == DT_DIR;
    if (name == ".git" || (selection == TreeSelection::module_source && generated_by_python_tooling(name, is_dir, depth)))
      continue;
    if (type != DT_DIR && type != DT_REG && type != DT_LNK) {
      fs::file_type t = type == DT_SOCK ? fs::file_type::socket : type == DT_BLK ? fs::file_type::block
                      : type == DT_CHR ? fs::file_type::character : fs::file_type::fifo;
      throw Error("tree hash: " + dir + "/" + name + " is " + kind_of(t) +
                  "; only regular files, symlinks and folders can be hashed");
    }
    children.emplace_back(is_dir ? name + "/" : std::move(name), is_dir);
  }
  closer.reset();
  std::sort(children.begin(), children.end());
  for (auto& [key, is_dir] : children) {
    if (is_dir) {
      key.pop_back();
      walk(dir + "/" + key, rel.empty() ? key : rel + "/" + key, depth + 1, selection, out, folders);
    } else {
      out.emplace_back(rel.empty() ? std::move(key) : rel + "/" + key, std::string());  // path = name, from the tree's fd
    }
  }
}

}  // namespace

namespace {

// Runs job(i) for i in [0, n) on all cores (a thread per 64 items at most). The first
// exception stops the rest and is rethrown; job returns false to stop early.
template <typename Job>
void for_each_index(std::size_t n, Job job) {
  std::atomic<std::size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto worker = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < n;) {
      try {
        if (!job(i)) next = n;
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (!failure) failure = std::current_exception();
        next = n;
      }
    }
  };
  unsigned threads = static_cast<unsigned>(
      std::min<std::size_t>(std::max(1u, std::thread::hardware_concurrency()), std::max<std::size_t>(1, n / 64)));
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

// The remembered tree hash when every remembered folder and file still has its stat: then no
// entry was added, removed or renamed and no file was written. One stat each, no reads.
std::optional<Digest> recheck(int rootfd, DigestCache& cache) {
  if (!cache.tree()) return std::nullopt;
  const auto& folders = cache.folders();
  const auto& records = cache.records();
  std::atomic<bool> changed{false};
  for_each_index(folders.size() + records.size(), [&](std::size_t i) {
    struct stat st {};
    bool same;
    if (i < folders.size()) {
      const auto& f = folders[i];
      int rc = f.name.empty() ? ::fstat(rootfd, &st) : ::fstatat(rootfd, f.name.c_str(), &st, AT_SYMLINK_NOFOLLOW);
      same = rc == 0 && S_ISDIR(st.st_mode) && DigestCache::unchanged(f, st);
    } else {
      const auto& r = records[i - folders.size()];
      same = ::fstatat(rootfd, r.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
             DigestCache::unchanged(r, st);
    }
    if (!same) changed = true;
    return same;
  });
  if (changed) return std::nullopt;
  cache.count(records.size(), 0);
  return cache.tree();
}

// Hash1 over (name, path) pairs, paths relative to `dirfd` (or absolute; empty: the name). Every file is
// stat'ed, checked against the digest cache and, when not remembered, read, on all cores. `complete`
// says whether the cache now remembers every regular file of the listing (none was too recent).
Digest hash_listing(int dirfd, std::vector<std::pair<std::string, std::string>> files, DigestCache* cache,
                    bool* complete = nullptr) {
  // Bytewise order, as Go's sort.Strings (std::string compares as unsigned char); a walk lists in it already.
  if (!std::is_sorted(files.begin(), files.end())) std::sort(files.begin(), files.end());
  for (std::size_t i = 1; i < files.size(); ++i)
    if (files[i].first == files[i - 1].first) throw Error("tree hash: '" + files[i].first + "' is listed twice");
  for (const auto& f : files)
    if (f.first.find('\n') != std::string::npos)
      throw Error("tree hash: the file name '" + f.first + "' holds a newline, which Hash1 cannot list");

  std::vector<const DigestCache::Record*> remembered(files.size(), nullptr);
  if (cache) {
    std::vector<const std::string*> names;
    names.reserve(files.size());
    for (const auto& f : files) names.push_back(&f.first);
    remembered = cache->match(names);
  }
  std::vector<Digest> digests(files.size());
  std::vector<struct stat> stats(files.size());  // NOLINT: one per file, filled by the workers
  std::vector<char> was_read(files.size(), 0);
  // One read buffer and hasher per thread.
  thread_local std::vector<char> buffer;
  for_each_index(files.size(), [&](std::size_t i) {
    const std::string& path = files[i].second.empty() ? files[i].first : files[i].second;
    if (::fstatat(dirfd, path.c_str(), &stats[i], AT_SYMLINK_NOFOLLOW) != 0)
      throw Error("tree hash: cannot stat " + path + ": " + std::strerror(errno));
    if (S_ISLNK(stats[i].st_mode)) {
      std::string target(static_cast<std::size_t>(stats[i].st_size) + 1, '\0');
      ssize_t n = ::readlinkat(dirfd, path.c_str(), target.data(), target.size());
      if (n < 0) throw Error("tree hash: cannot read the link " + path + ": " + std::strerror(errno));
      target.resize(static_cast<std::size_t>(n));
      digests[i] = sha256(target);
      return true;
    }
    if (remembered[i] && DigestCache::unchanged(*remembered[i], stats[i])) {
      digests[i] = remembered[i]->digest;
      return true;
    }
    if (buffer.empty()) buffer.resize(1 << 20);
    int fd = ::openat(dirfd, path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error("cannot read " + path + ": " + std::strerror(errno));
    if (stats[i].st_size > (1 << 20)) ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    thread_local Sha256 sha;
    ssize_t got;
    while ((got = ::read(fd, buffer.data(), buffer.size())) > 0 || (got < 0 && errno == EINTR))
      if (got > 0) sha.update(buffer.data(), static_cast<std::size_t>(got));
    int err = got < 0 ? errno : 0;
    ::close(fd);
    if (err) throw Error("cannot read " + path + ": " + std::strerror(err));
    digests[i] = sha.finish();
    was_read[i] = 1;
    return true;
  });

  bool all_remembered = cache != nullptr;
  std::size_t regular = 0;
  for (std::size_t i = 0; cache && i < files.size(); ++i)
    if (!S_ISLNK(stats[i].st_mode)) ++regular, all_remembered = all_remembered && !was_read[i];
  if (complete) *complete = false;
  if (cache && all_remembered && regular == cache->size()) {
    cache->count(regular, 0);  // the same files, all unchanged: nothing to learn or forget
    if (complete) *complete = true;
  } else if (cache) {
    std::vector<DigestCache::Record> records;
    records.reserve(files.size());
    std::size_t hits = 0, misses = 0;
    for (std::size_t i = 0; i < files.size(); ++i) {
      if (S_ISLNK(stats[i].st_mode)) continue;
      was_read[i] ? ++misses : ++hits;
      if (!was_read[i]) {
        records.push_back(*remembered[i]);
      } else if (!cache->is_recent(stats[i])) {
        records.push_back(DigestCache::record_of(files[i].first, stats[i], digests[i]));
      }
    }
    cache->count(hits, misses);
    if (complete) *complete = records.size() == regular;
    cache->update(std::move(records));
  }

  Sha256 summary;
  std::string line;
  for (std::size_t i = 0; i < files.size(); ++i) {
    line = to_hex(digests[i]);
    line += "  ";
    line += files[i].first;
    line += '\n';
    summary.update(line);
  }
  return summary.finish();
}

}  // namespace

Digest tree_hash(const fs::path& root, TreeSelection selection, DigestCache* cache) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw Error("tree hash: " + root.string() + " is not a directory");
  std::string base = root.native();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  int dirfd = ::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) throw Error("tree hash: cannot open " + base + ": " + std::strerror(errno));
  std::unique_ptr<int, void (*)(int*)> closer(&dirfd, [](int* fd) { ::close(*fd); });
  if (cache)
    if (auto known = recheck(dirfd, *cache)) return *known;

  std::vector<std::pair<std::string, std::string>> entries;
  entries.reserve(4096);
  FolderStats folders;
  walk(base, "", 0, selection, entries, cache ? &folders : nullptr);
  bool complete = false;
  Digest digest = hash_listing(dirfd, std::move(entries), cache, &complete);
  if (cache) {
    std::vector<DigestCache::Folder> remembered;
    remembered.reserve(folders.size());
    for (const auto& [name, st] : folders) {
      complete = complete && !cache->is_recent(st);
      remembered.push_back({name, static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
                            DigestCache::time_ns(st.st_mtim), DigestCache::time_ns(st.st_ctim)});
    }
    if (complete) cache->remember_tree(std::move(remembered), digest);
    else cache->forget_tree();
  }
  return digest;
}

Digest files_hash(std::vector<std::pair<std::string, fs::path>> files, DigestCache* cache) {
  std::vector<std::pair<std::string, std::string>> listing;
  listing.reserve(files.size());
  for (auto& f : files) listing.emplace_back(std::move(f.first), f.second.native());
  return hash_listing(AT_FDCWD, std::move(listing), cache);
}

std::string sha256_string(const Digest& d) { return "sha256:" + to_hex(d); }

Digest parse_digest(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Error("'" + text + "' is not a content hash (" + why +
                 ")\n  hint: write it as sha256:<64 hex digits> or h1:<base64>, as `tdx module hash` or "
                 "`tdx fetch --hash` prints it");
  };
  Digest d{};
  auto from_hex = [&](std::string_view hex) {
    if (hex.size() != 64) throw bad("a sha256 has 64 hex digits, this has " + std::to_string(hex.size()));
    for (std::size_t i = 0; i < 32; ++i) {
      int v = 0;
      for (char c : {hex[2 * i], hex[2 * i + 1]}) {
        int n = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (n < 0) throw bad(std::string("'") + c + "' is not a hex digit");
        v = v * 16 + n;
      }
      d[i] = static_cast<std::uint8_t>(v);
    }
    return d;
  };
  std::string_view t = text;
  if (t.rfind("sha256:", 0) == 0) return from_hex(t.substr(7));
  if (t.rfind("h1:", 0) == 0) {
    std::string_view b64 = t.substr(3);
    if (b64.size() != 44 || b64[43] != '=' || b64[42] == '=')
      throw bad("an h1 hash is 44 base64 characters ending in one '='");
    static const std::string k_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::uint32_t acc = 0;
    int bits = 0;
    std::size_t out = 0;
    for (char c : b64.substr(0, 43)) {
      auto pos = k_alphabet.find(c);
      if (pos == std::string::npos) throw bad(std::string("'") + c + "' is not a base64 character");
      acc = (acc << 6) | static_cast<std::uint32_t>(pos);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        if (out < 32) d[out++] = static_cast<std::uint8_t>((acc >> bits) & 0xff);
      }
    }
    if (out != 32 || (acc & ((1u << bits) - 1)) != 0) throw bad("it does not decode to 32 bytes");
    return d;
  }
  if (t.size() == 64) return from_hex(t);
  throw bad("it starts with neither sha256: nor h1:");
}

std::string h1_string(const Digest& d) { return "h1:" + to_base64(d); }

}  // namespace tdx
