#include <tdx/build.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include <tdx/digest_cache.hpp>
#include <tdx/error.hpp>
#include <tdx/fetch.hpp>
#include <tdx/fsutil.hpp>
#include <tdx/image.hpp>
#include <tdx/process.hpp>

extern char** environ;

namespace fs = std::filesystem;

namespace tdx {

Digest build_cache_key(const BuildKeyInputs& in) {
  const BuildSpec& s = *in.spec;
  KeyHasher h(k_cache_schema);
  h.field("builder", s.builder).field("builder_version", in.builder_version);
  for (const auto& [k, v] : in.builder_fields) h.field("builder_field", k).field("value", v);
  h.field("base", in.base);
  h.field("source", in.source);
  h.field("output", s.output);
  for (const auto& [from, to] : s.artifacts) h.field("artifact", from).field("to", to);
  for (const auto& d : in.build_deps) h.field("build_dep", d);
  for (const auto& [k, v] : s.env) h.field("env", k).field("value", v);
  h.field("reproducible", s.reproducible ? "yes" : "no");
  h.field("plan_script", in.plan.script);
  for (const auto& [k, v] : in.plan.env) h.field("plan_env", k).field("value", v);
  for (const auto& [from, to] : in.plan.artifacts) h.field("plan_artifact", from).field("to", to);
  for (std::size_t i = 0; i < in.plan.toolchains.size(); ++i) {
    const auto& t = in.plan.toolchains[i];
    h.field("toolchain", i < in.toolchain_ids.size() ? in.toolchain_ids[i] : t.sha256).field("mount", t.mount);
    h.field("layout", t.layout);
    for (const auto& d : t.executable_dirs) h.field("executable_dir", d);
  }
  return h.finish();
}

ArtifactStore::ArtifactStore(fs::path root) : m_root(std::move(root)) {}

std::optional<fs::path> ArtifactStore::lookup(const std::string& key) const {
  fs::path e = entry(key);
  std::error_code ec;
  if (fs::is_regular_file(e / "manifest.toml", ec) && fs::is_directory(e / "artifacts", ec)) return e / "artifacts";
  return std::nullopt;
}

fs::path ArtifactStore::commit(const std::string& key, const fs::path& staging, const std::string& manifest_toml) {
  atomic_write(staging / "manifest.toml", manifest_toml);
  fs::path target = entry(key);
  remove_tree(target);  // only reached with --no-cache or after a damaged entry
  fs::rename(staging, target);
  return target / "artifacts";
}

BuildRootStore::BuildRootStore(fs::path root, fs::path package_cache)
    : m_root(std::move(root)), m_package_cache(std::move(package_cache)) {}

std::map<std::string, std::string> mkosi_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  env["PATH"] = "/usr/bin:/usr/sbin:/bin:/sbin" + (env.count("PATH") ? ":" + env["PATH"] : std::string());
  return env;
}

fs::path BuildRootStore::ensure(const std::string& distribution, const std::string& release, const AptSources& sources,
                                const StringList& packages, const std::function<void(const std::string&)>& progress) {
  KeyHasher h("tdx-buildroot-v1");
  h.field("distribution", distribution).field("release", release).field("mirror", sources.main)
      .field("security", sources.security);
  for (const auto& p : packages) h.field("package", p);
  std::string key = to_hex(h.finish()).substr(0, 32);
  fs::path root = m_root / key;
  if (fs::exists(root / "build")) return root;

  FileLock lock(m_root / ".locks" / (key + ".lock"));
  if (fs::exists(root / "build")) return root;
  remove_tree(root);  // left by an older tdx or an interrupted rename
  std::string list;
  for (const auto& p : packages) list += (list.empty() ? "" : ", ") + p;
  if (progress) progress("preparing build root (" + distribution + "/" + release + (list.empty() ? "" : " + " + list) + ")");

  TempDir work(m_root, "root-" + key);
  fs::path conf_dir = work.path() / "config";
  std::string conf = "[Distribution]\nDistribution=" + distribution + "\nRelease=" + release +
                     "\nPackageManagerTrees=mkosi.pkgmngr\n\n[Output]\nFormat=directory\nOutput=root\n\n[Content]\n"
                     "Bootable=no\nWithDocs=no\nSourceDateEpoch=0\n";
  std::string pk;
  for (const auto& p : packages) pk += (pk.empty() ? "" : ",") + p;
  if (!pk.empty()) conf += "Packages=" + pk + "\n";
  atomic_write(conf_dir / "mkosi.conf", conf);
  atomic_write(conf_dir / "mkosi.pkgmngr/etc/apt/sources.list.d/mkosi.sources", mkosi_sources_file(sources, release));
  fs::path log = work.path() / "mkosi.log";
  fs::create_directories(m_package_cache);
  auto result = run_process({"mkosi", "-C", conf_dir.string(), "--output-dir", (work.path() / "out").string(),
                             "--package-cache-dir", m_package_cache.string(), "-f", "build"},
                            log, mkosi_environment());
  if (result.exit_code != 0)
    throw Error("mkosi could not make the build root for packages [" + list + "] (exit " +
                std::to_string(result.exit_code) + "); the end of its log:\n" + log_tail(log, 25) +
                "  hint: check that every build_deps entry is a package of " + distribution + "/" + release);
  fs::create_directories(work.path() / "out" / "root" / "build");  // bwrap's mount point for the work tree
  fs::rename(work.path() / "out" / "root", root);
  return root;
}

