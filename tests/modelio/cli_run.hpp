// Runs the asdcap CLI for the model-file tests: exit code, stdout and stderr (captured through
// files in `dir`, removed afterwards).
#pragma once
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "zip_tools.hpp"

namespace asdcap::test {

struct CliResult {
  int code;
  std::string out, err;
};

inline CliResult run_cli(const std::string& args, const std::string& dir) {
  const std::string out = dir + "/stdout.txt", err = dir + "/stderr.txt";
  const int status = std::system((std::string(ASDCAP_CLI) + " " + args + " >" + out + " 2>" + err).c_str());
  CliResult r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, ziptest::slurp(out), ziptest::slurp(err)};
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

}  // namespace asdcap::test
