#include <tdx/pipeline.hpp>

#include <chrono>
#include <cstdio>
#include <sstream>

#include <tdx/error.hpp>
#include <tdx/fsutil.hpp>
#include <tdx/hash.hpp>
#include <tdx/json.hpp>
#include <tdx/paths.hpp>
#include <tdx/plugin_util.hpp>
#include <tdx/process.hpp>

namespace fs = std::filesystem;

namespace tdx {

namespace {

using plugin::split;

void say(const ImageBuildOptions& o, const std::string& phase, const std::string& message) {
  if (o.progress) o.progress(phase, message);
}

void write_fields(JsonWriter& w, const std::vector<std::pair<std::string, std::string>>& fields) {
  w.begin_object();
  for (const auto& [k, v] : fields) w.key(k).value(v);
  w.end_object();
}

// Every input of the image, so that two manifests compare field by field: the lock entries,
// the builds' cache keys, the installed packages with their versions, the tools' versions.
std::string manifest_json(const Image& image, const ImageBuildReport& r, const std::string& image_file,
                          const ImageBuildOptions& options) {
  JsonWriter w;
  w.begin_object();
  w.key("schema").value("tdx-manifest-v2");
  w.key("name").value(image.name()).key("base").value(image.base()).key("format").value(image.format());
  w.key("tdx_version").value(TDX_VERSION).key("mkosi_version").value(r.mkosi_version);
  w.key("image").begin_object().key("file").value(image_file).key("sha256").value(r.image_sha256).end_object();
  w.key("inputs_digest").value(r.inputs_digest);
  w.key("packages").strings(image.packages());
  w.key("installed_packages").begin_array();
  for (const auto& line : r.installed_packages) {
    auto fields = split(line, '\t');
    fields.resize(3);
    w.begin_object().key("name").value(fields[0]).key("version").value(fields[1]).key("architecture").value(fields[2])
        .end_object();
  }
  w.end_array();
  w.key("lock").begin_object();
  w.key("modules").begin_array();
  if (options.lock)
    for (const auto& m : options.lock->modules) write_fields(w, m.fields());
  w.end_array();
  w.key("fetches").begin_array();
  if (options.lock)
    for (const auto& f : options.lock->fetches) write_fields(w, f.fields());
  w.end_array();
  w.end_object();
  w.key("users").begin_array();
  for (const auto& u : image.users()) {
    w.begin_object().key("name").value(u.name).key("uid");
    if (u.uid) w.value(*u.uid); else w.null();
    w.key("system").value(u.system).key("home").value(u.home).key("groups").strings(u.groups).end_object();
  }
  w.end_array();
  w.key("services").begin_array();
  for (const auto& s : image.services())
    w.begin_object().key("name").value(s.name).key("enabled").value(s.enable)
        .key("unit_sha256").value(to_hex(sha256(s.unit_text()))).end_object();
  w.end_array();
  w.key("builds").begin_array();
  for (const auto& b : r.builds)
    w.begin_object().key("name").value(b.name).key("builder").value(b.builder).key("cache_key").value("sha256-" + b.key)
        .end_object();
  w.end_array();
  w.key("secrets").begin_array();
  for (const auto& s : image.secrets())
    w.begin_object().key("name").value(s.name).key("dest").value(s.dest).key("owner").value(s.owner)
        .key("group").value(s.group).key("mode").value(s.mode).end_object();
  w.end_array();
  // What the delivery backend put into the image, by path and digest (never a secret's value: there is none).
  w.key("secret_delivery");
  if (image.delivery() && r.delivery) {
    w.begin_object().key("backend").value(image.delivery()->backend).key("files").begin_array();
    for (const auto& f : r.delivery->files) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", f.mode);
      w.begin_object().key("path").value(f.path).key("mode").value(mode).key("sha256").value(to_hex(sha256(f.content)))
          .end_object();
    }
    w.end_array().key("packages").strings(r.delivery->packages).key("units").strings(r.delivery->enable_units);
    w.key("users").begin_array();
    for (const auto& u : r.delivery->users) w.value(u.name);
    w.end_array().end_object();
  } else {
    w.null();
  }
  w.end_object();
  return w.str();
}

std::string read_file_or_empty(const fs::path& path) {
  try {
    return read_file(path);
  } catch (const Error&) {
    return "";
  }
}

// A plan must not fight the recipe: no path or user both write, and no secret left without a way in.
void check_delivery_plan(const Image& image, const DeliveryPlan& plan) {
  const std::string who = "secret delivery '" + image.delivery()->backend + "' (" + image.delivery()->site.str() + ")";
  for (const auto& f : plan.files) {
    if (f.path.empty() || f.path[0] != '/') throw Error(who + " planned a file at '" + f.path + "', not an absolute path");
    if (std::string other = image.claimed_by(f.path); !other.empty())
      throw Error(who + " writes " + f.path + ", which the " + other + " also writes; move one of them");
  }
  for (const auto& u : plan.users)
    for (const auto& mine : image.users())
      if (mine.name == u.name)
        throw Error(who + " creates user '" + u.name + "', which image.user() at " + mine.site.str() +
                    " also creates; give the delivery account another name (user=)");
  for (const auto& p : plan.packages)
    if (!is_valid_package_name(p)) throw Error(who + " asked for package '" + p + "', which is not a Debian package name");
}

}  // namespace

