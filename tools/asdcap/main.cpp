#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include <unistd.h>

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
  // OpenBLAS starts a thread pool when it is loaded, and its idle threads spin (sched_yield) for a
  // while before they sleep: for the first ~0.1 s of every process they compete with asdcap's own
  // threads (on 2 cores a one-text `embed` took 0.14 s instead of 0.07 s). asdcap runs OpenBLAS on
  // the calling thread and splits its GEMMs itself (nn::gemm_parallel), and OpenBLAS reads its thread
  // count only when it is loaded: so the process starts itself once more with
  // OPENBLAS_NUM_THREADS=1 (a few milliseconds). A user's own OPENBLAS_NUM_THREADS is kept; if the
  // new start fails, asdcap goes on as it is.
  if (std::getenv("OPENBLAS_NUM_THREADS") == nullptr && ::setenv("OPENBLAS_NUM_THREADS", "1", 0) == 0)
    ::execv("/proc/self/exe", argv);
  if (!asdcap::nn::cpu_has_avx2()) {
    std::fprintf(stderr, "asdcap: error: this CPU lacks AVX2 or FMA, which asdcap needs (x86-64-v3)\n");
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
