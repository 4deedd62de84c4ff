// msclap's 7-s length rule and asdcap's window policies.
#include <charconv>
#include <cstdlib>
#include <random>

#include "asdcap/audio.hpp"
#include "asdcap/error.hpp"

namespace asdcap {
namespace {

template <typename Int>
bool parse_decimal(const std::string& text, Int& value) {
  if (text.empty() || text.front() < '0' || text.front() > '9') return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

[[noreturn]] void bad_policy(const std::string& text, const std::string& why) {
  throw InvalidArgument("invalid crop policy '" + text + "'" + why +
                        ": expected random, random:SEED, offset:N, cover or whole");
}

// "a 7-s window" for msclap's window, "a window of N samples" for any other.
std::string describe_window(int64_t window) {
  return window == kWindowSamples ? "a 7-s window" : "a window of " + std::to_string(window) + " samples";
}

uint64_t fresh_seed() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

}  // namespace

CropPolicy CropPolicy::parse(const std::string& text) {
  CropPolicy p;
  if (text == "random") return p;
  if (text == "cover") {
    p.kind = Kind::Cover;
    return p;
  }
  if (text == "whole") {
    p.kind = Kind::Whole;
    return p;
  }
  if (text.rfind("random:", 0) == 0) {
    if (!parse_decimal(text.substr(7), p.seed)) bad_policy(text, " (SEED must be an integer 0..2^64-1)");
    p.seeded = true;
    return p;
  }
  if (text.rfind("offset:", 0) == 0) {
    if (!parse_decimal(text.substr(7), p.offset)) bad_policy(text, " (N must be a sample index >= 0)");
    p.kind = Kind::Offset;
    return p;
  }
  bad_policy(text, "");
}

std::string CropPolicy::to_string() const {
  switch (kind) {
    case Kind::Random: return seeded ? "random:" + std::to_string(seed) : "random";
    case Kind::Offset: return "offset:" + std::to_string(offset);
    case Kind::Cover: return "cover";
    case Kind::Whole: return "whole";
  }
  return "random";
}

std::vector<int64_t> window_starts(int64_t length, const CropPolicy& policy, int64_t window) {
  if (window <= 0) throw InvalidArgument("window length must be positive, not " + std::to_string(window));
  if (length <= 0) throw FormatError("cannot take " + describe_window(window) + " of an empty signal");
  if (length <= window || policy.kind == CropPolicy::Kind::Whole) return {0};
  const int64_t last = length - window;
  switch (policy.kind) {
    case CropPolicy::Kind::Random:
      // msclap: random.randrange(length - 308700), so `last` itself is never drawn.
      return {python_randrange(policy.seeded ? policy.seed : fresh_seed(), last)};
    case CropPolicy::Kind::Offset:
      if (policy.offset < 0 || policy.offset > last)
        throw InvalidArgument("crop offset:" + std::to_string(policy.offset) + " is beyond the clip: its signal has " +
                              std::to_string(length) + " samples, so " + describe_window(window) +
                              " can start at most at sample " + std::to_string(last));
      return {policy.offset};
    case CropPolicy::Kind::Cover: {
      std::vector<int64_t> starts;
      for (int64_t s = 0; s < last; s += window) starts.push_back(s);
      starts.push_back(last);
      return starts;
    }
    case CropPolicy::Kind::Whole: break;
  }
  return {0};
}

void require_windowed_crop(const CropPolicy& policy, const std::string& what) {
  if (policy.kind == CropPolicy::Kind::Whole)
    throw InvalidArgument("crop 'whole' does not apply to " + what +
                          ", which takes 7-s windows: use random, random:SEED, offset:N or cover");
}

std::vector<float> window_at(const std::vector<float>& signal, int64_t start, int64_t window) {
  const auto length = static_cast<int64_t>(signal.size());
  if (window <= 0) throw InvalidArgument("window length must be positive, not " + std::to_string(window));
  if (length == 0) throw FormatError("cannot take " + describe_window(window) + " of an empty signal");
  std::vector<float> out(static_cast<size_t>(window));
  if (length <= window) {
    // msclap: repeat the clip ceil(308700 / length) times and keep the first 308700 samples.
    for (int64_t i = 0; i < window; i += length)
      std::copy(signal.begin(), signal.begin() + std::min(length, window - i), out.begin() + i);
    return out;
  }
  if (start < 0 || start > length - window)
    throw InvalidArgument("window start " + std::to_string(start) + " is outside the signal of " +
                          std::to_string(length) + " samples (the last window of " + std::to_string(window) +
                          " samples starts at " + std::to_string(length - window) + ")");
  std::copy(signal.begin() + start, signal.begin() + start + window, out.begin());
  return out;
}

std::vector<std::vector<float>> crop_windows(const std::vector<float>& signal, const CropPolicy& policy,
                                             int64_t window) {
  if (policy.kind == CropPolicy::Kind::Whole) {
    if (signal.empty()) throw FormatError("cannot embed an empty signal");
    return {signal};
  }
  std::vector<std::vector<float>> windows;
  for (int64_t start : window_starts(static_cast<int64_t>(signal.size()), policy, window))
    windows.push_back(window_at(signal, start, window));
  return windows;
}

ClipCrop resolve_clip_crop(const CropPolicy& crop, const std::string& content_sha256) {
  if (!crop.seeded_from_content()) return {crop, crop.to_string()};
  const std::string digits = content_sha256.substr(0, 16);
  if (digits.size() != 16 || digits.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
    throw Error("a clip's content hash must start with 16 hex digits, not '" + digits + "'");
  ClipCrop out{crop, "random@content-sha256"};
  out.policy.seeded = true;
  out.policy.seed = std::strtoull(digits.c_str(), nullptr, 16);
  return out;
}

void WindowMean::add(const std::vector<float>& window_output) {
  if (count_ == 0) sum_.assign(window_output.size(), 0.0);
  if (window_output.size() != sum_.size())
    throw Error("window outputs of one clip differ in size (" + std::to_string(window_output.size()) + " vs " +
                std::to_string(sum_.size()) + ")");
  for (size_t i = 0; i < sum_.size(); ++i) sum_[i] += window_output[i];
  ++count_;
}

std::vector<float> WindowMean::mean() const {
  if (count_ == 0) throw Error("mean of no windows");
  std::vector<float> out(sum_.size());
  for (size_t i = 0; i < sum_.size(); ++i) out[i] = static_cast<float>(sum_[i] / static_cast<double>(count_));
  return out;
}

}  // namespace asdcap
