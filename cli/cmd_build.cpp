// tdx build: evaluate the TDXfile, run its builds, assemble and run mkosi.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <variant>
#include <unistd.h>

#include <tdx/error.hpp>
#include <tdx/json.hpp>
#include <tdx/lockfile.hpp>
#include <tdx/paths.hpp>
#include <tdx/pipeline.hpp>
#include <tdx/plugin_host.hpp>
#include <tdx/plugin_util.hpp>
#include <tdx/process.hpp>
#include <tdx/uptodate.hpp>

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

// What `tdx build` reports; the no-op path reports the last build's result from its stamp.
struct BuildResult {
  std::string image, manifest, sha256;
  std::vector<std::pair<std::string, std::string>> builds;  // name, "sha256-<key>"
  std::vector<bool> cached;
  bool evaluated = true, mkosi_skipped = false;
  std::vector<std::pair<std::string, double>> phases;  // name, seconds (this run only)

  // One line for the stamp: tab-separated fields, builds as name=key pairs.
  std::string to_line() const {
    std::string line = image + "\t" + manifest + "\t" + sha256;
    for (const auto& [name, key] : builds) line += "\t" + name + "=" + key;
    return line;
  }
  static std::optional<BuildResult> from_line(const std::string& line) {
    const StringList f = plugin::split(line, '\t');
    if (f.size() < 3) return std::nullopt;
    BuildResult r{f[0], f[1], f[2], {}, {}, false, true};
    for (std::size_t i = 3; i < f.size(); ++i) {
      auto eq = f[i].find('=');
      if (eq == std::string::npos) return std::nullopt;
      r.builds.emplace_back(f[i].substr(0, eq), f[i].substr(eq + 1));
      r.cached.push_back(true);
    }
    return r;
  }

  void print(bool json, double took) const {
    if (json) {
      JsonWriter w;
      w.begin_object().key("image").value(image).key("manifest").value(manifest);
      w.key("sha256").value(sha256).key("seconds").value(static_cast<std::int64_t>(took));
      w.key("evaluated").value(evaluated).key("mkosi_skipped").value(mkosi_skipped);
      w.key("phases").begin_object();
      for (const auto& [name, secs] : phases) w.key(name).value(secs);
      w.end_object();
      w.key("builds").begin_array();
      for (std::size_t i = 0; i < builds.size(); ++i)
        w.begin_object().key("name").value(builds[i].first).key("cache_key").value(builds[i].second)
            .key("cached").value(static_cast<bool>(cached[i])).end_object();
      w.end_array().end_object();
      std::cout << w.str();
    } else {
      std::cout << (mkosi_skipped ? "up to date " : "built ") << image << " in " << seconds(took) << "\n  sha256 " << sha256
                << "\n  manifest " << manifest << "\n";
    }
  }
};

