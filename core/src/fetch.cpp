// The only file that includes <curl/curl.h>.
#include <tdx/fetch.hpp>

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <iostream>
#include <mutex>
#include <optional>
#include <regex>
#include <thread>
#include <vector>

#include <tdx/error.hpp>
#include <tdx/fsutil.hpp>
#include <tdx/hash.hpp>
#include <tdx/lockfile.hpp>
#include <tdx/paths.hpp>

namespace fs = std::filesystem;

namespace tdx {

namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string human_size(double bytes) {
  char buf[32];
  if (bytes >= 1e9) std::snprintf(buf, sizeof buf, "%.2f GB", bytes / 1e9);
  else if (bytes >= 1e6) std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1e6);
  else std::snprintf(buf, sizeof buf, "%.0f kB", bytes / 1e3);
  return buf;
}

// Hashes on its own thread what the download callback hands it, so hashing overlaps
// the network and the writes (two cores: about the speed of a plain download).
// With `with_sha512` it computes the SHA-512 beside the SHA-256.
class HashPipe {
 public:
  explicit HashPipe(bool with_sha512) : m_sha512(with_sha512 ? std::optional<Sha512>(std::in_place) : std::nullopt),
                                        m_thread([this] { run(); }) {}
  ~HashPipe() { finish(); }

  void push(const char* data, std::size_t n) {
    std::vector<char> chunk;
    {
      std::unique_lock<std::mutex> lock(m_mutex);
      m_space.wait(lock, [&] { return m_queue.size() < k_max_chunks; });
      if (!m_free.empty()) {
        chunk = std::move(m_free.back());
        m_free.pop_back();
      }
    }
    chunk.assign(data, data + n);
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      m_queue.push_back(std::move(chunk));
    }
    m_ready.notify_one();
  }

  Digest finish() {
    if (m_thread.joinable()) {
      {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_done = true;
      }
      m_ready.notify_one();
      m_thread.join();
      m_digest = m_sha.finish();
      if (m_sha512) m_digest512 = m_sha512->finish();
    }
    return m_digest;
  }

  // Valid after finish(), when constructed with_sha512.
  const Digest512& sha512() const { return m_digest512; }

 private:
  static constexpr std::size_t k_max_chunks = 64;

  void run() {
    for (;;) {
      std::vector<char> chunk;
      {
        std::unique_lock<std::mutex> lock(m_mutex);
        m_ready.wait(lock, [&] { return m_done || !m_queue.empty(); });
        if (m_queue.empty()) return;
        chunk = std::move(m_queue.front());
        m_queue.pop_front();
      }
      m_space.notify_one();
      m_sha.update(chunk.data(), chunk.size());
      if (m_sha512) m_sha512->update(chunk.data(), chunk.size());
      std::lock_guard<std::mutex> lock(m_mutex);
      if (m_free.size() < k_max_chunks) m_free.push_back(std::move(chunk));
    }
  }

  std::mutex m_mutex;
  std::condition_variable m_ready, m_space;
  std::deque<std::vector<char>> m_queue;
  std::vector<std::vector<char>> m_free;
  bool m_done = false;
  Sha256 m_sha;
  std::optional<Sha512> m_sha512;
  Digest m_digest{};
  Digest512 m_digest512{};
  std::thread m_thread;  // last: starts after the members it uses exist
};

// One download attempt's state: the file being written and the running digest.
struct Transfer {
  explicit Transfer(bool with_sha512 = false) : hash(with_sha512) {}
  int fd = -1;  // -1: hash only
  HashPipe hash;
  std::uint64_t size = 0;
  std::uint64_t flushed = 0;  // bytes handed to writeback so far
  int write_errno = 0;
  // progress
  bool progress = false;
  bool tty = false;
  std::string label;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_report = started;
  int last_decile = -1;
  bool printed = false;
};

std::size_t on_data(char* data, std::size_t, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  t->hash.push(data, n);
  if (t->fd >= 0) {
    std::size_t done = 0;
    while (done < n) {
      ssize_t w = ::write(t->fd, data + done, n - done);
      if (w < 0) {
        if (errno == EINTR) continue;
        t->write_errno = errno;
        return 0;  // makes curl stop with CURLE_WRITE_ERROR
      }
      done += static_cast<std::size_t>(w);
    }
  }
  t->size += n;
  // Start writeback as data arrives, so the final fsync has little left to wait for.
  constexpr std::uint64_t k_writeback_step = 16u << 20;
  if (t->fd >= 0 && t->size - t->flushed >= k_writeback_step) {
    ::sync_file_range(t->fd, static_cast<off64_t>(t->flushed), static_cast<off64_t>(t->size - t->flushed),
                      SYNC_FILE_RANGE_WRITE);
    t->flushed = t->size;
  }
  return n;
}

