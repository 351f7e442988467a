#include <tdx/digest_cache.hpp>

#include <chrono>
#include <cstring>

#include <tdx/fsutil.hpp>

namespace fs = std::filesystem;

namespace tdx {

namespace {

constexpr char k_magic[8] = {'t', 'd', 'x', 'd', 'i', 'g', '0', '2'};

template <typename T>
void put(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

template <typename T>
bool get(const std::string& in, std::size_t& pos, T& v) {
  if (pos + sizeof v > in.size()) return false;
  std::memcpy(&v, in.data() + pos, sizeof v);
  pos += sizeof v;
  return true;
}

bool same_record(const DigestCache::Record& a, const DigestCache::Record& b) {
  return a.name == b.name && a.dev == b.dev && a.ino == b.ino && a.size == b.size && a.mtime_ns == b.mtime_ns &&
         a.ctime_ns == b.ctime_ns && a.digest == b.digest;
}

}  // namespace

fs::path DigestCache::file_for(const fs::path& cache_root, const fs::path& tree, TreeSelection selection) {
  std::string name = to_hex(sha256(fs::absolute(tree).lexically_normal().string())).substr(0, 32);
  if (selection == TreeSelection::module_source) name += "-module";
  return cache_root / "digests" / name;
}

DigestCache::DigestCache(fs::path file, int racy_seconds) : m_file(std::move(file)), m_racy_seconds(racy_seconds) {
  std::string data;
  try {
    data = read_file(m_file);
  } catch (...) {
    return;
  }
  std::size_t pos = sizeof k_magic;
  if (data.size() < pos || std::memcmp(data.data(), k_magic, sizeof k_magic) != 0) return;
  while (pos < data.size()) {
    Record r;
    std::uint32_t len = 0;
    if (!get(data, pos, r.dev) || !get(data, pos, r.ino) || !get(data, pos, r.size) || !get(data, pos, r.mtime_ns) ||
        !get(data, pos, r.ctime_ns) || !get(data, pos, r.digest) || !get(data, pos, len) || pos + len > data.size() ||
        (!m_records.empty() && data.compare(pos, len, m_records.back().name) <= 0)) {
      m_records.clear();  // damaged or out of order: trust nothing
      return;
    }
    r.name.assign(data, pos, len);
    pos += len;
    m_records.push_back(std::move(r));
  }
}

std::vector<const DigestCache::Record*> DigestCache::match(const std::vector<const std::string*>& names) const {
  std::vector<const Record*> out(names.size(), nullptr);
  std::size_t j = 0;
  for (std::size_t i = 0; i < names.size() && j < m_records.size(); ++i) {
    while (j < m_records.size() && m_records[j].name < *names[i]) ++j;
    if (j < m_records.size() && m_records[j].name == *names[i]) out[i] = &m_records[j];
  }
  return out;
}

DigestCache::Record DigestCache::record_of(std::string name, const struct stat& st, const Digest& digest) {
  return {std::move(name), static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
          static_cast<std::uint64_t>(st.st_size), time_ns(st.st_mtim), time_ns(st.st_ctim), digest};
}

bool DigestCache::unchanged(const Record& r, const struct stat& st) {
  return r.dev == static_cast<std::uint64_t>(st.st_dev) && r.ino == static_cast<std::uint64_t>(st.st_ino) &&
         r.size == static_cast<std::uint64_t>(st.st_size) && r.mtime_ns == time_ns(st.st_mtim) &&
         r.ctime_ns == time_ns(st.st_ctim);
}

bool DigestCache::is_recent(const struct stat& st) const {
  auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::int64_t racy = static_cast<std::int64_t>(m_racy_seconds) * 1000000000LL;
  return time_ns(st.st_mtim) >= now - racy || time_ns(st.st_ctim) >= now - racy;
}

void DigestCache::update(std::vector<Record> records) {
  bool same = records.size() == m_records.size();
  for (std::size_t i = 0; same && i < records.size(); ++i) same = same_record(records[i], m_records[i]);
  if (same) return;
  m_records = std::move(records);
  m_dirty = true;
}

void DigestCache::save() {
  if (!m_dirty) return;
  std::string out(k_magic, sizeof k_magic);
  out.reserve(out.size() + m_records.size() * 96);
  for (const auto& r : m_records) {
    put(out, r.dev), put(out, r.ino), put(out, r.size), put(out, r.mtime_ns), put(out, r.ctime_ns), put(out, r.digest);
    put(out, static_cast<std::uint32_t>(r.name.size()));
    out += r.name;
  }
  atomic_write(m_file, out);
  m_dirty = false;
}

}  // namespace tdx
