// SHA-256 digests (and SHA-512, for publishers that give only that), tagged key hashing and the
// Go "h1" tree hash.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tdx {

using Digest = std::array<std::uint8_t, 32>;
using Digest512 = std::array<std::uint8_t, 64>;

std::string to_hex(const Digest& d);
std::string to_hex(const Digest512& d);
std::string to_base64(const Digest& d);

// SHA-2 through OpenSSL's EVP interface, for a digest of 32 (SHA-256) or 64 (SHA-512) bytes;
// finish() leaves the hasher ready for the next message.
template <typename DigestT>
class Sha2 {
 public:
  Sha2();
  ~Sha2();
  Sha2(Sha2&&) noexcept;
  Sha2& operator=(Sha2&&) noexcept;
  void update(const void* data, std::size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  DigestT finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};
extern template class Sha2<Digest>;
extern template class Sha2<Digest512>;

using Sha256 = Sha2<Digest>;
// Only for downloads whose publisher gives a SHA-512 and no SHA-256 (see fetch_sha512).
using Sha512 = Sha2<Digest512>;

Digest sha256(std::string_view data);
Digest sha256_file(const std::filesystem::path& path);

// Hashes named fields so that no two different field sequences collide:
// each field is written as tag, its length and its bytes. Keys start with a
// schema version so that a change of what is hashed changes every key.
class KeyHasher {
 public:
  explicit KeyHasher(std::string_view schema);
  KeyHasher& field(std::string_view tag, std::string_view value);
  KeyHasher& field(std::string_view tag, const Digest& value);
  Digest finish() { return m_sha.finish(); }

 private:
  Sha256 m_sha;
};

// Go's dirhash "Hash1": the sha256 of the lines "<sha256 hex of the file>  <name>\n" sorted
// by name (bytewise). Names are relative, '/'-separated and may not hold a newline.
// Only the names and the bytes count: file modes, owners, times and empty folders do not.
// A symlink is not followed: its "bytes" are its target text, as git stores it.
// For trees without symlinks this equals Go's value (go.sum "h1:" lines).

// Which files of a folder a tree hash covers. Both leave out every entry named `.git`
// (folder or file, at any depth) and refuse sockets, fifos and devices.
enum class TreeSelection {
  checkout,       // everything else: fetch_git checkouts, build sources, `tdx fetch --hash DIR`
  module_source,  // also leaves out what Python tooling writes beside a module's sources:
                  // __pycache__/ and *.pyc anywhere, build/, dist/ and *.egg-info/ at the top
};
class DigestCache;

// Files are hashed on all cores; with a DigestCache, files whose stat is unchanged are not read.
Digest tree_hash(const std::filesystem::path& root, TreeSelection selection = TreeSelection::checkout,
                 DigestCache* cache = nullptr);

// Hash1 over an explicit list of (name in the summary, file on disk); the order given does not matter.
Digest files_hash(std::vector<std::pair<std::string, std::filesystem::path>> files, DigestCache* cache = nullptr);

std::string h1_string(const Digest& d);      // "h1:<base64>"
std::string sha256_string(const Digest& d);  // "sha256:<hex>"

// "h1:<base64>", "sha256:<hex>" or a bare 64-digit hex of the same 32 bytes; anything else
// throws tdx::Error quoting `text`.
Digest parse_digest(const std::string& text);

}  // namespace tdx
