// tdx build: evaluate the TDXfile, run its builds, assemble and run mkosi.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <unistd.h>

#include <tdx/error.hpp>
#include <tdx/json.hpp>
#include <tdx/lockfile.hpp>
#include <tdx/pipeline.hpp>

#include "context.hpp"
#include "embed.hpp"

namespace fs = std::filesystem;

namespace tdx::cli {

namespace {

struct BuildArgs {
  ProjectArgs project;
  std::string format;
  std::string output_dir;
  std::string emit_mkosi;
  std::string mirror;
  bool no_cache = false;
  bool frozen = false;
  bool json = false;
};

std::string seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f s", s);
  return buf;
}

void run(const BuildArgs& args, const Context& ctx) {
  auto started = std::chrono::steady_clock::now();
  auto since = [](auto t) { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count(); };
  const Project resolved = resolve_project(args.project);
  const fs::path& project = resolved.dir;
  const fs::path& tdxfile = resolved.tdxfile;
  std::string mirror = args.mirror;
  if (mirror.empty())
    if (const char* m = std::getenv("TDX_MIRROR")) mirror = m;

  auto progress = [&](const std::string& phase, const std::string& message) {
    if (!ctx.quiet) std::cerr << "[" << phase << "] " << message << std::endl;
  };

  // tdx.lock is read before evaluation (fetch_git refuses moved tags) and written only after success.
  LockSession lock(tdxfile.parent_path() / "tdx.lock", args.frozen ? LockMode::frozen : LockMode::add);
  python::TdxfileSession session;
  auto t = std::chrono::steady_clock::now();
  Image& image = session.evaluate(tdxfile);
  LockOutcome locked = lock.resolve(session.imported_distributions(), &image);
  for (const auto& c : locked.changes) progress("lock", "tdx.lock: " + c.describe());
  if (!locked.unused.empty())
    progress("lock", "tdx.lock pins " + std::to_string(locked.unused.size()) +
                         " entries this TDXfile no longer uses; `tdx lock` drops them");
  progress("evaluate", tdxfile.filename().string() + ": image '" + image.name() + "', " +
                           std::to_string(image.builds().size()) + " build(s), " +
                           std::to_string(image.packages().size()) + " package(s) in " + seconds(since(t)));

  ImageBuildOptions options;
  options.project_dir = project;
  options.output_dir = args.output_dir.empty() ? fs::path() : fs::absolute(args.output_dir);
  options.emit_dir = args.emit_mkosi.empty() ? fs::path() : fs::absolute(args.emit_mkosi);
  options.format = args.format;
  options.mirror = mirror;
  options.no_cache = args.no_cache;
  options.progress = progress;
  // The manifest records the lock entries this evaluation used, not those kept for other TDXfiles.
  Lockfile used = locked.lock;
  auto unused = [&](const std::string& what, const std::string& key) {
    return std::any_of(locked.unused.begin(), locked.unused.end(),
                       [&](const LockChange& c) { return c.what == what && c.key == key; });
  };
  std::erase_if(used.modules, [&](const LockedModule& m) { return unused("module", m.key()); });
  std::erase_if(used.fetches, [&](const LockedFetch& f) { return unused("fetch", f.key()); });
  options.lock = &used;

  ImageBuildReport report;
  {
    python::TdxfileSession::Unlocked unlocked;
    report = build_image(image, options);
  }
  lock.commit(locked);
  if (!options.emit_dir.empty()) {
    if (args.json) std::cout << JsonWriter().begin_object().key("mkosi_tree").value(options.emit_dir.string()).end_object().str();
    return;
  }
  if (!report.mkosi_skipped) progress("mkosi", "done in " + seconds(report.mkosi_seconds));
  if (args.json) {
    JsonWriter w;
    w.begin_object().key("image").value(report.image.string()).key("manifest").value(report.manifest.string());
    w.key("sha256").value(report.image_sha256).key("seconds").value(static_cast<std::int64_t>(since(started)));
    w.key("mkosi_skipped").value(report.mkosi_skipped);
    w.key("builds").begin_array();
    for (const auto& b : report.builds)
      w.begin_object().key("name").value(b.name).key("cache_key").value("sha256-" + b.key).key("cached").value(b.cached).end_object();
    w.end_array().end_object();
    std::cout << w.str();
  } else {
    std::cout << (report.mkosi_skipped ? "up to date " : "built ") << report.image.string() << " in " << seconds(since(started)) << "\n  sha256 "
              << report.image_sha256 << "\n  manifest " << report.manifest.string() << "\n";
  }
}

}  // namespace

void add_build_command(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<BuildArgs>();
  auto* cmd = app.add_subcommand(
      "build",
      "Build the image a TDXfile describes.\n"
      "Evaluates ./TDXfile, runs each build in an isolated build root (network off; results cached in\n"
      "~/.cache/tdx/builds), generates an mkosi tree and runs mkosi. The image and a JSON manifest land\n"
      "in ./build/. Example: tdx build --format directory");
  add_project_options(cmd, args->project);
  cmd->add_option("--format", args->format, "Image format: disk (bootable, with a UKI; the default) or directory")
      ->check(CLI::IsMember({"disk", "directory"}));
  cmd->add_option("-o,--output-dir", args->output_dir, "Where the image and manifest go (default: <directory>/build)");
  cmd->add_option("--emit-mkosi", args->emit_mkosi, "Write the generated mkosi tree to DIR and stop (no image)");
  cmd->add_option("--mirror", args->mirror,
                  "Debian mirror URL for the image (default: TDX_MIRROR, else the machine's apt sources)");
  cmd->add_flag("--no-cache", args->no_cache, "Run every build even when its result is cached");
  cmd->add_flag("--frozen", args->frozen,
                "CI mode: fail, listing every difference, unless tdx.lock exists and matches exactly what the\n"
                "TDXfile resolved (modules and fetches); never writes tdx.lock. Without it, new entries are added");
  cmd->add_flag("--json", args->json, "Print the result as JSON on stdout (progress stays on stderr)");
  cmd->callback([args, &ctx] {
    try {
      run(*args, ctx);
    } catch (const python::ExitRequested& e) {
      throw Exit{e.code};
    }
  });
}

}  // namespace tdx::cli
