#include <tdx/build.hpp>

#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

namespace {

// One set of key inputs with the spec it points at, copyable as a unit.
struct KeyCase {
  tdx::BuildSpec spec;
  tdx::BuildKeyInputs in;

  std::string key() {
    in.spec = &spec;
    return tdx::to_hex(tdx::build_cache_key(in));
  }
};

KeyCase baseline() {
  KeyCase c;
  c.spec.builder = "c";
  c.spec.name = "api";
  c.spec.src = "/home/dev/project/api";
  c.spec.output = "/usr/bin/api";
  c.spec.artifacts = {{"out/api.1", "/usr/share/man/man1/api.1"}};
  c.spec.build_deps = {"libssl-dev", "pkg-config"};
  c.spec.env = {{"CGO_ENABLED", "0"}, {"LANG", "C.UTF-8"}};
  c.spec.site = {"/home/dev/project/TDXfile", 12};
  c.in.builder_version = "0.1.0";
  c.in.builder_fields = {{"compiler", "debian-gcc"}};
  c.in.plan.script = "make && make install DESTDIR=\"$DESTDIR\"";
  c.in.plan.env = {{"CFLAGS", "-O2"}};
  c.in.build_deps = {"gcc", "libssl-dev", "make", "pkg-config"};
  c.in.base = "debian/bookworm";
  c.in.source = tdx::sha256("the source tree");
  return c;
}

TEST(BuildCacheKey, IdenticalInputsGiveIdenticalKeys) {
  KeyCase a = baseline();
  KeyCase b = baseline();
  EXPECT_EQ(a.key(), b.key());
  EXPECT_EQ(a.key().size(), 64u);
}

TEST(BuildCacheKey, EveryOutputRelevantInputChangesTheKey) {
  const std::vector<std::pair<std::string, std::function<void(KeyCase&)>>> changes = {
      {"one source digest byte", [](KeyCase& c) { c.in.source[31] ^= 0x01; }},
      {"env value", [](KeyCase& c) { c.spec.env["LANG"] = "C"; }},
      {"env key", [](KeyCase& c) { c.spec.env = {{"CGO_ENABLED", "0"}, {"LC_ALL", "C.UTF-8"}}; }},
      {"added env", [](KeyCase& c) { c.spec.env["TZ"] = "UTC"; }},
      {"added build_dep", [](KeyCase& c) { c.in.build_deps.push_back("zlib1g-dev"); }},
      {"changed build_dep", [](KeyCase& c) { c.in.build_deps[0] = "clang"; }},
      {"reproducible", [](KeyCase& c) { c.spec.reproducible = false; }},
      {"builder_version", [](KeyCase& c) { c.in.builder_version = "0.1.1"; }},
      {"builder field value", [](KeyCase& c) { c.in.builder_fields["compiler"] = "debian-clang"; }},
      {"added builder field", [](KeyCase& c) { c.in.builder_fields["lto"] = "yes"; }},
      {"plan script", [](KeyCase& c) { c.in.plan.script += " -j1"; }},
      {"plan env", [](KeyCase& c) { c.in.plan.env["CFLAGS"] = "-O3"; }},
      {"plan artifacts", [](KeyCase& c) { c.in.plan.artifacts = {{"build/api", "/usr/bin/api"}}; }},
      {"builder", [](KeyCase& c) { c.spec.builder = "script"; }},
      {"base", [](KeyCase& c) { c.in.base = "debian/trixie"; }},
      {"output", [](KeyCase& c) { c.spec.output = "/usr/local/bin/api"; }},
      {"artifact destination", [](KeyCase& c) { c.spec.artifacts["out/api.1"] = "/usr/share/man/man1/api2.1"; }},
      {"artifact source", [](KeyCase& c) { c.spec.artifacts = {{"out/api.8", "/usr/share/man/man1/api.1"}}; }},
      // The same bytes moved across a field boundary.
      {"env split differently", [](KeyCase& c) { c.spec.env = {{"CGO_ENABLED0", ""}, {"LANG", "C.UTF-8"}}; }},
      {"build_deps split differently", [](KeyCase& c) { c.in.build_deps = {"gcclibssl-dev", "make", "pkg-config"}; }},
  };
  const std::string reference = baseline().key();
  std::set<std::string> seen{reference};
  for (const auto& [what, change] : changes) {
    KeyCase c = baseline();
    change(c);
    std::string key = c.key();
    EXPECT_NE(key, reference) << "changing the " << what << " kept the key";
    EXPECT_TRUE(seen.insert(key).second) << "changing the " << what << " collided with another change";
  }
}

TEST(BuildCacheKey, HostPathsAndCallSitesAreNotPartOfTheKey) {
  // The same project checked out elsewhere, declared on another line, shares its cache entries.
  KeyCase moved = baseline();
  moved.spec.src = "/srv/ci/checkout-1234/api";
  moved.spec.site = {"/srv/ci/checkout-1234/TDXfile", 40};
  EXPECT_EQ(moved.key(), baseline().key());
}

}  // namespace
