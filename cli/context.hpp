// What every command shares: output mode and the terminal.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace tdx::cli {

struct Context {
  bool quiet = false;
};

void add_build_command(CLI::App& app, Context& ctx);
void add_plugins_command(CLI::App& app, Context& ctx);
void add_fetch_command(CLI::App& app, Context& ctx);
void add_lock_command(CLI::App& app, Context& ctx);
void add_module_command(CLI::App& app, Context& ctx);
void add_cache_command(CLI::App& app, Context& ctx);

// Thrown by a command that wants a specific exit code without an error message.
struct Exit {
  int code;
};

}  // namespace tdx::cli