int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (!t->progress) return 0;
  auto clock = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(clock - t->started).count();
  if (elapsed < 1.0) return 0;  // short downloads stay quiet
  double rate = static_cast<double>(now) / elapsed;
  if (t->tty) {
    if (clock - t->last_report < std::chrono::milliseconds(200)) return 0;
    t->last_report = clock;
    std::string line = "\r[fetch] " + t->label + "  " + human_size(static_cast<double>(now));
    if (total > 0) {
      int pct = static_cast<int>(100.0 * static_cast<double>(now) / static_cast<double>(total));
      int filled = pct / 5;
      line += " / " + human_size(static_cast<double>(total)) + " [" + std::string(filled, '#') +
              std::string(20 - filled, ' ') + "] " + std::to_string(pct) + "%";
    }
    line += "  " + human_size(rate) + "/s   ";
    std::cerr << line << std::flush;
    t->printed = true;
  } else if (total > 0) {
    int decile = static_cast<int>(10 * now / total);
    if (decile != t->last_decile && decile < 10) {
      t->last_decile = decile;
      std::cerr << "[fetch] " << t->label << ": " << decile * 10 << "% of " << human_size(static_cast<double>(total))
                << " (" << human_size(rate) << "/s)\n";
    }
  } else if (clock - t->last_report > std::chrono::seconds(5)) {
    t->last_report = clock;
    std::cerr << "[fetch] " << t->label << ": " << human_size(static_cast<double>(now)) << "\n";
  }
  return 0;
}

struct AttemptOutcome {
  bool ok = false;
  bool transient = false;
  std::string error;
};

AttemptOutcome attempt(const std::string& url, Transfer& t, const FetchOptions& options) {
  global_init();
  CURL* curl = curl_easy_init();
  if (!curl) return {false, false, "libcurl could not start"};
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https,file");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 512L * 1024L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);  // stalled for 60 s: give up this attempt
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "tdx/0.1");
  std::string ca = options.ca_bundle;
  if (ca.empty())
    if (const char* env = std::getenv("TDX_CA_BUNDLE")) ca = env;
  if (!ca.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, ca.c_str());

  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  if (t.printed) std::cerr << "\n";

  AttemptOutcome out;
  if (rc == CURLE_OK) {
    out.ok = true;
    return out;
  }
  std::string detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  switch (rc) {
    case CURLE_HTTP_RETURNED_ERROR:
      out.transient = status >= 500 || status == 429 || status == 408;
      out.error = "the server answered HTTP " + std::to_string(status);
      break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      out.error = "TLS failed: " + detail +
                  "\n  hint: if the server uses a private CA, give its certificate with --ca-bundle FILE or TDX_CA_BUNDLE";
      break;
    case CURLE_WRITE_ERROR:
      out.error = std::string("cannot write the download: ") + std::strerror(t.write_errno ? t.write_errno : EIO);
      break;
    case CURLE_UNSUPPORTED_PROTOCOL:
      out.error = "unsupported URL scheme (use http, https or file): " + detail;
      break;
    case CURLE_FILE_COULDNT_READ_FILE:
      out.error = "cannot read the file: " + detail;
      break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
      out.transient = true;
      out.error = detail;
      break;
    default:
      out.error = detail;
  }
  return out;
}

// Runs attempts with exponential backoff until one succeeds or a permanent error.
void download(const std::string& url, const FetchOptions& options, const std::function<Transfer&()>& fresh) {
  std::string last_error;
  int attempts = std::max(1, options.max_attempts);
  for (int i = 0; i < attempts; ++i) {
    if (i > 0) {
      auto wait = std::chrono::milliseconds(250 << (i - 1));
      std::cerr << "[fetch] " << redact_url(url) << ": " << last_error << "; retrying in " << wait.count() << " ms ("
                << i + 1 << "/" << attempts << ")\n";
      std::this_thread::sleep_for(wait);
    }
    Transfer& t = fresh();
    AttemptOutcome out = attempt(url, t, options);
    if (out.ok) return;
    last_error = out.error;
    if (!out.transient) break;
  }
  throw Error("fetch: cannot download " + redact_url(url) + ": " + last_error);
}

