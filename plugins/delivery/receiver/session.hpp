// One protocol session (docs/secret-delivery.md) on a pair of file descriptors: the same
// code serves stdio (an ssh forced command), Unix sockets and AF_VSOCK.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "store.hpp"

namespace tdx::receiver {

struct SessionOptions {
  std::string config;  // the secrets.list, read afresh for every session
  std::chrono::milliseconds idle{30000};    // a client silent this long is dropped
  std::chrono::milliseconds total{300000};  // and no session lasts longer
  bool (*interrupted)() = nullptr;          // true once the receiver is asked to stop
};

struct SessionOutcome {
  bool committed = false;
  std::vector<std::string> stored, missing;
  std::string error;  // why the session ended without a commit (never holds a value)
};

using Log = std::function<void(const std::string&)>;

// Reads frames from in_fd and answers on out_fd until commit, an error or the end of the
// stream. Secrets are staged as they arrive and stored only at commit; any other ending
// removes what was staged.
SessionOutcome serve_session(int in_fd, int out_fd, const Root& root, const SessionOptions& options, const Log& log);

}  // namespace tdx::receiver
