#include <tdx/uptodate.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>
#include <sstream>

#include <tdx/digest_cache.hpp>
#include <tdx/error.hpp>
#include <tdx/fsutil.hpp>
#include <tdx/paths.hpp>

extern char** environ;

namespace fs = std::filesystem;

namespace tdx {

namespace {

constexpr const char* k_header = "tdx-uptodate 1";

// Variables that change between shells without changing what a TDXfile builds.
const std::set<std::string> k_volatile_env = {
    "_", "OLDPWD", "PWD", "SHLVL", "TERM", "COLUMNS", "LINES", "SSH_CLIENT", "SSH_CONNECTION", "SSH_TTY",
    "SSH_AUTH_SOCK", "DISPLAY", "WINDOWID", "TMUX", "TMUX_PANE", "STY", "PS1", "HISTFILE", "LS_COLORS"};

std::string environment_digest() {
  std::vector<std::string> vars;
  for (char** e = environ; *e; ++e) {
    std::string entry(*e);
    if (!k_volatile_env.count(entry.substr(0, entry.find('=')))) vars.push_back(std::move(entry));
  }
  std::sort(vars.begin(), vars.end());
  KeyHasher h("tdx-uptodate-environment-v1");
  for (const auto& v : vars) h.field("env", v);
  return to_hex(h.finish());
}

// "dev ino size mtime ctime", or "missing".
std::string signature(const fs::path& path, std::int64_t* newest_ns = nullptr) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "missing";
  const std::int64_t mtime = DigestCache::time_ns(st.st_mtim), ctime = DigestCache::time_ns(st.st_ctim);
  if (newest_ns) *newest_ns = std::max({*newest_ns, mtime, ctime});
  std::ostringstream out;
  out << st.st_dev << ' ' << st.st_ino << ' ' << st.st_size << ' ' << mtime << ' ' << ctime;
  return out.str();
}

std::string tree_digest(const fs::path& root, TreeSelection selection) {
  DigestCache digests(DigestCache::file_for(cache_dir(), root, selection));
  Digest d = tree_hash(root, selection, &digests);
  digests.save();
  return h1_string(d);
}

}  // namespace

UpToDateStamp::UpToDateStamp(const fs::path& output_dir, const fs::path& tdxfile, const std::string& command) {
  const fs::path file = fs::absolute(tdxfile).lexically_normal();
  m_path = output_dir / (".tdx-uptodate-" + to_hex(sha256(file.string())).substr(0, 16));
  m_command = to_hex(KeyHasher("tdx-uptodate-command-v1")
                         .field("tdxfile", file.string())
                         .field("command", command)
                         .field("environment", environment_digest())
                         .finish());
}

std::optional<std::string> UpToDateStamp::check() const {
  std::string text;
  try {
    text = read_file(m_path);
  } catch (const Error&) {
    return std::nullopt;
  }
  std::istringstream in(text);
  std::string line, result;
  if (!std::getline(in, line) || line != k_header) return std::nullopt;
  if (!std::getline(in, line) || line != "command " + m_command) return std::nullopt;
  bool complete = false;
  while (std::getline(in, line)) {
    auto space = line.find(' ');
    std::string kind = line.substr(0, space), rest = space == std::string::npos ? "" : line.substr(space + 1);
    if (kind == "file" || kind == "output") {
      // "<signature>\t<path>": the path is last, it may hold spaces.
      auto tab = rest.find('\t');
      if (tab == std::string::npos || signature(rest.substr(tab + 1)) != rest.substr(0, tab)) return std::nullopt;
    } else if (kind == "tree" || kind == "module") {
      auto tab = rest.find('\t');
      if (tab == std::string::npos) return std::nullopt;
      fs::path root = rest.substr(tab + 1);
      std::error_code ec;
      if (!fs::is_directory(root, ec)) return std::nullopt;
      auto selection = kind == "tree" ? TreeSelection::checkout : TreeSelection::module_source;
      if (tree_digest(root, selection) != rest.substr(0, tab)) return std::nullopt;
    } else if (kind == "result") {
      result = rest;
    } else if (kind == "end") {
      complete = true;
    } else {
      return std::nullopt;
    }
  }
  if (!complete || result.empty()) return std::nullopt;
  return result;
}

void UpToDateStamp::invalidate() const {
  std::error_code ec;
  fs::remove(m_path, ec);
}

void UpToDateStamp::record(const UpToDateInputs& inputs) const {
  auto recordable = [](const fs::path& p) { return p.is_absolute() && p.string().find_first_of("\n\t") == std::string::npos; };
  std::string text = std::string(k_header) + "\ncommand " + m_command + "\n";
  std::int64_t newest = 0;
  std::set<fs::path> seen;
  for (const auto& f : inputs.files) {
    fs::path p = fs::absolute(f).lexically_normal();
    if (!recordable(p)) return;
    if (!seen.insert(p).second) continue;
    std::string sig = signature(p, &newest);
    if (sig == "missing") continue;  // probed but absent: its later creation is seen through its folder
    text += "file " + sig + "\t" + p.string() + "\n";
  }
  for (const auto& [root, selection] : inputs.trees) {
    fs::path p = fs::absolute(root).lexically_normal();
    if (!recordable(p)) return;
    text += std::string(selection == TreeSelection::checkout ? "tree " : "module ") + tree_digest(p, selection) + "\t" +
            p.string() + "\n";
  }
  for (const auto& [root, digest] : inputs.hashed_trees) {
    fs::path p = fs::absolute(root).lexically_normal();
    if (!recordable(p)) return;
    text += "tree " + h1_string(digest) + "\t" + p.string() + "\n";
  }
  for (const auto& o : inputs.outputs) {
    fs::path p = fs::absolute(o).lexically_normal();
    if (!recordable(p)) return;
    std::string sig = signature(p);
    if (sig == "missing") return;
    text += "output " + sig + "\t" + p.string() + "\n";
  }
  if (inputs.result.find('\n') != std::string::npos) return;
  // An input changed within the racy window: a further change in the same timestamp tick
  // would not show, so the next build evaluates again.
  auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch());
  if (newest > now.count() - static_cast<std::int64_t>(DigestCache::k_racy_seconds) * 1000000000LL) return;
  text += "result " + inputs.result + "\nend\n";
  atomic_write(m_path, text);
}

}  // namespace tdx
