// The only file that includes <git2.h>.
#include <tdx/git.hpp>

#include <git2.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>

#include <tdx/error.hpp>
#include <tdx/fsutil.hpp>
#include <tdx/lockfile.hpp>
#include <tdx/paths.hpp>

namespace fs = std::filesystem;

namespace tdx {

GitFetchLog& GitFetchLog::instance() {
  static GitFetchLog log;
  return log;
}

namespace {

// Beside the checkout, inside .git so that it is not part of the tree it describes.
constexpr const char* k_tree_marker = ".git/tdx-tree-hash";

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    git_libgit2_init();
    // The same URL must give the same checkout on every machine: no user or system git
    // configuration (autocrlf, url.insteadOf, filters) takes part.
    for (int level : {GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_XDG, GIT_CONFIG_LEVEL_GLOBAL, GIT_CONFIG_LEVEL_PROGRAMDATA})
      git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, level, "");
  });
}

std::string last_error() {
  const git_error* e = git_error_last();
  return e && e->message ? e->message : "unknown libgit2 error";
}

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using Remote = std::unique_ptr<git_remote, Deleter<git_remote, git_remote_free>>;
using Repository = std::unique_ptr<git_repository, Deleter<git_repository, git_repository_free>>;
using Object = std::unique_ptr<git_object, Deleter<git_object, git_object_free>>;

std::string oid_hex(const git_oid* oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, oid);
  return buf;
}

std::string what(const std::string& url, const std::string& tag, const std::string& commit) {
  return url + (tag.empty() ? " commit " + commit : " tag '" + tag + "'");
}

std::string both_forms(const Digest& d) { return h1_string(d) + " = " + sha256_string(d); }

Error unreachable(const std::string& url) {
  return Error("fetch_git: cannot reach " + url + ": " + last_error() +
               "\n  hint: check the URL; file://, git://, http(s):// URLs and local paths work");
}

// The commit `tag` names on the remote, peeling annotated tags.
std::string resolve_tag(const std::string& url, const std::string& tag) {
  git_remote* raw = nullptr;
  if (git_remote_create_detached(&raw, url.c_str()) != 0)
    throw Error("fetch_git: '" + url + "' is not a git URL: " + last_error());
  Remote remote(raw);
  git_remote_callbacks callbacks;
  git_remote_init_callbacks(&callbacks, GIT_REMOTE_CALLBACKS_VERSION);
  if (git_remote_connect(remote.get(), GIT_DIRECTION_FETCH, &callbacks, nullptr, nullptr) != 0) throw unreachable(url);
  const git_remote_head** heads = nullptr;
  std::size_t count = 0;
  if (git_remote_ls(&heads, &count, remote.get()) != 0) throw unreachable(url);
  const std::string ref = "refs/tags/" + tag, peeled = ref + "^{}";
  std::string direct, commit;
  std::vector<std::string> tags;
  for (std::size_t i = 0; i < count; ++i) {
    std::string name = heads[i]->name;
    if (name == peeled) commit = oid_hex(&heads[i]->oid);
    if (name == ref) direct = oid_hex(&heads[i]->oid);
    if (name.rfind("refs/tags/", 0) == 0 && name.find("^{}") == std::string::npos) tags.push_back(name.substr(10));
  }
  git_remote_disconnect(remote.get());
  if (direct.empty()) {
    std::string hint = did_you_mean(tag, tags);
    std::string list;
    std::sort(tags.begin(), tags.end());
    for (std::size_t i = 0; i < tags.size() && i < 10; ++i) list += (i ? ", " : "") + tags[i];
    throw Error("fetch_git: " + url + " has no tag '" + tag + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                "\n  tags there: " + (list.empty() ? "none" : list + (tags.size() > 10 ? ", ..." : "")));
  }
  return commit.empty() ? direct : commit;  // no peeled entry: a lightweight tag names the commit itself
}

std::optional<Digest> cached_tree(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_regular_file(dir / k_tree_marker, ec)) return std::nullopt;
  try {
    std::string text = read_file(dir / k_tree_marker);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return parse_digest(text);
  } catch (const Error&) {
    return std::nullopt;
  }
}

Error mismatch(const std::string& subject, const Digest& expected, const Digest& actual) {
  return Error("fetch_git: tree hash mismatch for " + subject + "\n  expected " + both_forms(expected) + "\n  actual   " +
               both_forms(actual) + "\n  hint: if this tree is right, pin it: sha256=\"" + sha256_string(actual) + "\"");
}