std::string label_for(const std::string& url) {
  auto slash = url.find_last_of('/');
  std::string name = slash == std::string::npos ? url : url.substr(slash + 1);
  return name.empty() ? redact_url(url) : name;
}

// A fresh attempt's state, reporting progress under the URL's file name.
std::unique_ptr<Transfer> new_transfer(const std::string& url, const FetchOptions& options, bool with_sha512 = false) {
  auto t = std::make_unique<Transfer>(with_sha512);
  t->progress = options.progress;
  t->tty = ::isatty(2);
  t->label = label_for(redact_url(url));
  return t;
}

// What a download into the fetch cache got: its digests (hex) and size.
struct Landed {
  std::string sha256;
  std::string sha512;  // only when asked for
  std::uint64_t size = 0;
};

// Streams `url` into a temporary file in `dir`, hashing while it arrives (SHA-512 too when
// `with_sha512`); `check` throws to refuse the digests. Accepted bytes are synced and renamed to
// dir/<sha256>, so the cache holds only whole, verified files; any failure removes the temporary file.
Landed download_into_cache(const std::string& url, const FetchOptions& options, const fs::path& dir,
                           const std::string& tag, bool with_sha512, const std::function<void(const Landed&)>& check) {
  fs::create_directories(dir);
  fs::path partial = dir / (".partial-" + tag + "-" + std::to_string(::getpid()));
  std::unique_ptr<Transfer> transfer;
  auto close_partial = [&] {
    if (transfer && transfer->fd >= 0) ::close(transfer->fd), transfer->fd = -1;
  };
  Landed got;
  try {
    download(url, options, [&]() -> Transfer& {
      close_partial();
      transfer = new_transfer(url, options, with_sha512);
      transfer->fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (transfer->fd < 0) throw Error("fetch: cannot write " + partial.string() + ": " + std::strerror(errno));
      return *transfer;
    });
    got.sha256 = to_hex(transfer->hash.finish());
    if (with_sha512) got.sha512 = to_hex(transfer->hash.sha512());
    got.size = transfer->size;
    check(got);
    if (::fsync(transfer->fd) != 0) throw Error("fetch: cannot sync " + partial.string() + ": " + std::strerror(errno));
    close_partial();
    fs::rename(partial, dir / got.sha256);
  } catch (...) {
    std::error_code ec;
    close_partial();
    fs::remove(partial, ec);
    throw;
  }
  return got;
}

Error mismatch(const std::string& algorithm, const std::string& url, const std::string& expected,
               const std::string& actual, const FetchOptions& options, const std::string& default_hint) {
  return Error("fetch: " + algorithm + " mismatch for " + redact_url(url) + "\n  expected " + expected + "\n  actual   " +
               actual + "\n  hint: " + (options.mismatch_hint.empty() ? default_hint : options.mismatch_hint));
}

bool is_hex(const std::string& text, std::size_t digits) {
  return text.size() == digits &&
         std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
}

std::string lower(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// The alias fetch_sha512 leaves: fetch/sha512/<hex> holds the sha256 the file is cached under.
std::optional<fs::path> cached_by_sha512(const fs::path& dir, const std::string& sha512_hex) {
  std::error_code ec;
  fs::path alias = dir / "sha512" / sha512_hex;
  if (!fs::is_regular_file(alias, ec)) return std::nullopt;
  std::string sha = read_file(alias, 256);
  while (!sha.empty() && std::isspace(static_cast<unsigned char>(sha.back()))) sha.pop_back();
  if (!is_hex(sha, 64) || !fs::is_regular_file(dir / sha, ec)) return std::nullopt;
  return dir / sha;
}

}  // namespace

std::string parse_sha256(const std::string& text) {
  std::string hex = text.rfind("sha256:", 0) == 0 ? text.substr(7) : text;
  if (!is_hex(hex, 64))
    throw Error("'" + text + "' is not a sha256 digest (64 hex digits, optionally prefixed with sha256:)\n"
                "  hint: `tdx fetch --hash URL` prints the digest of a resource");
  return lower(hex);
}

std::string parse_sha512(const std::string& text) {
  std::string hex = text.rfind("sha512:", 0) == 0 ? text.substr(7) : text;
  if (!is_hex(hex, 128))
    throw Error("'" + text + "' is not a sha512 digest (128 hex digits, optionally prefixed with sha512:)");
  return lower(hex);
}

