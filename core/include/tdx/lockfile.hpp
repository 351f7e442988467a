// tdx.lock: every module distribution and fetched resource of a TDXfile, pinned by content.
#pragma once

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace tdx {

class Image;

inline constexpr int k_lockfile_version = 1;

// One Python distribution that provides a module the TDXfile imported.
struct LockedModule {
  std::string name;          // as its metadata spells it
  std::string version;
  std::string source;        // "pypi", "git", "path" or "url"
  std::string url;           // source "url": the archive it was installed from
  std::string path;          // source "path": relative to the lockfile's folder when inside it
  std::string git;           // source "git": the repository
  std::string resolved_rev;  // source "git": the commit
  std::string integrity;     // "sha256:<hex>" of the tree hash (see README, "Lockfile")

  std::string key() const;   // the normalized name (PEP 503)
  std::vector<std::pair<std::string, std::string>> fields() const;  // in file order, empty ones left out
};

// One fetch() (url) or fetch_git() (git + tag or commit) the evaluation made.
struct LockedFetch {
  std::string url;           // fetch(): what was downloaded
  std::string git;           // fetch_git(): the repository
  std::string tag;           // fetch_git(tag=...)
  std::string resolved_rev;  // fetch_git(): the commit checked out
  std::string integrity;     // fetch(): sha256 of the file (sha512 for a toolchain whose publisher
                             // gives only that); fetch_git(): tree hash of the checkout

  std::string key() const;   // url, or "<git>@<tag or commit>"
  std::vector<std::pair<std::string, std::string>> fields() const;
};

struct Lockfile {
  std::vector<LockedModule> modules;
  std::vector<LockedFetch> fetches;

  // Throws tdx::Error naming `origin` and the bad entry for anything but a valid version-1 lock.
  static Lockfile parse(const std::string& text, const std::string& origin);
  // nullopt when the file does not exist.
  static std::optional<Lockfile> load(const std::filesystem::path& path);
  // Sorted by key, one stable byte sequence for the same content.
  std::string to_toml() const;
};

// One difference between the lock on disk and what an evaluation resolved.
struct LockChange {
  enum class Kind { added, removed, changed };
  Kind kind;
  std::string what;  // "module" or "fetch"
  std::string key;
  std::string name;     // what `tdx lock --update NAME` takes: the module name or the (git) URL
  std::string summary;  // "tdx-x 1.0.0 (pypi)" or the URL
  std::vector<std::pair<std::string, std::pair<std::string, std::string>>> fields;  // changed: field -> (old, new)
  std::string describe() const;  // one line: "changed module tdx-x: version 1.0.0 -> 1.1.0; ..."
};

std::vector<LockChange> diff_locks(const Lockfile& locked, const Lockfile& resolved);

// A module distribution found by the evaluation; its integrity is computed from `folder`
// (a source folder: editable installs and uninstalled local modules) or from `files`.
struct ModuleOrigin {
  LockedModule entry;  // everything but integrity
  std::filesystem::path folder;
  std::vector<std::pair<std::string, std::filesystem::path>> files;  // (name in the hash, file)
};

// In add and resolve mode a changed entry is refused unless --update names it; entries of the
// project's own modules/*/ folders (source "path", a relative path) follow their edits.
enum class LockMode {
  add,      // tdx build: new entries are added, unused ones kept
  resolve,  // tdx lock: the lock becomes exactly what was resolved (unused entries dropped)
  frozen,   // tdx build --frozen: any difference (or no lock) is an error; nothing is written
};

struct LockUpdate {
  bool all = false;            // --update without names
  std::set<std::string> names; // --update NAME...: module names or fetched URLs
};

struct LockOutcome {
  std::filesystem::path path;
  Lockfile lock;                    // what the file will hold
  std::vector<LockChange> changes;  // applied to the file
  std::vector<LockChange> unused;   // tdx build: entries kept although nothing used them
  bool write = false;               // the bytes differ from the file's (or there is no file)
};

// Holds tdx.lock while a TDXfile is evaluated: it is read before evaluation so that
// fetch_git can refuse a tag that moved, then compared with what the evaluation resolved.
// The lockfile is written only by commit(), atomically, so any error leaves it as it was.
class LockSession {
 public:
  // Throws tdx::Error when the existing lock is malformed, or when `frozen` and there is none.
  LockSession(std::filesystem::path lock_path, LockMode mode, LockUpdate update = {});
  ~LockSession();
  LockSession(const LockSession&) = delete;
  LockSession& operator=(const LockSession&) = delete;

  // The resolved lock (modules, every fetch()/fetch_git() of this process, and the toolchains the
  // image's builders will fetch) checked against the file: throws tdx::Error listing every
  // difference that is not allowed in this mode.
  LockOutcome resolve(const std::vector<ModuleOrigin>& modules, const Image* image = nullptr) const;
  void commit(const LockOutcome& outcome) const;

  const std::optional<Lockfile>& locked() const { return m_locked; }
  LockMode mode() const { return m_mode; }
  // --update covers this module (names compare PEP 503-normalized) or fetched URL (exactly).
  bool updates(const std::string& what, const std::string& name) const;

 private:
  std::filesystem::path m_path;
  LockMode m_mode;
  LockUpdate m_update;
  std::optional<Lockfile> m_locked;
};

// The commit tdx.lock pins for fetch_git(url, tag=...), while a LockSession is alive and the
// entry is not being updated; nullopt otherwise (no lock, a plain python3, tdx lock --update).
std::optional<std::string> locked_git_commit(const std::string& url, const std::string& tag);

// True in `tdx build --frozen` when tdx.lock does not pin this download (url with this integrity,
// "sha256:<hex>" or "sha512:<hex>"): fetch() then records it without downloading, so the failing
// build leaves the caches as they were. An empty `url` asks whether the lock pins these bytes
// under any URL (a toolchain a builder pins, FetchOptions::pinned_by_builder).
bool frozen_lock_refuses(const std::string& url, const std::string& integrity);

// The lock entry for one resolved module (computes its integrity).
LockedModule lock_module(const ModuleOrigin& origin);

// PEP 503 normalization: lower case, runs of -_. become one '-'.
std::string normalize_dist_name(const std::string& name);

}  // namespace tdx
