#include <tdx/lockfile.hpp>

#include <tdx/json.hpp>

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <map>

#include <tdx/error.hpp>
#include <tdx/fetch.hpp>
#include <tdx/fsutil.hpp>
#include <tdx/git.hpp>
#include <tdx/hash.hpp>
#include <tdx/image.hpp>
#include <tdx/plugin_host.hpp>

namespace fs = std::filesystem;

namespace tdx {

namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

const LockSession* g_active = nullptr;

void add(Fields& out, const char* key, const std::string& value) {
  if (!value.empty()) out.emplace_back(key, value);
}


std::string module_summary(const LockedModule& m) {
  return m.name + (m.version.empty() ? "" : " " + m.version) + " (" + m.source + ")";
}

std::string module_name(const LockedModule& m) { return m.name; }
std::string fetch_name(const LockedFetch& f) { return f.git.empty() ? f.url : f.git; }

std::string fetch_summary(const LockedFetch& f) {
  if (f.git.empty()) return f.url;
  return f.git + (f.tag.empty() ? " commit " + f.resolved_rev : " tag '" + f.tag + "'");
}

// The fields of an array-of-tables entry, checked against the keys that entry may hold.
Fields table_fields(const toml::table& t, const std::vector<std::string>& allowed, const std::string& where) {
  Fields out;
  for (auto&& [k, v] : t) {
    std::string key(k.str());
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string hint = did_you_mean(key, allowed);
      throw Error(where + ": unknown key '" + key + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
    }
    auto s = v.value<std::string>();
    if (!v.is_string() || !s) throw Error(where + ": '" + key + "' must be a string");
    out.emplace_back(key, *s);
  }
  return out;
}

std::string get(const Fields& f, const std::string& key) {
  for (const auto& [k, v] : f)
    if (k == key) return v;
  return "";
}

// "sha256:<hex>" of a sha256 or h1 digest; with `sha512_allowed` (a downloaded file, whose
// publisher may give only a SHA-512, as for a pinned .NET SDK) also "sha512:<hex>".
std::string normalized_integrity(const std::string& text, const std::string& where, bool sha512_allowed = false) {
  if (text.empty()) throw Error(where + ": 'integrity' is missing");
  try {
    if (sha512_allowed && text.rfind("sha512:", 0) == 0) return "sha512:" + parse_sha512(text);
    return sha256_string(parse_digest(text));
  } catch (const Error& e) {
    throw Error(where + ": integrity " + e.what());
  }
}

template <typename Entry>
std::map<std::string, const Entry*> by_key(const std::vector<Entry>& entries) {
  std::map<std::string, const Entry*> out;
  for (const auto& e : entries) out.emplace(e.key(), &e);
  return out;
}

template <typename Entry>
void diff_entries(const std::vector<Entry>& locked, const std::vector<Entry>& resolved, const std::string& what,
                  std::string (*summary)(const Entry&), std::string (*name)(const Entry&),
                  std::vector<LockChange>& out) {
  auto old_map = by_key(locked), new_map = by_key(resolved);
  std::set<std::string> keys;
  for (const auto& [k, _] : old_map) keys.insert(k);
  for (const auto& [k, _] : new_map) keys.insert(k);
  for (const auto& key : keys) {
    auto o = old_map.find(key);
    auto n = new_map.find(key);
    if (o == old_map.end()) {
      out.push_back({LockChange::Kind::added, what, key, name(*n->second), summary(*n->second), {}});
    } else if (n == new_map.end()) {
      out.push_back({LockChange::Kind::removed, what, key, name(*o->second), summary(*o->second), {}});
    } else {
      Fields of = o->second->fields(), nf = n->second->fields();
      if (of == nf) continue;
      LockChange c{LockChange::Kind::changed, what, key, name(*n->second), summary(*n->second), {}};
      // Report in file order.
      std::vector<std::string> order;
      for (const auto& [k, _] : nf) order.push_back(k);
      for (const auto& [k, _] : of)
        if (std::find(order.begin(), order.end(), k) == order.end()) order.push_back(k);
      for (const auto& k : order)
        if (get(of, k) != get(nf, k)) c.fields.push_back({k, {get(of, k), get(nf, k)}});
      out.push_back(std::move(c));
    }
  }
}

template <typename Entry>
void sort_entries(std::vector<Entry>& v) {
  std::sort(v.begin(), v.end(), [](const Entry& a, const Entry& b) { return a.key() < b.key(); });
}

std::string kind_word(LockChange::Kind k) {
  switch (k) {
    case LockChange::Kind::added: return "added";
    case LockChange::Kind::removed: return "removed";
    case LockChange::Kind::changed: return "changed";
  }
  return "";
}

}  // namespace

