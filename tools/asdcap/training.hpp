// What detect and demo share for backends that train (ae): the training flags, and Ctrl-C.
#pragma once
#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "asdcap/backend.hpp"
#include "asdcap/error.hpp"

namespace asdcap::cli {

// --epochs, --batch-size, --learning-rate and the training seed (`seed_flag`: detect's --seed; demo,
// whose --seed is the dataset's, names it --train-seed). A bad value is a usage error naming the flag.
inline void add_training(CLI::App* sub, TrainingOptions& t, const std::string& seed_flag) {
  sub->add_option("--epochs", t.epochs, "Training epochs (ae)")->capture_default_str()->check(CLI::Range(1, 100000));
  sub->add_option("--batch-size", t.batch_size, "Training batch size (ae)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  sub->add_option_function<std::string>(
         "--learning-rate",
         [&t](const std::string& text) {
           char* end = nullptr;
           const double v = std::strtod(text.c_str(), &end);
           if (text.empty() || *end != '\0' || !std::isfinite(v) || v <= 0)
             throw UsageError("--learning-rate: '" + text + "' is not a learning rate: expected a positive number");
           t.learning_rate = v;
         },
         "Adam's learning rate (ae)")
      ->type_name("RATE")
      ->default_str([&t] {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g", t.learning_rate);
        return std::string(buf);
      }());
  sub->add_option_function<std::string>(
         seed_flag,
         [&t, seed_flag](const std::string& text) {
           uint64_t v = 0;
           const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
           if (text.empty() || ec != std::errc() || end != text.data() + text.size())
             throw UsageError(seed_flag + ": '" + text + "' is not a seed: expected a whole number from 0 to " +
                              std::to_string(UINT64_MAX));
           t.seed = v;
         },
         "Seed of the initial weights and the shuffles (ae): the same data and seed give the same model")
      ->type_name("N")
      ->default_str(std::to_string(t.seed));
}

// While alive, the first SIGINT (Ctrl-C) only sets a flag that the library polls between clips and
// training batches (DetectOptions::cancelled): the run then stops with one error line and leaves no
// half-written file. A second SIGINT ends the process at once (the default action is restored).
inline volatile std::sig_atomic_t g_interrupted = 0;
class InterruptRequest {
 public:
  InterruptRequest() {
    g_interrupted = 0;
    struct sigaction sa {};
    sa.sa_handler = [](int) { g_interrupted = 1; };
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_);
  }
  ~InterruptRequest() { sigaction(SIGINT, &old_, nullptr); }
  InterruptRequest(const InterruptRequest&) = delete;
  InterruptRequest& operator=(const InterruptRequest&) = delete;
  static bool requested() { return g_interrupted != 0; }

 private:
  struct sigaction old_ {};
};

}  // namespace asdcap::cli
