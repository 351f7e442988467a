// Error kinds thrown at the API edge; the CLI maps them to exit codes.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace tdx {

// Something the user gave (a TDXfile, a flag's value, an input file) or the
// environment is wrong; exit code 1. The message quotes the input and says what to do.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The command line itself is malformed; exit code 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

// The closest candidate to `name` by edit distance, or empty when none is close.
std::string did_you_mean(const std::string& name, const std::vector<std::string>& candidates);

}  // namespace tdx
