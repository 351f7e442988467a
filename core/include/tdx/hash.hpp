// SHA-256 digests, tagged key hashing and the Go "h1" tree hash.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace tdx {

using Digest = std::array<std::uint8_t, 32>;

std::string to_hex(const Digest& d);
std::string to_base64(const Digest& d);

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void update(const void* data, std::size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  Digest finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

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

// Go's dirhash Hash1 over the regular files (and symlinks, as their target text)
// below `root`, `.git` excluded: sha256 of the sorted lines "<sha256 hex>  <path>\n".
Digest tree_hash(const std::filesystem::path& root);
std::string h1_string(const Digest& d);  // "h1:<base64>"

}  // namespace tdx
