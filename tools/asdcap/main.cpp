#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>

#include "asdcap/error.hpp"
#include "command.hpp"

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

namespace {

// One line, whatever the message holds.
void print_error(const std::string& what) {
  std::string line = what;
  std::replace(line.begin(), line.end(), '\n', ' ');
  std::fprintf(stderr, "asdcap: error: %s\n", line.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"asdcap: unsupervised anomalous sound detection with CLAP, and captions that explain it"};
  app.set_version_flag("--version", std::string("asdcap ") + ASDCAP_VERSION);
  app.require_subcommand(1);
  app.fallthrough(false);
  auto& commands = asdcap::cli::registry();
  std::stable_sort(commands.begin(), commands.end(),
                   [](const auto& a, const auto& b) { return a.order < b.order; });
  for (auto& c : commands) c.setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    print_error(std::string(e.what()) + " (see --help)");
    return 2;
  } catch (const asdcap::UsageError& e) {
    print_error(e.what());
    return 2;
  } catch (const asdcap::Error& e) {
    print_error(e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    print_error("out of memory");
    return 1;
  } catch (const std::exception& e) {
    print_error(std::string("internal error: ") + e.what());
    return 1;
  }
  return 0;
}