void require_host_tools(bool need_bwrap) {
  if (!find_program("mkosi"))
    throw Error("mkosi is not installed.\n  hint: run `sudo scripts/setup-debian.sh`, which installs mkosi 24.3 from "
                "bookworm-backports (Debian 12's own mkosi 14 cannot build images here)");
  if (need_bwrap && !find_program("bwrap"))
    throw Error("bubblewrap (bwrap) is not installed; builds run isolated with it.\n"
                "  hint: run `sudo apt-get install bubblewrap` or `sudo scripts/setup-debian.sh`");
}

namespace {

bool starts_with_bytes(const fs::path& file, std::string_view magic) {
  std::ifstream in(file, std::ios::binary);
  std::string head(magic.size(), '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  return in.gcount() == static_cast<std::streamsize>(magic.size()) && head == magic;
}

// Archives often wrap everything in one folder (go/, rust-1.83.0-.../, module@version/): drop such levels.
fs::path strip_single_folders(fs::path root) {
  for (;;) {
    std::vector<fs::path> entries;
    for (const auto& e : fs::directory_iterator(root)) entries.push_back(e.path());
    if (entries.size() != 1 || !fs::is_directory(fs::symlink_status(entries[0]))) return root;
    root = entries[0];
  }
}

// The rust-installer layout: a `components` file naming folders whose trees merge into one prefix.
void merge_rust_components(const fs::path& unpacked, const fs::path& prefix) {
  std::ifstream list(unpacked / "components");
  if (!list) throw Error("toolchain: no 'components' file; this is not a rust-installer tarball");
  std::string component;
  fs::create_directories(prefix);
  while (std::getline(list, component)) {
    if (component.empty()) continue;
    fs::path dir = unpacked / component;
    if (!fs::is_directory(dir)) throw Error("toolchain: component '" + component + "' is listed but missing");
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
      fs::path rel = fs::relative(it->path(), dir);
      if (rel == "manifest.in") continue;
      fs::path target = prefix / rel;
      if (it->is_directory() && !it->is_symlink()) fs::create_directories(target);
      else if (it->is_symlink()) fs::copy_symlink(it->path(), target);
      else fs::copy_file(it->path(), target, fs::copy_options::overwrite_existing);
    }
  }
}

}  // namespace

