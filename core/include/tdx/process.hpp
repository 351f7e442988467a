// Running external programs (mkosi, bwrap) with their output captured to a log.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tdx {

struct ProcessResult {
  int exit_code = 0;     // 128 + signal when killed
};

// Runs argv[0] (looked up in PATH) with stdout and stderr appended to `log`.
// `env` replaces the environment when set.
ProcessResult run_process(const std::vector<std::string>& argv, const std::filesystem::path& log,
                          const std::optional<std::map<std::string, std::string>>& env = std::nullopt,
                          const std::filesystem::path& cwd = {});

// Runs a command and returns what it printed on stdout; throws on failure.
std::string capture_process(const std::vector<std::string>& argv);

// A running program whose stdin, stdout and stderr are pipes held by the caller.
struct PipedProcess {
  int pid = -1;
  int stdin_fd = -1;   // write end
  int stdout_fd = -1;  // read end
  int stderr_fd = -1;  // read end
};
PipedProcess spawn_piped(const std::vector<std::string>& argv);

// Waits for a program started by spawn_piped; after `timeout_ms` it is sent SIGTERM (then
// SIGKILL). Returns its exit code, 128 + signal when killed.
int wait_process(int pid, int timeout_ms);

// The full path of a program in PATH (plus /usr/sbin and /sbin), or nullopt.
std::optional<std::filesystem::path> find_program(const std::string& name);

// The last `lines` lines of a log, indented for an error message.
std::string log_tail(const std::filesystem::path& log, int lines = 20);

}  // namespace tdx