std::string image_inputs_digest(const GeneratedTree& tree) {
  KeyHasher h("tdx-image-inputs-v1");
  for (const auto& [rel, entry] : tree.files)
    h.field("file", rel).field("mode", std::to_string(entry.second)).field("content", entry.first);
  for (const auto& a : tree.artifacts) h.field("artifact", a.key);  // content-addressed: the key is the content
  // The mkosi program itself: a different mkosi may make a different image from the same tree.
  if (auto mkosi = find_program("mkosi")) {
    std::error_code ec;
    fs::path real = fs::canonical(*mkosi, ec);
    h.field("mkosi", real.string()).field("mkosi_size", std::to_string(fs::file_size(real, ec)));
    h.field("mkosi_mtime", std::to_string(fs::last_write_time(real, ec).time_since_epoch().count()));
  }
  return to_hex(h.finish());
}

GeneratedTree assemble(const Image& image, const ImageBuildOptions& options, ImageBuildReport& report) {
  if (!image.secrets().empty() && !image.delivery()) {
    const SecretDecl& s = image.secrets().front();
    throw Error(s.site.str() + ": secret '" + s.name + "' is declared, but the image has no way to receive it; add "
                "image.secret_delivery(\"ssh\", authorized_key=...), (\"vsock\") or (\"script\", fetch_script=...)");
  }
  std::vector<BuildOutcome>& builds = report.builds;
  AssemblyInputs in;
  in.project_dir = options.project_dir;
  in.sources = resolve_apt_sources(image.release(), options.mirror);

  BuildEnvironment env{cache_dir(), in.sources, image.distribution(), image.release(), image.base(), options.no_cache,
                       [&](const std::string& m) { say(options, "build", m); }, &builds};
  for (const auto& b : image.builds()) {
    BuildOutcome outcome = run_build(b.spec, env);
    char took[32];
    std::snprintf(took, sizeof took, "%.2f s", outcome.seconds);
    say(options, "build", b.spec.name + ": " + (outcome.cached ? "cache hit" : "built") + " in " + took + " (sha256-" +
                              outcome.key.substr(0, 16) + ")");
    if (b.spec.install) in.artifacts.push_back({outcome.key, outcome.artifacts});
    builds.push_back(std::move(outcome));
  }

  if (image.delivery()) {
    GuardedDelivery delivery = PluginRegistry::instance().delivery(image.delivery()->backend);
    DeliveryPlan plan = delivery.plan(*image.delivery(), image.secrets());
    check_delivery_plan(image, plan);
    say(options, "assemble", "secret delivery '" + image.delivery()->backend + "': " + std::to_string(plan.files.size()) +
                                 " file(s), " + std::to_string(image.secrets().size()) + " secret(s) declared");
    in.delivery = plan;
    report.delivery = std::move(plan);
  }
  return generate_mkosi_tree(image, in);
}

