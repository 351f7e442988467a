// Evaluating a TDXfile in an embedded CPython (used by the CLI).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>
#include <tdx/image.hpp>
#include <tdx/lockfile.hpp>

namespace tdx::python {

// The TDXfile called sys.exit(code); the CLI exits with that code and builds nothing.
struct ExitRequested {
  int code;
};

// What `tdx module validate` found in a module folder.
struct ModuleCheck {
  std::string name, version, package, api;  // api: "function apply(image)" or "class <Name>"
  std::vector<std::string> problems, notes;
};

// Owns the interpreter; Images recorded by the TDXfile live as long as the session.
class TdxfileSession {
 public:
  TdxfileSession();
  ~TdxfileSession();
  TdxfileSession(const TdxfileSession&) = delete;
  TdxfileSession& operator=(const TdxfileSession&) = delete;

  // Runs the TDXfile and returns the image it defined; throws tdx::Error with the
  // file and line of the failure, or ExitRequested.
  Image& evaluate(const std::filesystem::path& tdxfile);

  // After evaluate(): the distributions (and local modules/*/ folders) providing the modules
  // the TDXfile imported, for tdx.lock (python/tdx/_modules.py says how they are found).
  std::vector<ModuleOrigin> imported_distributions();

  // After evaluate(): every file and folder the evaluation read or listed (the TDXfile, the
  // Python files of every loaded module, data files, the import path's folders), for the
  // no-op path of `tdx build` (core/include/tdx/uptodate.hpp).
  std::vector<std::filesystem::path> files_read();

  // Checks a module folder without installing it (python/tdx/_modules.py: validate).
  ModuleCheck validate_module(const std::filesystem::path& folder);

  // Releases the GIL for long C++ work (builds, mkosi) while alive.
  class Unlocked {
   public:
    Unlocked();
    ~Unlocked();

   private:
    void* m_state;
  };

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

}  // namespace tdx::python
