#include <tdx/hash.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <fstream>
#include <stdexcept>
#include <vector>

#include <tdx/error.hpp>

namespace fs = std::filesystem;

namespace tdx {

namespace {
// Fetched once: EVP_MD_fetch does a provider lookup that is too slow per hash.
const EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}
}  // namespace

struct Sha256::Impl {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : m_impl(std::make_unique<Impl>()) {
  if (!m_impl->ctx || EVP_DigestInit_ex2(m_impl->ctx, sha256_md(), nullptr) != 1)
    throw std::runtime_error("openssl: cannot initialise SHA-256");
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(const void* data, std::size_t size) { EVP_DigestUpdate(m_impl->ctx, data, size); }

Digest Sha256::finish() {
  Digest d{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(m_impl->ctx, d.data(), &len);
  EVP_DigestInit_ex2(m_impl->ctx, sha256_md(), nullptr);
  return d;
}

std::string to_hex(const Digest& d) {
  static const char* k_digits = "0123456789abcdef";
  std::string s;
  s.reserve(64);
  for (auto b : d) {
    s += k_digits[b >> 4];
    s += k_digits[b & 15];
  }
  return s;
}

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

Digest tree_hash(const fs::path& root) {
  if (!fs::is_directory(root)) throw Error("tree hash: " + root.string() + " is not a directory");
  std::vector<std::pair<std::string, fs::path>> entries;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    if (!it->is_symlink() && it->is_directory() && it->path().filename() == ".git") {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_symlink() || it->is_regular_file())
      entries.emplace_back(fs::relative(it->path(), root).generic_string(), it->path());
  }
  std::sort(entries.begin(), entries.end());
  Sha256 summary;
  for (const auto& [rel, path] : entries) {
    Digest d = fs::is_symlink(path) ? sha256(fs::read_symlink(path).string()) : sha256_file(path);
    summary.update(to_hex(d) + "  " + rel + "\n");
  }
  return summary.finish();
}

std::string h1_string(const Digest& d) { return "h1:" + to_base64(d); }

}  // namespace tdx