PreparedToolchain prepare_toolchain(const ToolchainInput& input, const BuildEnvironment& env) {
  if (!input.from_build.empty()) {
    if (env.earlier)
      for (const auto& b : *env.earlier)
        if (b.name == input.from_build) {
          fs::path tree = b.artifacts / b.output.substr(b.output.find_first_not_of('/'));
          if (b.output.empty() || !fs::is_directory(tree))
            throw Error("toolchain from build '" + b.name + "': its output " + b.output + " is not a folder");
          return {tree, "build:" + b.key};
        }
    throw Error("toolchain from build '" + input.from_build +
                "': no such build ran before this one; register it with image.build() first");
  }
  // "sha256:<hex>" or, from a publisher that gives only that, "sha512:<hex>": the toolchain's identity.
  const std::string identity = parse_integrity(input.sha256);
  const bool by_sha512 = identity.rfind("sha512:", 0) == 0;
  KeyHasher h("tdx-toolchain-v1");
  h.field("archive", by_sha512 ? identity : identity.substr(7)).field("layout", input.layout);
  for (const auto& d : input.executable_dirs) h.field("executable_dir", d);
  std::string key = to_hex(h.finish()).substr(0, 32);
  fs::path tree = env.cache_dir / "toolchains" / key;
  if (fs::is_directory(tree)) return {tree, identity};

  FileLock lock(env.cache_dir / "toolchains" / ".locks" / (key + ".lock"));
  if (fs::is_directory(tree)) return {tree, identity};
  fs::path archive;
  if (auto cached = cached_fetch(identity)) {
    archive = *cached;
  } else {
    if (input.url.empty())
      throw Error("toolchain " + identity + " is not in the fetch cache and has no URL to fetch it from" +
                  (input.missing_hint.empty() ? std::string() : "\n  hint: " + input.missing_hint));
    if (env.progress) env.progress("fetching toolchain " + redact_url(input.url));
    // Only a release the builder plugin pins is downloaded here (a compiler=fetch() archive was cached
    // by the evaluation): the expected digest is the official one, so a mismatch means other bytes.
    FetchOptions options;
    options.pinned_by_builder = true;
    options.mismatch_hint = "the expected digest is the official release's, which the builder plugin pins; "
                            "make sure this server or mirror serves the official file";
    archive = fetch_verified(input.url, identity, options).path;
  }
  const std::string short_id = identity.substr(0, 7 + 16);
  if (env.progress) env.progress("unpacking toolchain " + short_id);
  TempDir work(env.cache_dir / "toolchains", "unpack-" + key.substr(0, 12));
  fs::path raw = work.path() / "raw";
  fs::create_directories(raw);
  fs::path log = work.path() / "unpack.log";
  std::vector<std::string> argv = starts_with_bytes(archive, "PK\x03\x04")
                                      ? std::vector<std::string>{"unzip", "-q", archive.string(), "-d", raw.string()}
                                      : std::vector<std::string>{"tar", "-xf", archive.string(), "-C", raw.string()};
  if (run_process(argv, log).exit_code != 0)
    throw Error("toolchain " + identity + ": cannot unpack " + archive.string() + ":\n" + log_tail(log));
  fs::path root = strip_single_folders(raw);
  fs::path ready = work.path() / "ready";
  if (input.layout == "rust-installer") {
    merge_rust_components(root, ready);
  } else if (input.layout.empty()) {
    fs::rename(root, ready);
  } else {
    throw Error("toolchain: unknown layout '" + input.layout + "'");
  }
  for (const auto& d : input.executable_dirs) {
    std::error_code ec;
    for (const auto& f : fs::directory_iterator(ready / d, ec))
      if (f.is_regular_file())
        fs::permissions(f.path(), fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec,
                        fs::perm_options::add);
  }
  fs::rename(ready, tree);
  return {tree, identity};
}

namespace {

std::string relative_image_path(const std::string& image_path) {
  return image_path.substr(image_path.find_first_not_of('/'));
}

void copy_into(const fs::path& from, const fs::path& to) {
  fs::create_directories(to.parent_path());
  if (fs::is_directory(from) && !fs::is_symlink(from)) copy_tree(from, to);
  else if (fs::is_symlink(from)) fs::copy_symlink(from, to);
  else fs::copy_file(from, to);
}

// Files under DESTDIR that are not at or below the declared output.
StringList outside_output(const fs::path& destdir, const std::string& output) {
  StringList stray;
  fs::path keep = relative_image_path(output);
  for (auto it = fs::recursive_directory_iterator(destdir); it != fs::recursive_directory_iterator(); ++it) {
    fs::path rel = fs::relative(it->path(), destdir);
    auto [a, b] = std::mismatch(keep.begin(), keep.end(), rel.begin(), rel.end());
    bool is_ancestor = b == rel.end();  // a directory on the way to the output
    bool is_inside = a == keep.end();
    if (is_inside && it->is_directory() && !it->is_symlink()) it.disable_recursion_pending();
    if (!is_inside && !is_ancestor) {
      stray.push_back("/" + rel.generic_string());
      if (it->is_directory()) it.disable_recursion_pending();
    }
  }
  return stray;
}

std::string manifest_toml(const BuildSpec& spec, const std::string& builder_version, const std::string& key,
                          const StringList& deps, const Digest& source) {
  toml::table t;
  t.insert("schema", k_cache_schema);
  t.insert("key", "sha256-" + key);
  t.insert("builder", spec.builder);
  t.insert("builder_version", builder_version);
  t.insert("name", spec.name);
  t.insert("source_tree", h1_string(source));
  t.insert("output", spec.output);
  toml::table artifacts;
  for (const auto& [from, to] : spec.artifacts) artifacts.insert(from, to);
  t.insert("artifacts", artifacts);
  toml::array d;
  for (const auto& x : deps) d.push_back(x);
  t.insert("build_deps", d);
  toml::array env_keys;
  for (const auto& [k, v] : spec.env) env_keys.push_back(k);
  t.insert("env_keys", env_keys);
  t.insert("reproducible", spec.reproducible);
  std::ostringstream ss;
  ss << "# The build spec that produced this entry (written by tdx).\n" << t << "\n";
  return ss.str();
}

}  // namespace