ImageBuildReport build_image(Image& image, const ImageBuildOptions& options) {
  if (!options.format.empty()) image.set_format(options.format);
  ImageBuildReport report;
  if (options.emit_dir.empty()) require_host_tools(!image.builds().empty());

  say(options, "assemble", "generating the mkosi configuration");
  GeneratedTree tree = assemble(image, options, report);
  if (!options.emit_dir.empty()) {
    write_mkosi_tree(tree, options.emit_dir);
    say(options, "assemble", "wrote the mkosi tree to " + options.emit_dir.string());
    return report;
  }

  fs::path out_dir = options.output_dir.empty() ? options.project_dir / "build" : options.output_dir;
  fs::create_directories(out_dir);
  std::string image_file = image.name() + (image.format() == "disk" ? ".raw" : "");
  report.image = out_dir / image_file;
  report.manifest = out_dir / (image.name() + ".manifest.json");

  // Nothing mkosi would see changed, and the previous outputs are in place: skip mkosi.
  const fs::path stamp = out_dir / (image.name() + ".inputs");
  const std::string inputs = image_inputs_digest(tree);
  report.inputs_digest = inputs;
  if (!options.no_cache && fs::exists(report.image) && fs::exists(report.manifest)) {
    std::istringstream previous(read_file_or_empty(stamp));
    std::string digest, sha, version;
    std::getline(previous, digest);
    std::getline(previous, sha);
    std::getline(previous, version);
    if (digest == inputs && !sha.empty()) {
      report.image_sha256 = sha;
      report.mkosi_version = version;
      report.mkosi_skipped = true;
      say(options, "mkosi", "skipped: no input of the image changed since it was built (--no-cache rebuilds)");
      return report;
    }
  }
  fs::remove(stamp);  // stale from here on, until the new image is in place

  TempDir work(out_dir, "tdx-work");
  write_mkosi_tree(tree, work.path() / "mkosi");
  report.mkosi_version = capture_process({"mkosi", "--version"});
  while (!report.mkosi_version.empty() && std::isspace(static_cast<unsigned char>(report.mkosi_version.back())))
    report.mkosi_version.pop_back();

  say(options, "mkosi", "building the " + image.format() + " image with " + report.mkosi_version);
  auto started = std::chrono::steady_clock::now();
  fs::path log = out_dir / (image.name() + ".mkosi.log");
  fs::remove(log);
  fs::create_directories(cache_dir() / "mkosi-packages");
  // One folder per package set, and one mkosi at a time per folder: mkosi rewrites its cached
  // image in place, so a second run copying it meanwhile would see half of it.
  const fs::path images_cache = cache_dir() / "mkosi-images" / tree.package_set.substr(0, 16);
  fs::create_directories(images_cache);
  FileLock slot(images_cache.string() + ".lock");
  auto result = run_process({"mkosi", "-C", (work.path() / "mkosi").string(), "--output-dir",
                             (work.path() / "out").string(), "--package-cache-dir",
                             (cache_dir() / "mkosi-packages").string(), "--cache-dir", images_cache.string(),
                             "-f", "build"},
                            log, mkosi_environment());
  report.mkosi_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (result.exit_code != 0)
    throw Error("mkosi failed to build image '" + image.name() + "' (exit " + std::to_string(result.exit_code) +
                "); the end of its log:\n" + log_tail(log, 25) + "  full log: " + log.string());

  const fs::path packages = work.path() / "out" / k_packages_list;
  if (fs::exists(packages)) {
    for (auto& line : split(read_file(packages), '\n'))
      if (!line.empty()) report.installed_packages.push_back(std::move(line));
    fs::remove(packages);
  }

  // Move the finished outputs over the previous ones only now that mkosi succeeded.
  for (const auto& entry : fs::directory_iterator(work.path() / "out")) {
    fs::path target = out_dir / entry.path().filename();
    remove_tree(target);
    fs::rename(entry.path(), target);
  }
  if (image.format() == "disk") {
    report.image_sha256 = to_hex(sha256_file(report.image));
  } else {
    report.image_sha256 = h1_string(tree_hash(report.image));
  }
  atomic_write(report.manifest, manifest_json(image, report, image_file, options));
  atomic_write(stamp, inputs + "\n" + report.image_sha256 + "\n" + report.mkosi_version + "\n");
  return report;
}

}  // namespace tdx