// Clones `url` into `dir`, checks out `commit` (detached) and returns nothing: the caller verifies.
void clone_and_checkout(const std::string& url, const std::string& tag, const std::string& commit, const fs::path& dir) {
  git_clone_options options;
  git_clone_options_init(&options, GIT_CLONE_OPTIONS_VERSION);
  options.checkout_opts.checkout_strategy = GIT_CHECKOUT_NONE;
  options.fetch_opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_ALL;
  options.local = GIT_CLONE_NO_LOCAL;  // copy objects, never hard-link into someone's repository
  git_repository* raw = nullptr;
  if (git_clone(&raw, url.c_str(), dir.c_str(), &options) != 0) throw unreachable(url);
  Repository repo(raw);

  git_oid oid;
  git_oid_fromstr(&oid, commit.c_str());
  git_object* obj = nullptr;
  if (git_object_lookup(&obj, repo.get(), &oid, GIT_OBJECT_COMMIT) != 0)
    throw Error("fetch_git: " + what(url, tag, commit) + ": commit " + commit +
                " is not in the repository (not reachable from its branches and tags)\n"
                "  hint: check the commit id, or pin a tag that points at it");
  Object target(obj);
  if (!tag.empty()) {
    git_object* peeled = nullptr;
    std::string spec = "refs/tags/" + tag + "^{commit}";
    if (git_revparse_single(&peeled, repo.get(), spec.c_str()) != 0 ||
        oid_hex(git_object_id(peeled)) != commit) {
      if (peeled) git_object_free(peeled);
      throw Error("fetch_git: " + what(url, tag, commit) + ": the tag moved while it was being fetched; try again");
    }
    git_object_free(peeled);
  }
  git_checkout_options checkout;
  git_checkout_options_init(&checkout, GIT_CHECKOUT_OPTIONS_VERSION);
  checkout.checkout_strategy = GIT_CHECKOUT_FORCE;
  if (git_checkout_tree(repo.get(), target.get(), &checkout) != 0 || git_repository_set_head_detached(repo.get(), &oid) != 0)
    throw Error("fetch_git: cannot check out " + what(url, tag, commit) + ": " + last_error());
}

bool is_hex40(std::string& s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

}  // namespace

GitFetchResult fetch_git(const std::string& url, const std::string& tag, const std::string& commit_in,
                         const std::string& tree_hash_text) {
  if (url.empty()) throw Error("fetch_git: the repository URL is empty");
  if (tag.empty() == commit_in.empty())
    throw Error("fetch_git(" + url + "): give exactly one of tag= or commit= (" +
                (tag.empty() ? std::string("neither was given") : "both were given") + ")");
  std::string commit = commit_in;
  if (!commit.empty() && !is_hex40(commit))
    throw Error("fetch_git(" + url + "): commit '" + commit_in + "' is not a full 40-digit commit id\n"
                "  hint: `git rev-parse <rev>` prints it");
  if (tree_hash_text.empty())
    throw Error("fetch_git(" + url + "): sha256= is mandatory: the tree hash of the checkout (.git excluded)\n"
                "  hint: check the tree out once and run: tdx fetch --hash ./checkout");
  Digest expected;
  try {
    expected = parse_digest(tree_hash_text);
  } catch (const Error& e) {
    throw Error("fetch_git(" + url + "): sha256=" + std::string(e.what()));
  }
  global_init();

  if (!tag.empty()) {
    commit = resolve_tag(url, tag);
    if (auto locked = locked_git_commit(url, tag); locked && *locked != commit)
      throw Error("fetch_git: tag '" + tag + "' of " + url + " moved since it was locked\n  locked commit " + *locked +
                  "\n  now at commit " + commit +
                  "\n  hint: if the move is expected, check the new tree, then run: tdx lock --update " + url);
  }

  const fs::path root = cache_dir() / "git";
  const fs::path dir = root / commit;
  GitFetchResult result{dir, commit, expected, true};
  auto record = [&] { GitFetchLog::instance().add({url, tag, commit, result.tree}); };
  auto from_cache = [&]() -> bool {
    std::error_code ec;
    if (!fs::exists(dir, ec)) return false;
    auto tree = cached_tree(dir);
    if (!tree) {
      remove_tree(dir);  // an entry without its verified hash is not trusted
      return false;
    }
    if (*tree != expected) throw mismatch(what(url, tag, commit), expected, *tree);
    return true;
  };
  if (from_cache()) {
    record();
    return result;
  }

  // No lock: a concurrent fetch of the same commit clones too, and the second rename loses.
  // On failure the cache is left as it was, down to the folders this call made.
  std::vector<fs::path> made;
  std::error_code ec;
  for (const fs::path& p : {cache_dir(), root})
    if (!fs::exists(p, ec)) made.push_back(p);
  try {
    TempDir staging(root, "clone-" + commit.substr(0, 12));
    const fs::path checkout = staging.path() / "checkout";
    clone_and_checkout(url, tag, commit, checkout);
    Digest actual = tree_hash(checkout);
    if (actual != expected) throw mismatch(what(url, tag, commit), expected, actual);
    atomic_write(checkout / k_tree_marker, sha256_string(actual) + "\n");
    fs::rename(checkout, dir, ec);
    if (ec && !from_cache()) throw Error("fetch_git: cannot move the checkout into " + dir.string() + ": " + ec.message());
  } catch (...) {
    for (auto it = made.rbegin(); it != made.rend(); ++it) fs::remove(*it, ec);  // only when empty
    throw;
  }
  result.cached = false;
  record();
  return result;
}

}  // namespace tdx
