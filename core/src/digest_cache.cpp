#include <tdx/digest_cache.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>

#include <tdx/fsutil.hpp>

namespace fs = std::filesystem;

namespace tdx {

namespace {

// v3: a tree flag and hash, the folders, then the files (v2 had only the files).
constexpr char k_magic[8] = {'t', 'd', 'x', 'd', 'i', 'g', '0', '3'};

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
  if (!parse(data)) {  // damaged or out of order: trust nothing
    m_records.clear(), m_folders.clear(), m_tree.reset();
  }
}

bool DigestCache::parse(const std::string& data) {
  std::size_t pos = sizeof k_magic;
  if (data.size() < pos || std::memcmp(data.data(), k_magic, sizeof k_magic) != 0) return false;
  // Names are stored in ascending order; anything else is damage.
  auto name_at = [&](std::string& name, const std::string* previous) {
    std::uint32_t len = 0;
    if (!get(data, pos, len) || pos + len > data.size() || (previous && data.compare(pos, len, *previous) <= 0))
      return false;
    name.assign(data, pos, len);
    pos += len;
    return true;
  };
  std::uint8_t has_tree = 0;
  Digest tree{};
  std::uint32_t folders = 0;
  if (!get(data, pos, has_tree) || !get(data, pos, tree) || !get(data, pos, folders)) return false;
  for (std::uint32_t i = 0; i < folders; ++i) {
    Folder f;
    if (!get(data, pos, f.dev) || !get(data, pos, f.ino) || !get(data, pos, f.mtime_ns) || !get(data, pos, f.ctime_ns) ||
        !name_at(f.name, m_folders.empty() ? nullptr : &m_folders.back().name))
      return false;
    m_folders.push_back(std::move(f));
  }
  m_records.reserve(data.size() / 64);
  while (pos < data.size()) {
    Record r;
    if (!get(data, pos, r.dev) || !get(data, pos, r.ino) || !get(data, pos, r.size) || !get(data, pos, r.mtime_ns) ||
        !get(data, pos, r.ctime_ns) || !get(data, pos, r.digest) ||
        !name_at(r.name, m_records.empty() ? nullptr : &m_records.back().name))
      return false;
    m_records.push_back(std::move(r));
  }
  if (has_tree == 1 && !m_folders.empty()) m_tree = tree;
  else m_folders.clear();
  return true;
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

bool DigestCache::unchanged(const Folder& f, const struct stat& st) {
  return f.dev == static_cast<std::uint64_t>(st.st_dev) && f.ino == static_cast<std::uint64_t>(st.st_ino) &&
         f.mtime_ns == time_ns(st.st_mtim) && f.ctime_ns == time_ns(st.st_ctim);
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
  m_tree.reset();  // it stood for the old records; the caller remembers the new tree
  m_folders.clear();
  m_dirty = true;
}

void DigestCache::remember_tree(std::vector<Folder> folders, const Digest& tree) {
  std::sort(folders.begin(), folders.end(), [](const Folder& a, const Folder& b) { return a.name < b.name; });
  bool same = m_tree == tree && folders.size() == m_folders.size();
  for (std::size_t i = 0; same && i < folders.size(); ++i) {
    const Folder &a = folders[i], &b = m_folders[i];
    same = a.name == b.name && a.dev == b.dev && a.ino == b.ino && a.mtime_ns == b.mtime_ns && a.ctime_ns == b.ctime_ns;
  }
  if (same) return;
  m_folders = std::move(folders);
  m_tree = tree;
  m_dirty = true;
}

void DigestCache::forget_tree() {
  if (!m_tree && m_folders.empty()) return;
  m_tree.reset();
  m_folders.clear();
  m_dirty = true;
}

void DigestCache::save() {
  if (!m_dirty) return;
  std::string out(k_magic, sizeof k_magic);
  out.reserve(out.size() + 64 + m_folders.size() * 64 + m_records.size() * 96);
  put(out, static_cast<std::uint8_t>(m_tree ? 1 : 0));
  put(out, m_tree.value_or(Digest{}));
  put(out, static_cast<std::uint32_t>(m_folders.size()));
  for (const auto& f : m_folders) {
    put(out, f.dev), put(out, f.ino), put(out, f.mtime_ns), put(out, f.ctime_ns);
    put(out, static_cast<std::uint32_t>(f.name.size()));
    out += f.name;
  }
  for (const auto& r : m_records) {
    put(out, r.dev), put(out, r.ino), put(out, r.size), put(out, r.mtime_ns), put(out, r.ctime_ns), put(out, r.digest);
    put(out, static_cast<std::uint32_t>(r.name.size()));
    out += r.name;
  }
  atomic_write(m_file, out);
  m_dirty = false;
}

}  // namespace tdx
