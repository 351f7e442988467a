// Writing secrets under the receiver's root: owners from the root's own /etc/passwd and
// /etc/group, folders walked without following symlinks, values staged in a temporary
// file beside the destination and renamed into place.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "secrets_list.hpp"

namespace tdx::receiver {

struct Ownership {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string owner, group;  // names, for messages
};

// The folder every destination and account file is read under (`--root`, default "/").
class Root {
 public:
  explicit Root(const std::string& path);
  ~Root();
  Root(const Root&) = delete;
  Root& operator=(const Root&) = delete;

  // How a destination reads in messages: the path inside the root, prefixed by the root unless it is "/".
  std::string display(const std::string& dest) const;
  // The owner and group a secret must have; throws when the root's account files lack them.
  Ownership ownership(const DeclaredSecret& secret) const;
  // The destination's folder, opened by walking from the root without following symlinks.
  // With `create`, missing folders are made (0755, root) and listed in `created` (paths
  // relative to the root, outermost first); without, a missing one gives -1.
  int open_parent(const DeclaredSecret& secret, bool create, std::vector<std::string>* created = nullptr) const;
  // Removes the empty folders `created` listed, innermost first (a discarded delivery leaves none).
  void remove_created(const std::vector<std::string>& created) const;

 private:
  std::string m_path;
  int m_fd = -1;
};

// A value written, owned, moded and synced under a temporary name beside its destination.
// commit() renames it into place; otherwise the destructor removes it and the folders it made.
// Discard several in the reverse order of staging, so shared new folders go too.
class StagedSecret {
 public:
  StagedSecret(const Root& root, const DeclaredSecret& secret, std::string_view value);
  ~StagedSecret();
  StagedSecret(const StagedSecret&) = delete;
  StagedSecret& operator=(const StagedSecret&) = delete;
  void commit();
  const std::string& name() const { return m_name; }

 private:
  void discard();
  const Root& m_root;
  std::string m_name, m_base, m_tmp, m_shown;
  std::vector<std::string> m_created;
  int m_dir = -1;
  bool m_committed = false;
};

// Stages and commits in one step (`put`).
void store_secret(const Root& root, const DeclaredSecret& secret, std::string_view value);

struct SecretStatus {
  std::string name;
  bool in_place = false;
  bool exists = false;
  std::string problem;  // why not in place: "missing", "owner 0:0 ...", ...
};

// Whether each declared secret exists with its owner, group and mode.
std::vector<SecretStatus> inspect(const Root& root, const std::vector<DeclaredSecret>& secrets);

// The names not in place, in declaration order.
std::vector<std::string> not_in_place(const std::vector<SecretStatus>& status);

}  // namespace tdx::receiver
