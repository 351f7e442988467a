#include <tdx/process.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>

#include <tdx/error.hpp>

extern char** environ;

namespace fs = std::filesystem;

namespace tdx {

std::optional<fs::path> find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return fs::exists(name) ? std::optional<fs::path>(name) : std::nullopt;
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin";
  path += ":/usr/sbin:/sbin";
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    fs::path candidate = fs::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

namespace {
int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw Error(std::string("waitpid: ") + std::strerror(errno));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

fs::path installed_program(const std::string& name) {
  auto program = find_program(name);
  if (!program) throw Error("'" + name + "' is not installed (not found in PATH)");
  return *program;
}

// Starts argv with argv[0] resolved to `program`, `actions` applied (and destroyed).
pid_t spawn(const fs::path& program, const std::vector<std::string>& argv, posix_spawn_file_actions_t& actions,
            char** env) {
  std::vector<std::string> args = argv;
  args[0] = program.string();
  auto c_args = c_strings(args);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, c_args[0], &actions, nullptr, c_args.data(), env);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw Error("cannot start " + argv[0] + ": " + std::strerror(rc));
  return pid;
}
}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, const fs::path& log,
                          const std::optional<std::map<std::string, std::string>>& env, const fs::path& cwd) {
  const fs::path program = installed_program(argv.at(0));
  fs::create_directories(log.parent_path());
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot open log " + log.string() + ": " + std::strerror(errno));

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fd, 1);
  posix_spawn_file_actions_adddup2(&actions, fd, 2);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());

  std::vector<std::string> env_strings;
  if (env)
    for (const auto& [k, v] : *env) env_strings.push_back(k + "=" + v);
  auto c_env = c_strings(env_strings);

  pid_t pid = 0;
  try {
    pid = spawn(program, argv, actions, env ? c_env.data() : environ);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  return {wait_for(pid)};
}

std::string capture_process(const std::vector<std::string>& argv) {
  const fs::path program = installed_program(argv.at(0));
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw Error(std::string("pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  pid_t pid = 0;
  try {
    pid = spawn(program, argv, actions, environ);
  } catch (...) {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    throw;
  }
  ::close(pipe_fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(pipe_fds[0]);
  int code = wait_for(pid);
  if (code != 0) throw Error(argv[0] + " exited with status " + std::to_string(code));
  return out;
}

PipedProcess spawn_piped(const std::vector<std::string>& argv) {
  const fs::path program = installed_program(argv.at(0));
  int fds[3][2];
  for (int i = 0; i < 3; ++i)
    if (::pipe2(fds[i], O_CLOEXEC) != 0) {
      for (int j = 0; j < i; ++j) ::close(fds[j][0]), ::close(fds[j][1]);
      throw Error(std::string("pipe: ") + std::strerror(errno));
    }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  for (int i = 0; i < 3; ++i) posix_spawn_file_actions_adddup2(&actions, fds[i][i == 0 ? 0 : 1], i);
  pid_t pid = 0;
  try {
    pid = spawn(program, argv, actions, environ);
  } catch (...) {
    for (auto& f : fds) ::close(f[0]), ::close(f[1]);
    throw;
  }
  ::close(fds[0][0]);  // the child's ends
  ::close(fds[1][1]);
  ::close(fds[2][1]);
  return {pid, fds[0][1], fds[1][0], fds[2][0]};
}

int wait_process(int pid, int timeout_ms) {
  int status = 0;
  bool termed = false, killed = false;
  for (int waited = 0;; waited += 10) {
    pid_t rc = ::waitpid(pid, &status, WNOHANG);
    if (rc == pid) break;
    if (rc < 0 && errno != EINTR) throw Error(std::string("waitpid: ") + std::strerror(errno));
    if (!termed && waited >= timeout_ms) {
      ::kill(pid, SIGTERM);
      termed = true;
    }
    if (!killed && waited >= timeout_ms + 2000) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
    ::usleep(10000);
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

std::string log_tail(const fs::path& log, int lines) {
  std::ifstream in(log);
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (static_cast<int>(last.size()) > lines) last.pop_front();
  }
  std::string out;
  for (const auto& l : last) out += "    | " + l + "\n";
  return out;
}

}  // namespace tdx