// Besides what the evaluation read: tdx itself, its plugins, mkosi, the apt sources, tdx.lock,
// files a secret-delivery option names, the build sources (as the builds hashed them) and the
// local modules as trees.
UpToDateInputs uptodate_inputs(python::TdxfileSession& session, const Image& image, const fs::path& tdxfile,
                               const std::vector<ModuleOrigin>& modules, const ImageBuildReport& report) {
  UpToDateInputs in;
  in.files = session.files_read();
  std::error_code ec;
  in.files.push_back(fs::canonical("/proc/self/exe", ec));
  for (const auto& entry : fs::directory_iterator(library_dir(), ec))
    if (entry.path().filename().string().rfind("libtdx", 0) == 0) in.files.push_back(entry.path());
  for (const auto& r : PluginRegistry::instance().records()) in.files.push_back(r.path);
  for (const auto& entry : fs::recursive_directory_iterator(library_dir() / "tdx" / "libexec", ec))
    in.files.push_back(entry.path());
  if (auto mkosi = find_program("mkosi")) in.files.push_back(fs::canonical(*mkosi, ec));
  in.files.push_back("/etc/apt/sources.list");
  in.files.push_back("/etc/apt/sources.list.d");
  for (const auto& entry : fs::directory_iterator("/etc/apt/sources.list.d", ec)) in.files.push_back(entry.path());
  in.files.push_back(tdxfile.parent_path() / "tdx.lock");
  if (const auto& d = image.delivery())
    for (const auto& [key, value] : d->options)
      if (const auto* text = std::get_if<std::string>(&value)) {
        fs::path named = fs::path(d->site.file).parent_path() / *text;
        if (!text->empty() && text->find('\n') == std::string::npos && fs::is_regular_file(named, ec))
          in.files.push_back(named);
      }
  for (const auto& b : report.builds) in.hashed_trees.emplace_back(b.src, b.source);  // hashed by the build
  for (const auto& m : modules) {
    if (!m.folder.empty()) in.trees.emplace_back(m.folder, TreeSelection::module_source);
    for (const auto& f : m.files) in.files.push_back(f.second);
  }
  in.outputs = {report.image, report.manifest};
  return in;
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

  // The no-op path: nothing the last build depended on changed (see tdx/uptodate.hpp).
  const fs::path out_dir = args.output_dir.empty() ? project / "build" : fs::absolute(args.output_dir);
  const UpToDateStamp uptodate(out_dir, tdxfile,
                               "format=" + args.format + "\nmirror=" + mirror + "\nfrozen=" + (args.frozen ? "1" : "0") +
                                   "\noutput=" + out_dir.string());
  const bool image_build = args.emit_mkosi.empty();
  if (image_build && !args.no_cache) {
    if (auto line = uptodate.check())
      if (auto last = BuildResult::from_line(*line)) {
        progress("evaluate", "skipped: " + tdxfile.filename().string() +
                                 ", every file it read, its build sources and modules are unchanged since the last build");
        progress("mkosi", "skipped: the image is up to date (--no-cache rebuilds)");
        last->phases = {{"check", since(started)}};
        last->print(args.json, since(started));
        return;
      }
  }
  if (image_build) uptodate.invalidate();

  // tdx.lock is read before evaluation (fetch_git refuses moved tags) and written only after success.
  LockSession lock(tdxfile.parent_path() / "tdx.lock", args.frozen ? LockMode::frozen : LockMode::add);
  python::TdxfileSession session;
  auto t = std::chrono::steady_clock::now();
  Image& image = session.evaluate(tdxfile);
  const std::vector<ModuleOrigin> modules = session.imported_distributions();
  LockOutcome locked = lock.resolve(modules, &image);
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

  const double evaluate_seconds = since(t);
  ImageBuildReport report;
  auto image_started = std::chrono::steady_clock::now();
  {
    python::TdxfileSession::Unlocked unlocked;
    report = build_image(image, options);
  }
  const double image_seconds = since(image_started);
  lock.commit(locked);
  if (!options.emit_dir.empty()) {
    if (args.json) std::cout << JsonWriter().begin_object().key("mkosi_tree").value(options.emit_dir.string()).end_object().str();
    return;
  }
  if (!report.mkosi_skipped) progress("mkosi", "done in " + seconds(report.mkosi_seconds));
  BuildResult result{report.image.string(), report.manifest.string(), report.image_sha256, {}, {}, true,
                     report.mkosi_skipped};
  for (const auto& b : report.builds) {
    result.builds.emplace_back(b.name, "sha256-" + b.key);
    result.cached.push_back(b.cached);
  }
  double build_seconds = 0;
  int hits = 0;
  for (const auto& b : report.builds) build_seconds += b.seconds, hits += b.cached;
  const double mkosi_seconds = report.mkosi_skipped ? 0 : report.mkosi_seconds;
  const double assemble_seconds = std::max(0.0, image_seconds - build_seconds - mkosi_seconds);
  result.phases = {{"evaluate", evaluate_seconds},
                   {"builds", build_seconds},
                   {"assemble", assemble_seconds},
                   {"mkosi", mkosi_seconds}};
  progress("summary", "evaluate and lock " + seconds(evaluate_seconds) + ", builds " + seconds(build_seconds) + " (" +
                          std::to_string(hits) + " cache hit(s), " + std::to_string(report.builds.size() - hits) +
                          " built), assemble " + seconds(assemble_seconds) + ", mkosi " +
                          (report.mkosi_skipped ? std::string("skipped") : seconds(mkosi_seconds)));
  UpToDateInputs inputs = uptodate_inputs(session, image, tdxfile, modules, report);
  inputs.result = result.to_line();
  uptodate.record(inputs);
  result.print(args.json, since(started));
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
