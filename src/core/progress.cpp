#include "core/progress.hpp"

#include <unistd.h>
#include <cstdio>
#include <cstdlib>

namespace asdcap {

bool Progress::enabled() { return ::isatty(STDERR_FILENO) && std::getenv("ASDCAP_NO_PROGRESS") == nullptr; }

Progress::Progress(std::string label, int64_t total)
    : label_(std::move(label)),
      total_(total),
      active_(enabled() && total > 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_ - std::chrono::seconds(1)) {}

Progress::~Progress() {
  std::lock_guard<std::mutex> lock(mu_);
  if (active_) {
    draw(true);
    std::fputc('\n', stderr);
  }
}

void Progress::set_label(std::string label) {
  std::lock_guard<std::mutex> lock(mu_);
  label_ = std::move(label);
}

void Progress::tick(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  done_ += n;
  if (!active_) return;
  auto now = std::chrono::steady_clock::now();
  if (done_ < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  draw(false);
}

void Progress::draw(bool) {
  const int width = 30;
  double frac = total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  if (frac > 1) frac = 1;
  int filled = static_cast<int>(frac * width);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double eta = done_ > 0 ? secs * static_cast<double>(total_ - done_) / static_cast<double>(done_) : 0;
  const bool color = std::getenv("NO_COLOR") == nullptr;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(width - filled), '.');
  std::fprintf(stderr, "\r%s%-18.18s%s [%s] %lld/%lld %5.1fs eta %5.1fs ", color ? "\033[1m" : "", label_.c_str(),
               color ? "\033[0m" : "", bar.c_str(), static_cast<long long>(done_), static_cast<long long>(total_), secs,
               eta);
  std::fflush(stderr);
}

}  // namespace asdcap