std::string parse_integrity(const std::string& text) {
  if (text.rfind("sha512:", 0) == 0) return "sha512:" + parse_sha512(text);
  if (text.rfind("sha256:", 0) == 0 || is_hex(text, 64)) return "sha256:" + parse_sha256(text);
  throw Error("'" + text + "' is not a digest: give sha256:<64 hex digits> (or sha512:<128 hex digits> for "
              "files whose publisher gives only a SHA-512)");
}

std::optional<fs::path> cached_fetch(const std::string& integrity) {
  const fs::path dir = cache_dir() / "fetch";
  const std::string normal = parse_integrity(integrity);
  const std::string hex = normal.substr(7);
  if (normal.rfind("sha512:", 0) == 0) return cached_by_sha512(dir, hex);
  std::error_code ec;
  if (fs::is_regular_file(dir / hex, ec)) return dir / hex;
  return std::nullopt;
}

std::string redact_url(const std::string& url) {
  static const std::regex k_userinfo(R"(^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@)");
  return std::regex_replace(url, k_userinfo, "$1***@");
}

FetchLog& FetchLog::instance() {
  static FetchLog log;
  return log;
}

void FetchLog::add(FetchRecord record) {
  record.url = redact_url(record.url);  // the lock is committed: no credentials in it
  for (const auto& r : m_records)
    if (r.url == record.url && r.integrity == record.integrity) return;
  m_records.push_back(std::move(record));
}

namespace {

void log_fetch(const std::string& url, const std::string& integrity, const FetchOptions& options) {
  if (!options.pinned_by_builder) FetchLog::instance().add({url, integrity});
}

bool refused_by_frozen_lock(const std::string& url, const std::string& integrity, const FetchOptions& options) {
  return frozen_lock_refuses(options.pinned_by_builder ? std::string() : url, integrity);
}

}  // namespace

FetchResult fetch(const std::string& url, const std::string& sha256, const FetchOptions& options) {
  return fetch_verified(url, "sha256:" + parse_sha256(sha256), options);
}

FetchResult fetch_sha512(const std::string& url, const std::string& sha512, const FetchOptions& options) {
  return fetch_verified(url, "sha512:" + parse_sha512(sha512), options);
}

FetchResult fetch_verified(const std::string& url, const std::string& integrity_text, const FetchOptions& options) {
  if (url.empty()) throw Error("fetch: the URL is empty");
  const std::string integrity = parse_integrity(integrity_text);
  const bool by_sha512 = integrity.rfind("sha512:", 0) == 0;
  const std::string expected = integrity.substr(7);
  const fs::path dir = cache_dir() / "fetch";
  if (auto cached = cached_fetch(integrity)) {
    log_fetch(url, integrity, options);
    return {*cached, cached->filename().string(), static_cast<std::uint64_t>(fs::file_size(*cached)), true};
  }

  if (refused_by_frozen_lock(url, integrity, options)) {
    // A build cannot go on without a toolchain (and SHA-512 downloads are toolchains only): say so now.
    if (options.pinned_by_builder || by_sha512)
      throw Error("fetch: tdx.lock does not pin " + redact_url(url) + " with " + integrity +
                  ", and --frozen downloads only what it pins\n  hint: run `tdx lock` and commit tdx.lock");
    // --frozen will fail on this unpinned fetch after evaluation; do not download it meanwhile.
    log_fetch(url, integrity, options);
    return {dir / expected, expected, 0, false};
  }
  Landed got = download_into_cache(url, options, dir, expected.substr(0, 16), by_sha512, [&](const Landed& d) {
    if ((by_sha512 ? d.sha512 : d.sha256) == expected) return;
    if (by_sha512)
      throw mismatch("sha512", url, expected, d.sha512, options,
                     "the expected digest is the publisher's; make sure this server or mirror serves the "
                     "official file");
    throw mismatch("sha256", url, expected, d.sha256, options,
                   "if the new file is right, run: tdx fetch --hash " + redact_url(url));
  });
  if (by_sha512) atomic_write(dir / "sha512" / expected, got.sha256 + "\n");
  log_fetch(url, integrity, options);
  return {dir / got.sha256, got.sha256, got.size, false};
}

std::string hash_url(const std::string& url, const FetchOptions& options) {
  std::unique_ptr<Transfer> transfer;
  download(url, options, [&]() -> Transfer& {
    transfer = new_transfer(url, options);
    return *transfer;
  });
  return to_hex(transfer->hash.finish());
}

}  // namespace tdx
