// Helpers shared by the unit tests: a fresh temporary folder per test and error capture.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <tdx/error.hpp>

namespace tdx::test {

// Each test gets its own folder, made with mkdtemp rather than tdx::TempDir so that
// the fsutil tests do not rely on the code they check.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::path(::testing::TempDir()) / "tdx-unit-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << "mkdtemp failed for " << pattern;
    m_dir = pattern;
  }

  void TearDown() override {
    std::error_code ec;
    if (!m_dir.empty()) std::filesystem::remove_all(m_dir, ec);
  }

  const std::filesystem::path& dir() const { return m_dir; }

  // Writes `content` to dir()/rel, creating parent folders.
  std::filesystem::path write(const std::filesystem::path& rel, const std::string& content) const {
    std::filesystem::path p = m_dir / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << content;
    return p;
  }

 private:
  std::filesystem::path m_dir;
};

// The bytes of a file, read without tdx::read_file.
inline std::string read(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The message of the tdx::Error that `f` throws; a test failure (and "") when it throws none.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const tdx::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a tdx::Error, none was thrown";
  return {};
}

// Sets an environment variable (or unsets it, for nullptr) for the object's lifetime, then puts
// back what was there.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : m_name(name) {
    if (const char* old = std::getenv(name)) m_old = old, m_had = true;
    if (value) ::setenv(name, value, 1);
    else ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (m_had) ::setenv(m_name.c_str(), m_old.c_str(), 1);
    else ::unsetenv(m_name.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string m_name, m_old;
  bool m_had = false;
};

}  // namespace tdx::test