std::string normalize_dist_name(const std::string& name) {
  std::string out;
  bool sep = false;
  for (unsigned char c : name) {
    if (c == '-' || c == '_' || c == '.') {
      sep = true;
      continue;
    }
    if (sep && !out.empty()) out += '-';
    sep = false;
    out += static_cast<char>(std::tolower(c));
  }
  return out;
}

std::string LockedModule::key() const { return normalize_dist_name(name); }

Fields LockedModule::fields() const {
  Fields f;
  add(f, "name", name);
  add(f, "version", version);
  add(f, "source", source);
  add(f, "url", url);
  add(f, "path", path);
  add(f, "git", git);
  add(f, "resolved_rev", resolved_rev);
  add(f, "integrity", integrity);
  return f;
}

std::string LockedFetch::key() const {
  if (git.empty()) return url;
  return git + "@" + (tag.empty() ? resolved_rev : tag);
}

Fields LockedFetch::fields() const {
  Fields f;
  add(f, "url", url);
  add(f, "git", git);
  add(f, "tag", tag);
  add(f, "resolved_rev", resolved_rev);
  add(f, "integrity", integrity);
  return f;
}

Lockfile Lockfile::parse(const std::string& text, const std::string& origin) {
  const std::string hint = "\n  hint: tdx.lock is generated; undo the hand edit, or delete it and run `tdx lock`";
  toml::table table;
  try {
    table = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    throw Error(origin + ":" + std::to_string(e.source().begin.line) + ": not valid TOML: " +
                std::string(e.description()) + hint);
  }
  try {
    for (auto&& [k, v] : table) {
      std::string key(k.str());
      if (key != "version" && key != "module" && key != "fetch")
        throw Error(origin + ": unknown top-level key '" + key + "' (a lock holds version, [[module]] and [[fetch]])");
    }
    auto version = table["version"].value<std::int64_t>();
    if (!version) throw Error(origin + ": 'version = " + std::to_string(k_lockfile_version) + "' is missing");
    if (*version != k_lockfile_version)
      throw Error(origin + ": lockfile version " + std::to_string(*version) + " is not one this tdx reads (it reads version " +
                  std::to_string(k_lockfile_version) + ")" +
                  (*version > k_lockfile_version ? "\n  hint: a newer tdx wrote it; upgrade tdx" : ""));
    Lockfile lock;
    auto tables = [&](const char* name) {
      std::vector<const toml::table*> out;
      if (!table.contains(name)) return out;
      const toml::array* arr = table[name].as_array();
      if (!arr) throw Error(origin + ": '" + name + "' must be written as [[" + name + "]] tables");
      for (const auto& node : *arr) {
        if (!node.is_table()) throw Error(origin + ": '" + name + "' must be written as [[" + name + "]] tables");
        out.push_back(node.as_table());
      }
      return out;
    };
    std::set<std::string> seen;
    int index = 0;
    for (const toml::table* t : tables("module")) {
      std::string where = origin + ": [[module]] #" + std::to_string(++index);
      if (auto name = (*t)["name"].value<std::string>()) where += " ('" + *name + "')";
      Fields f = table_fields(*t, {"name", "version", "source", "url", "path", "git", "resolved_rev", "integrity"}, where);
      LockedModule m{get(f, "name"), get(f, "version"), get(f, "source"), get(f, "url"), get(f, "path"),
                     get(f, "git"), get(f, "resolved_rev"), ""};
      if (m.name.empty()) throw Error(where + ": 'name' is missing");
      static const std::vector<std::string> k_sources{"pypi", "git", "path", "url"};
      if (std::find(k_sources.begin(), k_sources.end(), m.source) == k_sources.end())
        throw Error(where + ": source '" + m.source + "' is not one of pypi, git, path, url");
      if (m.source == "git" && (m.git.empty() || m.resolved_rev.empty()))
        throw Error(where + ": a git module needs 'git' and 'resolved_rev'");
      if (m.source == "path" && m.path.empty()) throw Error(where + ": a path module needs 'path'");
      if (m.source == "url" && m.url.empty()) throw Error(where + ": a url module needs 'url'");
      m.integrity = normalized_integrity(get(f, "integrity"), where);
      if (!seen.insert("module:" + m.key()).second) throw Error(where + ": module '" + m.name + "' is listed twice");
      lock.modules.push_back(std::move(m));
    }
    index = 0;
    for (const toml::table* t : tables("fetch")) {
      std::string where = origin + ": [[fetch]] #" + std::to_string(++index);
      Fields f = table_fields(*t, {"url", "git", "tag", "resolved_rev", "integrity"}, where);
      LockedFetch x{get(f, "url"), get(f, "git"), get(f, "tag"), get(f, "resolved_rev"), ""};
      if (x.url.empty() == x.git.empty()) throw Error(where + ": a fetch has exactly one of 'url' or 'git'");
      if (!x.git.empty() && x.resolved_rev.empty()) throw Error(where + ": a git fetch needs 'resolved_rev'");
      if (!x.url.empty() && (!x.tag.empty() || !x.resolved_rev.empty()))
        throw Error(where + ": 'tag' and 'resolved_rev' belong to git fetches only");
      x.integrity = normalized_integrity(get(f, "integrity"), where, /*sha512_allowed=*/!x.url.empty());
      if (!seen.insert("fetch:" + x.key()).second) throw Error(where + ": '" + x.key() + "' is listed twice");
      lock.fetches.push_back(std::move(x));
    }
    return lock;
  } catch (const Error& e) {
    throw Error(e.what() + hint);
  }
}

