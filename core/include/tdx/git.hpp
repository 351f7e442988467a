// Source trees from git repositories, pinned by the tree hash of the checkout.
// core/src/git.cpp is the only file that includes <git2.h>.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <tdx/hash.hpp>

namespace tdx {

struct GitFetchResult {
  std::filesystem::path path;  // cache_dir()/git/<commit>: the checkout (its .git/ included)
  std::string commit;          // hex
  Digest tree{};               // tree_hash(path)
  bool cached = false;         // the checkout was already in the cache
};

// Checks out `tag` or `commit` (exactly one) of the repository at `url` (file://, git://,
// http(s)://, or a local path) and verifies that the checkout's tree hash equals `tree_hash`
// ("h1:<base64>", "sha256:<hex>" or the bare hex). A tag is resolved on the remote every time;
// when tdx.lock pins it to another commit the call fails naming both. The checkout enters
// the cache only once verified; a commit already there is used without network.
GitFetchResult fetch_git(const std::string& url, const std::string& tag, const std::string& commit,
                         const std::string& tree_hash);

// Every fetch_git() of this process, in call order, for the lockfile.
struct GitFetchRecord {
  std::string url;
  std::string tag;     // empty when pinned by commit
  std::string commit;
  Digest tree{};
};

class GitFetchLog {
 public:
  static GitFetchLog& instance();
  void add(GitFetchRecord record) { m_records.push_back(std::move(record)); }
  const std::vector<GitFetchRecord>& records() const { return m_records; }

 private:
  std::vector<GitFetchRecord> m_records;
};

}  // namespace tdx
