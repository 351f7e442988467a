// Evaluating a TDXfile in an embedded CPython (used by the CLI).
#pragma once

#include <filesystem>
#include <memory>
#include <tdx/image.hpp>

namespace tdx::python {

// The TDXfile called sys.exit(code); the CLI exits with that code and builds nothing.
struct ExitRequested {
  int code;
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