std::optional<Lockfile> Lockfile::load(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(path, ec))) return std::nullopt;
  return parse(read_file(path), path.string());
}

std::string Lockfile::to_toml() const {
  auto modules_sorted = modules;
  auto fetches_sorted = fetches;
  sort_entries(modules_sorted);
  sort_entries(fetches_sorted);
  std::string out = "# Auto-generated by tdx lock. Do not edit.\nversion = " + std::to_string(k_lockfile_version) + "\n";
  for (const auto& m : modules_sorted) {
    out += "\n[[module]]\n";
    for (const auto& [k, v] : m.fields()) out += k + " = " + json_quote(v) + "\n";  // TOML basic strings take JSON's escapes
  }
  for (const auto& f : fetches_sorted) {
    out += "\n[[fetch]]\n";
    for (const auto& [k, v] : f.fields()) out += k + " = " + json_quote(v) + "\n";  // TOML basic strings take JSON's escapes
  }
  return out;
}

std::string LockChange::describe() const {
  std::string out = kind_word(kind);
  out.resize(8, ' ');
  out += what + " " + (kind == Kind::changed ? key : summary);
  if (kind == Kind::changed) {
    out += ":";
    bool first = true;
    for (const auto& [field, values] : fields) {
      out += (first ? " " : "; ") + field + " " + (values.first.empty() ? "(none)" : values.first) + " -> " +
             (values.second.empty() ? "(none)" : values.second);
      first = false;
    }
  }
  return out;
}

std::vector<LockChange> diff_locks(const Lockfile& locked, const Lockfile& resolved) {
  std::vector<LockChange> out;
  diff_entries<LockedModule>(locked.modules, resolved.modules, "module", &module_summary, &module_name, out);
  diff_entries<LockedFetch>(locked.fetches, resolved.fetches, "fetch", &fetch_summary, &fetch_name, out);
  return out;
}

LockedModule lock_module(const ModuleOrigin& origin) {
  LockedModule m = origin.entry;
  Digest d = origin.folder.empty() ? files_hash(origin.files) : tree_hash(origin.folder, TreeSelection::module_source);
  m.integrity = sha256_string(d);
  return m;
}

LockSession::LockSession(fs::path lock_path, LockMode mode, LockUpdate update)
    : m_path(std::move(lock_path)), m_mode(mode), m_update(std::move(update)) {
  m_locked = Lockfile::load(m_path);
  if (m_mode == LockMode::frozen && !m_locked)
    throw Error("--frozen: there is no lockfile at " + m_path.string() +
                "\n  hint: run `tdx lock` and commit tdx.lock; --frozen only checks an existing lock");
  g_active = this;
}

