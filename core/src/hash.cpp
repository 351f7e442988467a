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

// Hash1's summary line for one entry; a symlink counts as its target text.
std::string summary_line(const std::string& name, const fs::path& path) {
  if (name.find('\n') != std::string::npos)
    throw Error("tree hash: the file name '" + path.string() + "' holds a newline, which Hash1 cannot list");
  Digest d = fs::is_symlink(path) ? sha256(fs::read_symlink(path).string()) : sha256_file(path);
  return to_hex(d) + "  " + name + "\n";
}

}  // namespace

Digest tree_hash(const fs::path& root, TreeSelection selection) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw Error("tree hash: " + root.string() + " is not a directory");
  // Names are cut from the walked paths as text: fs::relative() would resolve symlinks.
  const std::string& base = root.native();
  const std::size_t prefix = base.size() + (base.back() == '/' ? 0 : 1);
  std::vector<std::pair<std::string, fs::path>> entries;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    const fs::path& path = it->path();
    const std::string name = path.filename().string();
    const fs::file_type type = it->symlink_status().type();
    const bool is_dir = type == fs::file_type::directory;
    if (name == ".git" ||
        (selection == TreeSelection::module_source && generated_by_python_tooling(name, is_dir, it.depth()))) {
      if (is_dir) it.disable_recursion_pending();
      continue;
    }
    if (is_dir) continue;
    if (type != fs::file_type::regular && type != fs::file_type::symlink)
      throw Error("tree hash: " + path.string() + " is " + kind_of(type) +
                  "; only regular files, symlinks and folders can be hashed");
    entries.emplace_back(path.native().substr(prefix), path);
  }
  return files_hash(std::move(entries));
}

Digest files_hash(std::vector<std::pair<std::string, fs::path>> files) {
  // Bytewise order, as Go's sort.Strings (std::string compares as unsigned char).
  std::sort(files.begin(), files.end());
  Sha256 summary;
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (i > 0 && files[i].first == files[i - 1].first)
      throw Error("tree hash: '" + files[i].first + "' is listed twice");
    summary.update(summary_line(files[i].first, files[i].second));
  }
  return summary.finish();
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