namespace {
[[noreturn]] void report(const CallSite& site, const std::string& what, const StringList& problems) {
  std::string message = site.str() + ": " + what;
  for (const auto& p : problems) message += "\n  - " + p;
  throw Error(message);
}
}  // namespace

void check_build_spec(BuildSpec& spec) {
  std::set<std::string> deps(spec.build_deps.begin(), spec.build_deps.end());
  spec.build_deps.assign(deps.begin(), deps.end());
  for (const auto& d : spec.build_deps)
    if (!is_valid_package_name(d))
      throw Error(spec.site.str() + ": build_deps entry '" + d + "' is not a valid Debian package name");
  if (spec.name.empty()) throw Error(spec.site.str() + ": a " + spec.builder + " build needs name= (or an output= to name it after)");
  for (const auto& [from, to] : spec.artifacts) {
    if (to.empty() || to[0] != '/')
      throw Error(spec.site.str() + ": artifacts target '" + to + "' of build '" + spec.name + "' must be an absolute image path");
    if (from.empty() || from[0] == '/' || from.find("..") != std::string::npos)
      throw Error(spec.site.str() + ": artifacts source '" + from + "' of build '" + spec.name +
                  "' must be a path relative to the source folder");
  }
  if (!spec.output.empty() && spec.output[0] != '/')
    throw Error(spec.site.str() + ": output '" + spec.output + "' of build '" + spec.name + "' must be an absolute image path");
  GuardedBuilder builder = PluginRegistry::instance().builder(spec.builder);
  StringList problems = builder.validate(spec);
  if (!problems.empty()) report(spec.site, "invalid " + spec.builder + " build '" + spec.name + "':", problems);
}

void check_delivery_config(const DeliveryConfig& config) {
  GuardedDelivery delivery = PluginRegistry::instance().delivery(config.backend);
  StringList problems = delivery.validate(config);
  if (!problems.empty()) report(config.site, "invalid secret delivery '" + config.backend + "':", problems);
}

