// msclap's 7-s length rule and asdcap's window policies.
#include <charconv>
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
                        ": expected random, random:SEED, offset:N or cover");
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
  }
  return "random";
}

std::vector<int64_t> window_starts(int64_t length, const CropPolicy& policy) {
  if (length <= 0) throw FormatError("cannot take a 7-s window of an empty signal");
  if (length <= kWindowSamples) return {0};
  const int64_t last = length - kWindowSamples;
  switch (policy.kind) {
    case CropPolicy::Kind::Random:
      // msclap: random.randrange(length - 308700), so `last` itself is never drawn.
      return {python_randrange(policy.seeded ? policy.seed : fresh_seed(), last)};
    case CropPolicy::Kind::Offset:
      if (policy.offset < 0 || policy.offset > last)
        throw InvalidArgument("crop offset:" + std::to_string(policy.offset) +
                              " is beyond the clip: its 44.1 kHz signal has " + std::to_string(length) +
                              " samples, so a 7-s window can start at most at sample " + std::to_string(last));
      return {policy.offset};
    case CropPolicy::Kind::Cover: {
      std::vector<int64_t> starts;
      for (int64_t s = 0; s < last; s += kWindowSamples) starts.push_back(s);
      starts.push_back(last);
      return starts;
    }
  }
  return {0};
}

std::vector<float> window_at(const std::vector<float>& signal, int64_t start) {
  const auto length = static_cast<int64_t>(signal.size());
  if (length == 0) throw FormatError("cannot take a 7-s window of an empty signal");
  std::vector<float> out(static_cast<size_t>(kWindowSamples));
  if (length <= kWindowSamples) {
    // msclap: repeat the clip ceil(308700 / length) times and keep the first 308700 samples.
    for (int64_t i = 0; i < kWindowSamples; i += length)
      std::copy(signal.begin(), signal.begin() + std::min(length, kWindowSamples - i), out.begin() + i);
    return out;
  }
  if (start < 0 || start > length - kWindowSamples)
    throw InvalidArgument("window start " + std::to_string(start) + " is outside the signal of " +
                          std::to_string(length) + " samples (the last 7-s window starts at " +
                          std::to_string(length - kWindowSamples) + ")");
  std::copy(signal.begin() + start, signal.begin() + start + kWindowSamples, out.begin());
  return out;
}

}  // namespace asdcap
