// tdx lock: pin every module distribution and fetched resource of a TDXfile in tdx.lock.
#include <iostream>

#include <tdx/error.hpp>
#include <tdx/json.hpp>
#include <tdx/lockfile.hpp>

#include "context.hpp"
#include "embed.hpp"

namespace fs = std::filesystem;

namespace tdx::cli {

namespace {

struct LockArgs {
  ProjectArgs project;
  std::vector<std::string> update;
  bool json = false;
};

void write_entry(JsonWriter& w, const std::vector<std::pair<std::string, std::string>>& fields) {
  w.begin_object();
  for (const auto& [k, v] : fields) w.key(k).value(v);
  w.end_object();
}

void print_json(const LockOutcome& outcome) {
  JsonWriter w;
  w.begin_object().key("lockfile").value(outcome.path.string()).key("written").value(outcome.write);
  w.key("modules").begin_array();
  for (const auto& m : outcome.lock.modules) write_entry(w, m.fields());
  w.end_array().key("fetches").begin_array();
  for (const auto& f : outcome.lock.fetches) write_entry(w, f.fields());
  w.end_array().key("changes").begin_array();
  auto kind = [](LockChange::Kind k) {
    return k == LockChange::Kind::added ? "added" : k == LockChange::Kind::removed ? "removed" : "changed";
  };
  for (const auto& c : outcome.changes) {
    w.begin_object().key("kind").value(kind(c.kind)).key("what").value(c.what).key("name").value(c.name);
    w.key("key").value(c.key).key("fields").begin_array();
    for (const auto& [field, values] : c.fields)
      w.begin_object().key("field").value(field).key("old").value(values.first).key("new").value(values.second).end_object();
    w.end_array().end_object();
  }
  w.end_array().end_object();
  std::cout << w.str();
}

void run(const LockArgs& args, bool update_given) {
  const fs::path tdxfile = resolve_project(args.project).tdxfile;
  LockUpdate update;
  for (const auto& name : args.update)  // a bare --update reads as one empty value
    if (!name.empty()) update.names.insert(name);
  update.all = update_given && update.names.empty();

  LockSession lock(tdxfile.parent_path() / "tdx.lock", LockMode::resolve, update);
  python::TdxfileSession session;
  Image& image = session.evaluate(tdxfile);
  LockOutcome outcome = lock.resolve(session.imported_distributions(), &image);
  lock.commit(outcome);

  if (args.json) return print_json(outcome);
  std::size_t nm = outcome.lock.modules.size(), nf = outcome.lock.fetches.size();
  std::cout << outcome.path.string() << ": " << nm << " module" << (nm == 1 ? "" : "s") << ", " << nf << " fetch"
            << (nf == 1 ? "" : "es") << (outcome.write ? " (written)" : " (up to date)") << "\n";
  for (const auto& c : outcome.changes) std::cout << "  " << c.describe() << "\n";
}

}  // namespace

void add_lock_command(CLI::App& app, Context&) {
  auto args = std::make_shared<LockArgs>();
  auto* cmd = app.add_subcommand(
      "lock",
      "Pin the TDXfile's inputs in tdx.lock (next to the TDXfile).\n"
      "Evaluates the TDXfile, then records one [[module]] per Python distribution that provides a module it\n"
      "imported (name, version, source pypi/git/path/url, integrity = tree hash of the installed files) and one\n"
      "[[fetch]] per fetch()/fetch_git() it made and per toolchain its builds will fetch (nothing is built).\n"
      "Entries already locked must still match: a module whose\n"
      "files or version changed, a fetch whose hash changed, or a tag that moved is refused until you accept\n"
      "it with --update (modules in the project's own modules/ folder follow their edits). Entries nothing\n"
      "uses any more are dropped. Locking twice gives the same bytes.\n"
      "  tdx lock                       lock what is new\n"
      "  tdx lock --update              re-resolve everything\n"
      "  tdx lock --update tdx-hello    re-resolve one module (or a fetched URL)\n"
      "`tdx build` adds new entries itself; `tdx build --frozen` (for CI) fails on any difference.");
  add_project_options(cmd, args->project);
  auto* update = cmd->add_option("--update", args->update,
                                 "Accept new values: for all entries (no NAME), or for the modules / fetched URLs named")
                     ->expected(0, CLI::detail::expected_max_vector_size);
  cmd->add_flag("--json", args->json, "Print the resulting lock and the changes as JSON");
  cmd->callback([args, update] {
    try {
      run(*args, update->count() > 0);
    } catch (const python::ExitRequested& e) {
      throw Exit{e.code};
    }
  });
}

}  // namespace tdx::cli