BuildOutcome run_build(const BuildSpec& spec, const BuildEnvironment& env) {
  auto started = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };
  auto where = spec.site.str() + ": build '" + spec.name + "'";

  GuardedBuilder builder = PluginRegistry::instance().builder(spec.builder);
  BuildPlan plan = builder.plan(spec);
  std::set<std::string> dep_set(spec.build_deps.begin(), spec.build_deps.end());
  dep_set.insert(plan.build_deps.begin(), plan.build_deps.end());
  StringList deps(dep_set.begin(), dep_set.end());

  std::error_code ec;
  if (!fs::is_directory(spec.src, ec))
    throw Error(where + ": source folder '" + spec.src + "' does not exist");
  // Source digests are remembered per checkout folder, so an unchanged tree costs one lstat per file.
  DigestCache digests(DigestCache::file_for(env.cache_dir, spec.src));
  Digest source = tree_hash(spec.src, TreeSelection::checkout, &digests);
  digests.save();
  std::vector<PreparedToolchain> toolchains;
  BuildKeyInputs key_in{&spec, builder.version(), builder.key_fields(spec), plan, deps, env.base, source, {}};
  for (const auto& t : plan.toolchains) {
    if (t.mount.rfind("/opt/", 0) != 0 || t.mount.find("..") != std::string::npos)
      throw Error(where + ": builder '" + spec.builder + "' asked to mount a toolchain at '" + t.mount +
                  "'; toolchains mount below /opt/");
    toolchains.push_back(prepare_toolchain(t, env));
    key_in.toolchain_ids.push_back(toolchains.back().identity);
  }
  std::string key = to_hex(build_cache_key(key_in));

  ArtifactStore store(env.cache_dir / "builds");
  BuildOutcome outcome{spec.name, spec.builder, key, false, 0, {}, spec.output, spec.src, source};
  if (!env.no_cache) {
    if (auto hit = store.lookup(key)) {
      outcome.cached = true;
      outcome.artifacts = *hit;
      outcome.seconds = elapsed();
      return outcome;
    }
  }

  require_host_tools(true);
  FileLock lock(store.lock_path(key));
  if (!env.no_cache) {
    if (auto hit = store.lookup(key)) {  // another tdx built it while we waited
      outcome.cached = true;
      outcome.artifacts = *hit;
      outcome.seconds = elapsed();
      return outcome;
    }
  }

  BuildRootStore roots(env.cache_dir / "buildroots", env.cache_dir / "mkosi-packages");
  fs::path root = roots.ensure(env.distribution, env.release, env.sources, deps, env.progress);
  if (env.progress) env.progress("building " + spec.name + " (" + spec.builder + ")");

  TempDir staging(store.root(), "staging-" + key.substr(0, 16));
  TempDir work(env.cache_dir / "work", key.substr(0, 16));
  fs::path log = staging.path() / "build.log";
  copy_tree(spec.src, work.path() / "src");
  fs::create_directories(work.path() / "out");
  fs::create_directories(work.path() / "home");

  std::map<std::string, std::string> vars = {
      {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
      {"HOME", "/build/home"},
      {"DESTDIR", "/build/out"},
      {"TDX_OUTPUT", spec.output},
      {"LANG", "C.UTF-8"},
      {"TZ", "UTC"},
  };
  if (spec.reproducible) vars["SOURCE_DATE_EPOCH"] = "0";
  for (const auto& [k, v] : plan.env) vars[k] = v;
  for (const auto& [k, v] : spec.env) vars[k] = v;

  std::vector<std::string> argv = {"bwrap", "--ro-bind", root.string(), "/", "--dev", "/dev", "--proc", "/proc",
                                   "--tmpfs", "/tmp", "--tmpfs", "/var/tmp", "--bind", work.path().string(), "/build",
                                   "--unshare-all", "--die-with-parent", "--new-session", "--hostname", "tdx-build",
                                   "--clearenv"};
  if (!toolchains.empty()) argv.insert(argv.end(), {"--tmpfs", "/opt"});
  for (std::size_t i = 0; i < toolchains.size(); ++i)
    argv.insert(argv.end(), {"--ro-bind", toolchains[i].tree.string(), plan.toolchains[i].mount});
  for (const auto& [k, v] : vars) argv.insert(argv.end(), {"--setenv", k, v});
  argv.insert(argv.end(), {"--chdir", "/build/src", "/bin/sh", "-ec", plan.script});
  auto result = run_process(argv, log);
  if (result.exit_code != 0)
    throw Error(where + " failed (exit " + std::to_string(result.exit_code) + "); the end of its log:\n" +
                log_tail(log) + "  full log: " + [&] {
                  fs::path kept = env.cache_dir / "logs" / (spec.name + "-" + key.substr(0, 16) + ".log");
                  fs::create_directories(kept.parent_path());
                  fs::copy_file(log, kept, fs::copy_options::overwrite_existing);
                  return kept.string();
                }());

  // Collect what the build produced into the staging entry.
  fs::path artifacts = staging.path() / "artifacts";
  fs::create_directories(artifacts);
  const StringMap& mapping = plan.artifacts.empty() ? spec.artifacts : plan.artifacts;
  fs::path src_tree = work.path() / "src";
  for (const auto& [from, to] : mapping) {
    fs::path produced = src_tree / from;
    if (!fs::exists(fs::symlink_status(produced)))
      throw Error(where + ": the build finished but did not produce '" + from + "' (declared in artifacts=); the end of its log:\n" +
                  log_tail(log));
    copy_into(produced, artifacts / relative_image_path(to));
  }
  if (mapping.empty() && !spec.output.empty()) {
    fs::path destdir = work.path() / "out";
    fs::path produced = destdir / relative_image_path(spec.output);
    if (fs::exists(fs::symlink_status(produced))) {
      StringList stray = outside_output(destdir, spec.output);
      if (!stray.empty()) {
        std::string list;
        for (const auto& s : stray) list += "\n    " + s;
        throw Error(where + ": the build wrote outside its output " + spec.output + ":" + list +
                    "\n  hint: install only the output into $DESTDIR, or declare artifacts={...}");
      }
      copy_into(produced, artifacts / relative_image_path(spec.output));
    } else if (fs::path fallback = src_tree / fs::path(spec.output).filename(); fs::is_regular_file(fallback)) {
      copy_into(fallback, artifacts / relative_image_path(spec.output));
    } else {
      throw Error(where + ": the build finished but its output " + spec.output + " is missing: it was neither installed at $DESTDIR" +
                  spec.output + " nor left as ./" + fs::path(spec.output).filename().string() +
                  " in the source folder; the end of its log:\n" + log_tail(log));
    }
  }

  outcome.artifacts = store.commit(key, staging.path(), manifest_toml(spec, builder.version(), key, deps, key_in.source));
  staging.release();
  outcome.seconds = elapsed();
  return outcome;
}

}  // namespace tdx
