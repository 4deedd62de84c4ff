// CaptureSource on an ALSA PCM device (Debian's libasound2).
#include <alsa/asoundlib.h>

#include <cerrno>

#include "asdcap/error.hpp"
#include "asdcap/listen.hpp"

namespace asdcap {

namespace {

// ALSA prints its own diagnostics on stderr (e.g. "ALSA lib pcm.c:...: Unknown PCM nosuch"); the
// failure is reported once, by the exception, instead.
void quiet_alsa(const char*, int, const char*, int, const char*, ...) {}

class AlsaCapture final : public CaptureSource {
 public:
  AlsaCapture(const std::string& device, int rate, int channels) : device_(device), rate_(rate), channels_(channels) {
    snd_lib_error_set_handler(&quiet_alsa);
    int err = snd_pcm_open(&pcm_, device.c_str(), SND_PCM_STREAM_CAPTURE, 0);
    if (err < 0) fail("cannot open for capture", err);
    // Interleaved S16_LE at the asked rate and channel count; ALSA's plug layer converts when the
    // hardware differs. Half a second of buffer.
    err = snd_pcm_set_params(pcm_, SND_PCM_FORMAT_S16_LE, SND_PCM_ACCESS_RW_INTERLEAVED,
                             static_cast<unsigned>(channels), static_cast<unsigned>(rate), 1, 500000);
    if (err < 0) {
      snd_pcm_close(pcm_);
      pcm_ = nullptr;
      fail(
          "cannot capture " + std::to_string(channels) + " channel(s) of 16-bit PCM at " + std::to_string(rate) + " Hz",
          err);
    }
  }
  ~AlsaCapture() override {
    if (pcm_) snd_pcm_close(pcm_);
  }
  AlsaCapture(const AlsaCapture&) = delete;
  AlsaCapture& operator=(const AlsaCapture&) = delete;

  int rate() const override { return rate_; }
  int channels() const override { return channels_; }
  std::string describe() const override { return "ALSA device '" + device_ + "'"; }

  void read(int16_t* out, size_t frames) override {
    size_t done = 0;
    while (done < frames) {
      const snd_pcm_sframes_t n = snd_pcm_readi(pcm_, out + done * static_cast<size_t>(channels_),
                                                static_cast<snd_pcm_uframes_t>(frames - done));
      if (n >= 0) {
        done += static_cast<size_t>(n);
        continue;
      }
      const int err = static_cast<int>(n);
      if (err == -EINTR || err == -EAGAIN) continue;  // a signal (Ctrl-C): the clip is finished regardless
      // An overrun (the reader was late) or a suspend: recover and go on recording; the clip keeps
      // its length.
      if (snd_pcm_recover(pcm_, err, 1) == 0) continue;
      fail("capture failed", err);
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what, int err) const {
    throw IoError(describe() + ": " + what + ": " + snd_strerror(err));
  }

  std::string device_;
  int rate_, channels_;
  snd_pcm_t* pcm_ = nullptr;
};

}  // namespace

std::unique_ptr<CaptureSource> open_alsa_capture(const std::string& device, int rate, int channels) {
  if (device.empty()) throw InvalidArgument("the ALSA device name is empty");
  if (rate < 1000 || rate > 384000)
    throw InvalidArgument("sample rate " + std::to_string(rate) + " Hz is out of range (1000-384000)");
  if (channels < 1 || channels > 32)
    throw InvalidArgument(std::to_string(channels) + " channels is out of range (1-32)");
  return std::make_unique<AlsaCapture>(device, rate, channels);
}

}  // namespace asdcap
