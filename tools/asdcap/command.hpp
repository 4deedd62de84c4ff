// Subcommand registry of the asdcap CLI. A subcommand lives in its own cmd_<name>.cpp:
//
//   static void setup(CLI::App& app) {
//     auto* sub = app.add_subcommand("name", "one-line description");
//     ... options ...
//     sub->callback([opts] { ... });   // throw asdcap::Error on failure, UsageError for a bad command line
//   }
//   ASDCAP_REGISTER_COMMAND(30, setup)   // 30: position in `asdcap --help`, unique
//
// Positions follow how a user reads `asdcap --help`: demo (10), the run stages detect, explain,
// report (20-40), synth (50), the model tools on single files (60-64), model files (70-71).
// Flags several commands share (--crop, --channels, --threads, --model, --quiet) come from
// options.hpp. main.cpp turns exceptions into one line on stderr and exit codes 0/1/2 (failure.hpp).
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <vector>

namespace asdcap::cli {

struct Command {
  int order;
  std::function<void(CLI::App&)> setup;
};

std::vector<Command>& registry();
bool register_command(int order, std::function<void(CLI::App&)> setup);

}  // namespace asdcap::cli

#define ASDCAP_CONCAT2(a, b) a##b
#define ASDCAP_CONCAT(a, b) ASDCAP_CONCAT2(a, b)
#define ASDCAP_REGISTER_COMMAND(order, fn) \
  static const bool ASDCAP_CONCAT(asdcap_registered_, __LINE__) = ::asdcap::cli::register_command(order, fn);
