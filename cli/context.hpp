// What every command shares: output mode and the terminal.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <string>

namespace tdx::cli {

// -C DIR and -f TDXfile, as build and lock take them.
struct ProjectArgs {
  std::string directory = ".";
  std::string file;
};
struct Project {
  std::filesystem::path dir;
  std::filesystem::path tdxfile;
};
// `file_flag` names the TDXfile option where -f/--file means something else (secrets push).
void add_project_options(CLI::App* cmd, ProjectArgs& args, const std::string& file_flag = "-f,--file");
Project resolve_project(const ProjectArgs& args);

struct Context {
  bool quiet = false;
};

void add_build_command(CLI::App& app, Context& ctx);
void add_plugins_command(CLI::App& app, Context& ctx);
void add_fetch_command(CLI::App& app, Context& ctx);
void add_lock_command(CLI::App& app, Context& ctx);
void add_module_command(CLI::App& app, Context& ctx);
void add_cache_command(CLI::App& app, Context& ctx);
void add_secrets_command(CLI::App& app, Context& ctx);

// Thrown by a command that wants a specific exit code without an error message.
struct Exit {
  int code;
};

}  // namespace tdx::cli
