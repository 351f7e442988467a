// Verified downloads: every external input is pinned by its sha256 (or, where the publisher
// gives only that, its sha512).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace tdx {

struct FetchOptions {
  std::string ca_bundle;   // PEM bundle for https; empty: TDX_CA_BUNDLE, else the system's
  int max_attempts = 4;    // transient failures (connection, 5xx, truncation) retry with backoff
  bool progress = true;    // a bar on a terminal, plain lines otherwise (stderr)
  std::string mismatch_hint;  // the next step a digest mismatch names; empty: the default for the call
  // A toolchain release a builder plugin pins: the digest is the plugin's, the URL only this
  // machine's server setting. Not logged for tdx.lock (LockSession::resolve records it from the
  // build plan), and `--frozen` accepts it when the lock pins these bytes under any URL.
  bool pinned_by_builder = false;
};

struct FetchResult {
  std::filesystem::path path;  // cache_dir()/fetch/<sha256>
  std::string sha256;          // hex (for fetch_sha512: of the bytes that matched the sha512)
  std::uint64_t size = 0;
  bool cached = false;         // no network was used
};

// "sha256:<hex>" or "<hex>" (64 hex digits) -> lower-case hex; anything else throws tdx::Error.
std::string parse_sha256(const std::string& text);

// "sha512:<hex>" or "<hex>" (128 hex digits) -> lower-case hex; anything else throws tdx::Error.
std::string parse_sha512(const std::string& text);

// "sha256:<hex>" or "<hex>" (64 hex digits) -> "sha256:<hex>"; "sha512:<hex>" (128) -> "sha512:<hex>";
// lower case. Anything else throws tdx::Error quoting `text`.
std::string parse_integrity(const std::string& text);

// Downloads `url` (http, https or file) and verifies it while it streams; the file
// enters the cache only when its sha256 matches. A second call is a cache hit.
FetchResult fetch(const std::string& url, const std::string& sha256, const FetchOptions& options = {});

// The same for a file whose publisher gives only a SHA-512: the download is checked against it
// while it streams, enters the cache under its sha256 like fetch(), and cache_dir()/fetch/sha512/<hex>
// then names that sha256, so a second call is a cache hit.
FetchResult fetch_sha512(const std::string& url, const std::string& sha512, const FetchOptions& options = {});

// fetch() or fetch_sha512(), as `integrity` ("sha256:<hex>" or "sha512:<hex>", see parse_integrity) says.
FetchResult fetch_verified(const std::string& url, const std::string& integrity, const FetchOptions& options = {});

// The cached file for an integrity from parse_integrity, without downloading; nullopt if absent.
std::optional<std::filesystem::path> cached_fetch(const std::string& integrity);

// `url` with any credentials (user:password@) replaced by ***, for messages and tdx.lock.
std::string redact_url(const std::string& url);

// The sha256 (hex) of what `url` serves, without caching it (for `tdx fetch --hash`).
std::string hash_url(const std::string& url, const FetchOptions& options = {});

// Every fetch() of this process, in call order, for the lockfile.
struct FetchRecord {
  std::string url;
  std::string integrity;  // "sha256:<hex>" or "sha512:<hex>"
};

class FetchLog {
 public:
  static FetchLog& instance();
  void add(FetchRecord record);
  const std::vector<FetchRecord>& records() const { return m_records; }

 private:
  std::vector<FetchRecord> m_records;
};

}  // namespace tdx
