// A progress bar on stderr, drawn only when stderr is a terminal (and NO_COLOR only removes colour).
#pragma once
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace asdcap {

class Progress {
 public:
  Progress(std::string label, int64_t total);
  ~Progress();               // finishes the line if one was drawn
  void tick(int64_t n = 1);  // thread-safe
  void set_label(std::string label);
  static bool enabled();  // stderr is a TTY and ASDCAP_NO_PROGRESS is unset

 private:
  void draw(bool final);
  std::string label_;
  int64_t total_;
  int64_t done_ = 0;
  bool active_;
  std::mutex mu_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace asdcap
