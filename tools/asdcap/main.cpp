#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>

#include "asdcap/nn.hpp"
#include "command.hpp"
#include "failure.hpp"

namespace asdcap::cli {

std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}

bool register_command(int order, std::function<void(CLI::App&)> setup) {
  registry().push_back({order, std::move(setup)});
  return true;
}

}  // namespace asdcap::cli

int main(int argc, char** argv) {
  if (!asdcap::nn::cpu_has_avx2()) {
    std::fprintf(stderr, "asdcap: error: this CPU has no AVX2, FMA and F16C, which asdcap needs (x86-64-v3)\n");
    return 1;
  }
  CLI::App app{"asdcap: unsupervised anomalous sound detection with CLAP, and captions that explain it"};
  app.set_version_flag("--version", std::string("asdcap ") + ASDCAP_VERSION);
  app.require_subcommand(1);
  app.fallthrough(false);
  auto& commands = asdcap::cli::registry();
  std::stable_sort(commands.begin(), commands.end(), [](const auto& a, const auto& b) { return a.order < b.order; });
  for (auto& c : commands) c.setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (...) {
    const asdcap::cli::Failure failure = asdcap::cli::failure_of(std::current_exception());
    std::fprintf(stderr, "asdcap: error: %s\n", failure.message.c_str());
    return failure.exit_code;
  }
  return 0;
}
