// tdx: the command-line shell. The only top-level try/catch; error kinds map to
// exit codes 0 (ok), 1 (failure) and 2 (usage).
#include <iostream>

#include <tdx/error.hpp>

#include "context.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "tdx builds reproducible, measured Intel TDX VM images from a Python TDXfile.\n"
      "Run `tdx build` in a folder holding a TDXfile; `tdx <command> --help` explains each command.",
      "tdx"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tdx " TDX_VERSION);
  tdx::cli::Context ctx;
  app.add_flag("-q,--quiet", ctx.quiet, "Print only errors and the final result");
  tdx::cli::add_build_command(app, ctx);
  tdx::cli::add_plugins_command(app, ctx);
  tdx::cli::add_fetch_command(app, ctx);
  tdx::cli::add_lock_command(app, ctx);
  tdx::cli::add_module_command(app, ctx);
  tdx::cli::add_cache_command(app, ctx);
  tdx::cli::add_secrets_command(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  } catch (const tdx::cli::Exit& e) {
    return e.code;
  } catch (const tdx::UsageError& e) {
    std::cerr << "tdx: usage error: " << e.what() << "\n";
    return 2;
  } catch (const tdx::Error& e) {
    std::cerr << "tdx: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "tdx: internal error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