LockSession::~LockSession() {
  if (g_active == this) g_active = nullptr;
}

LockOutcome LockSession::resolve(const std::vector<ModuleOrigin>& modules, const Image* image) const {
  Lockfile resolved;
  std::map<std::string, LockedModule> mods;
  for (const auto& origin : modules) {
    LockedModule m = lock_module(origin);
    auto [it, inserted] = mods.emplace(m.key(), m);
    if (!inserted && it->second.fields() != m.fields())
      throw Error("module '" + m.name + "' was imported from two different distributions (" + it->second.source + " and " +
                  m.source + ")");
  }
  for (auto& [_, m] : mods) resolved.modules.push_back(std::move(m));

  std::map<std::string, LockedFetch> fetches;
  std::vector<FetchRecord> records = FetchLog::instance().records();
  // Toolchains are fetched while building, but their URL and hash are known from the plan now.
  // A release a builder pins (a plan toolchain with a URL; compiler=fetch() archives were logged by
  // fetch() already) is fixed by its digest, and its URL is only this machine's server setting: when
  // the lock already pins that digest, its entry stays as it is, so a lock written through one
  // mirror holds through another.
  if (image)
    for (const auto& b : image->builds())
      for (const auto& t : PluginRegistry::instance().builder(b.spec.builder).plan(b.spec).toolchains) {
        if (t.sha256.empty() || t.url.empty()) continue;
        const std::string integrity = parse_integrity(t.sha256);
        const LockedFetch* pinned = nullptr;
        if (m_locked && !m_update.all)
          for (const auto& f : m_locked->fetches)
            if (f.git.empty() && f.integrity == integrity && !m_update.names.count(f.url)) pinned = &f;
        records.push_back({pinned ? pinned->url : redact_url(t.url), integrity});
      }
  for (const auto& r : records) {
    LockedFetch f{r.url, "", "", "", r.integrity};
    auto [it, inserted] = fetches.emplace(f.key(), f);
    if (!inserted && it->second.integrity != f.integrity)
      throw Error("fetch: " + r.url + " was fetched twice with different hashes (" + it->second.integrity + " and " +
                  f.integrity + ")\n  hint: one URL has one content; pin every fetch of it with the same sha256");
  }
  for (const auto& r : GitFetchLog::instance().records()) {
    LockedFetch f{"", r.url, r.tag, r.commit, sha256_string(r.tree)};
    auto [it, inserted] = fetches.emplace(f.key(), f);
    if (!inserted && it->second.fields() != f.fields())
      throw Error("fetch_git: " + fetch_summary(f) + " was fetched twice with different results (" +
                  it->second.resolved_rev + " and " + f.resolved_rev + ")");
  }
  for (auto& [_, f] : fetches) resolved.fetches.push_back(std::move(f));

  const Lockfile empty;
  const Lockfile& locked = m_locked ? *m_locked : empty;

  // --update NAME must name something, or it is a typo that would silently update nothing.
  std::vector<std::string> known;
  for (const Lockfile* l : std::initializer_list<const Lockfile*>{&locked, &resolved}) {
    for (const auto& m : l->modules) known.push_back(m.name);
    for (const auto& f : l->fetches) known.push_back(f.git.empty() ? f.url : f.git);
  }
  for (const auto& name : m_update.names) {
    bool found = std::any_of(known.begin(), known.end(), [&](const std::string& k) {
      return k == name || normalize_dist_name(k) == normalize_dist_name(name);
    });
    if (!found) {
      std::string hint = did_you_mean(name, known);
      throw Error("--update " + name + ": no module or fetched URL of this TDXfile is called '" + name + "'" +
                  (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                  "\n  hint: `tdx lock --json` lists the module names and URLs");
    }
  }
  // A module in the project's own folder (modules/*/, a relative path) is part of the project,
  // versioned with it: its entry follows its edits. Anything else changes only with --update.
  auto in_project = [&](const LockChange& c) {
    if (c.what != "module") return false;
    for (const auto& m : resolved.modules)
      if (m.key() == c.key) return m.source == "path" && !m.path.empty() && m.path.front() != '/';
    return false;
  };
  auto updating = [&](const LockChange& c) { return in_project(c) || updates(c.what, c.name); };

  std::vector<LockChange> changes = diff_locks(locked, resolved);
  LockOutcome outcome{m_path, locked, {}, {}, false};
  if (m_mode == LockMode::frozen) {
    if (!changes.empty()) {
      std::string msg = "--frozen: " + m_path.string() + " does not match what the TDXfile resolved; " +
                        std::to_string(changes.size()) + " difference(s):";
      for (const auto& c : changes) msg += "\n  " + c.describe();
      throw Error(msg + "\n  hint: run `tdx lock` (with --update NAME for changed entries), review the diff and commit tdx.lock");
    }
    return outcome;
  }

  std::vector<LockChange> refused;
  for (const auto& c : changes) {
    if (c.kind == LockChange::Kind::changed && !updating(c)) refused.push_back(c);
  }
  if (!refused.empty()) {
    std::string msg = m_path.string() + " pins " + std::to_string(refused.size()) +
                      " entr" + (refused.size() == 1 ? "y" : "ies") + " differently from what the TDXfile resolved:";
    std::set<std::string> names;
    for (const auto& c : refused) {
      msg += "\n  " + c.describe();
      bool only_integrity = c.fields.size() == 1 && c.fields[0].first == "integrity";
      if (c.what == "module" && only_integrity)
        msg += "\n    (the files of " + c.summary + " no longer match the lock: reinstall it, or accept them)";
      names.insert(c.name);
    }
    std::string list;
    for (const auto& n : names) list += " " + n;
    throw Error(msg + "\n  hint: if the new values are right, accept them with: tdx lock --update" + list);
  }

  Lockfile result;
  auto new_modules = by_key(resolved.modules);
  auto new_fetches = by_key(resolved.fetches);
  auto keep = [&](const LockChange* c) { return !c || c->kind != LockChange::Kind::removed || m_mode == LockMode::add; };
  auto change_of = [&](const std::string& what, const std::string& key) -> const LockChange* {
    for (const auto& c : changes)
      if (c.what == what && c.key == key) return &c;
    return nullptr;
  };
  for (const auto& m : locked.modules) {
    const LockChange* c = change_of("module", m.key());
    if (!keep(c)) continue;
    result.modules.push_back(c && c->kind == LockChange::Kind::changed ? *new_modules.at(m.key()) : m);
  }
  for (const auto& f : locked.fetches) {
    const LockChange* c = change_of("fetch", f.key());
    if (!keep(c)) continue;
    result.fetches.push_back(c && c->kind == LockChange::Kind::changed ? *new_fetches.at(f.key()) : f);
  }
  for (const auto& c : changes) {
    if (c.kind != LockChange::Kind::added) continue;
    if (c.what == "module") result.modules.push_back(*new_modules.at(c.key));
    else result.fetches.push_back(*new_fetches.at(c.key));
  }
  for (const auto& c : changes) {
    if (c.kind != LockChange::Kind::removed || m_mode == LockMode::resolve) outcome.changes.push_back(c);
    else outcome.unused.push_back(c);
  }
  sort_entries(result.modules);
  sort_entries(result.fetches);
  outcome.lock = std::move(result);
  std::string text = outcome.lock.to_toml();
  std::error_code ec;
  outcome.write = !fs::exists(m_path, ec) || read_file(m_path) != text;
  return outcome;
}

bool LockSession::updates(const std::string& what, const std::string& name) const {
  if (m_update.all) return true;
  for (const auto& n : m_update.names)
    if (n == name || (what == "module" && normalize_dist_name(n) == normalize_dist_name(name))) return true;
  return false;
}

void LockSession::commit(const LockOutcome& outcome) const {
  if (outcome.write) atomic_write(outcome.path, outcome.lock.to_toml());
}

std::optional<std::string> locked_git_commit(const std::string& url, const std::string& tag) {
  if (!g_active || !g_active->locked()) return std::nullopt;
  if (g_active->updates("fetch", url)) return std::nullopt;
  for (const auto& f : g_active->locked()->fetches)
    if (f.git == url && f.tag == tag) return f.resolved_rev;
  return std::nullopt;
}

bool frozen_lock_refuses(const std::string& url, const std::string& integrity) {
  if (!g_active || g_active->mode() != LockMode::frozen || !g_active->locked()) return false;
  for (const auto& f : g_active->locked()->fetches)
    if ((url.empty() || f.url == redact_url(url)) && f.integrity == integrity) return false;
  return true;
}

}  // namespace tdx
