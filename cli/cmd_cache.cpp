// tdx cache clean: remove build results and/or fetched resources from the user's cache.
#include <cstdio>
#include <iostream>

#include <tdx/cache.hpp>
#include <tdx/json.hpp>

#include "context.hpp"

namespace tdx::cli {

namespace {
std::string human(std::uint64_t bytes) {
  char buf[32];
  if (bytes >= 1000000000) std::snprintf(buf, sizeof buf, "%.2f GB", static_cast<double>(bytes) / 1e9);
  else if (bytes >= 1000000) std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / 1e6);
  else std::snprintf(buf, sizeof buf, "%.0f kB", static_cast<double>(bytes) / 1e3);
  return buf;
}
}  // namespace

void add_cache_command(CLI::App& app, Context& ctx) {
  auto* cache = app.add_subcommand("cache", "Manage tdx's cache (TDX_CACHE_DIR, else $XDG_CACHE_HOME/tdx, else ~/.cache/tdx)");
  cache->require_subcommand(1);
  auto options = std::make_shared<CacheCleanOptions>();
  auto json = std::make_shared<bool>(false);
  auto* clean = cache->add_subcommand(
      "clean",
      "Remove cached results; the next build makes or fetches them again.\n"
      "  --builds    build artifacts (builds/), build roots (buildroots/), kept build logs (logs/),\n"
      "              remembered source digests (digests/)\n"
      "  --fetches   fetch() downloads (fetch/), fetch_git() checkouts (git/), unpacked toolchains (toolchains/)\n"
      "  no flag     all of these, plus unfinished build folders (work/), mkosi's package cache\n"
      "              (mkosi-packages/) and its images after package installation (mkosi-images/)\n"
      "Only these folders are removed, never anything else in the cache folder. Do not run it while a build runs.");
  clean->add_flag("--builds", options->builds, "Remove build results and build roots");
  clean->add_flag("--fetches", options->fetches, "Remove fetched files and git checkouts");
  clean->add_flag("--json", *json, "Machine-readable output");
  clean->callback([options, json, &ctx] {
    CacheCleanReport report = clean_cache(*options);
    if (*json) {
      JsonWriter w;
      w.begin_object().key("cache_dir").value(report.cache_dir.string()).key("removed").begin_array();
      for (const auto& p : report.parts)
        w.begin_object().key("name").value(p.name).key("path").value(p.path.string()).key("existed").value(p.existed)
            .key("files").value(static_cast<std::int64_t>(p.files)).key("bytes").value(static_cast<std::int64_t>(p.bytes))
            .end_object();
      std::cout << w.end_array().end_object().str();
      return;
    }
    std::uint64_t total = 0;
    for (const auto& p : report.parts) {
      total += p.bytes;
      if (p.existed && !ctx.quiet)
        std::cout << "removed " << p.path.string() << " (" << p.files << " files, " << human(p.bytes) << ")\n";
    }
    std::cout << "freed " << human(total) << " in " << report.cache_dir.string() << "\n";
  });
}

}  // namespace tdx::cli
