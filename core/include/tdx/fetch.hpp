// Verified downloads: every external input is pinned by its sha256.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace tdx {

struct FetchOptions {
  std::string ca_bundle;   // PEM bundle for https; empty: TDX_CA_BUNDLE, else the system's
  int max_attempts = 4;    // transient failures (connection, 5xx, truncation) retry with backoff
  bool progress = true;    // a bar on a terminal, plain lines otherwise (stderr)
};

struct FetchResult {
  std::filesystem::path path;  // cache_dir()/fetch/<sha256>
  std::string sha256;          // hex
  std::uint64_t size = 0;
  bool cached = false;         // no network was used
};

// "sha256:<hex>" or "<hex>" (64 hex digits) -> lower-case hex; anything else throws tdx::Error.
std::string parse_sha256(const std::string& text);

// Downloads `url` (http, https or file) and verifies it while it streams; the file
// enters the cache only when its sha256 matches. A second call is a cache hit.
FetchResult fetch(const std::string& url, const std::string& sha256, const FetchOptions& options = {});

// The sha256 (hex) of what `url` serves, without caching it (for `tdx fetch --hash`).
std::string hash_url(const std::string& url, const FetchOptions& options = {});

// Every fetch() of this process, in call order, for the lockfile.
struct FetchRecord {
  std::string url;
  std::string sha256;
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
