// Signal models of the synthetic machines. Each model builds the machine's sound from physically
// motivated parts (rotation tones, flow noise, impacts), with per-ID traits drawn from the ID's
// seed and per-clip variation (speed, load, gain, background level) from the clip's seed.
#include <algorithm>
#include <functional>
#include <map>

#include "asdcap/error.hpp"
#include "asdcap/synth.hpp"
#include "synth_dsp.hpp"

namespace asdcap {
using namespace synthdsp;

namespace {

constexpr double kLevel = 0.05;  // nominal RMS of a machine's main component

struct Ctx {
  Rng& id_rng;  // traits of this machine ID (same for all its clips)
  Rng& rng;     // this clip
  const std::string& fault;
  size_t n;
  double fs, speed, load;
  double t(size_t i) const { return static_cast<double>(i) / fs; }
};

void add(std::vector<double>& a, const std::vector<double>& b, double g = 1) {
  for (size_t i = 0; i < a.size(); ++i) a[i] += g * b[i];
}

// Bearing wear: a high-frequency tone with slight frequency wander.
void bearing_whine(Ctx& c, std::vector<double>& x, double base_freq) {
  auto fm = wander(c.rng, c.n, c.fs, 0.5, 0.003);
  add_tone(x, base_freq * c.rng.uniform(0.98, 1.02), kLevel * std::pow(10, c.rng.uniform(-12, -6) / 20), c.fs,
           c.rng.uniform(0, 6.28), &fm);
}

// Amplitude modulation at the rotation rate, as an unbalanced rotor produces.
void modulate(std::vector<double>& x, double freq, double depth, double fs) {
  for (size_t i = 0; i < x.size(); ++i) x[i] *= 1 + depth * std::sin(2 * M_PI * freq * static_cast<double>(i) / fs);
}

std::vector<double> fan(Ctx& c) {
  double rpm = c.id_rng.uniform(1100, 1700), hump = c.id_rng.uniform(500, 1100), whine = c.id_rng.uniform(2800, 5200);
  int blades = c.id_rng.integer(5, 9);
  double fr = rpm / 60 * c.speed;
  auto flow = filtered(white(c.rng, c.n), Biquad::bandpass(hump * c.speed, 0.8, c.fs));
  add(flow, filtered(white(c.rng, c.n), Biquad::lowpass(2500, 0.7, c.fs)), 0.5);
  scale_to_rms(flow, kLevel * (0.85 + 0.3 * c.load));
  auto turb = wander(c.rng, c.n, c.fs, 1.0, 0.05);
  for (size_t i = 0; i < c.n; ++i) flow[i] *= turb[i];
  if (c.fault == "clogging")  // blocked intake: much less air moves
    for (auto& v : flow) v *= std::pow(10, -c.rng.uniform(6, 10) / 20);
  std::vector<double> x = flow;
  auto fm = wander(c.rng, c.n, c.fs, 0.3, 0.004);
  double bpf = fr * blades;
  add_tone(x, bpf, 0.03, c.fs, c.rng.uniform(0, 6.28), &fm);
  add_tone(x, 2 * bpf, 0.012, c.fs, c.rng.uniform(0, 6.28), &fm);
  add_tone(x, 3 * bpf, 0.006, c.fs, c.rng.uniform(0, 6.28), &fm);
  if (c.fault == "imbalance") {
    add_tone(x, fr, 0.03, c.fs, 0, &fm);
    add_tone(x, 2 * fr, 0.015, c.fs, 0, &fm);
    modulate(x, fr, c.rng.uniform(0.3, 0.5), c.fs);
  } else {
    modulate(x, fr, 0.04, c.fs);
  }
  if (c.fault == "bearing_whine") bearing_whine(c, x, whine);
  return x;
}

std::vector<double> pump(Ctx& c) {
  double fr = c.id_rng.uniform(24, 48), flow_c = c.id_rng.uniform(700, 1500), whine = c.id_rng.uniform(3000, 5500);
  int vanes = c.id_rng.integer(5, 7);
  auto flow = filtered(white(c.rng, c.n), Biquad::bandpass(flow_c, 0.6, c.fs));
  scale_to_rms(flow, kLevel * (0.85 + 0.3 * c.load));
  auto turb = wander(c.rng, c.n, c.fs, 1.5, 0.12);
  for (size_t i = 0; i < c.n; ++i) flow[i] *= turb[i];
  double vane_amp = 0.025;
  if (c.fault == "clogging") {  // blocked impeller/suction: flow noise collapses, vane tone rises
    for (auto& v : flow) v *= std::pow(10, -c.rng.uniform(8, 12) / 20);
    vane_amp *= 1.4;
  }
  std::vector<double> x = flow;
  add_tone(x, 100, 0.01, c.fs, c.rng.uniform(0, 6.28));  // motor magnetostriction (mains 2x, 3x...)
  add_tone(x, 200, 0.006, c.fs, c.rng.uniform(0, 6.28));
  add_tone(x, 300, 0.003, c.fs, c.rng.uniform(0, 6.28));
  auto fm = wander(c.rng, c.n, c.fs, 0.3, 0.004);
  double vp = fr * c.speed * vanes;
  add_tone(x, vp, vane_amp, c.fs, c.rng.uniform(0, 6.28), &fm);
  add_tone(x, 2 * vp, vane_amp * 0.4, c.fs, c.rng.uniform(0, 6.28), &fm);
  if (c.fault == "knocking") {  // cavitation: bubbles collapsing as random sharp bursts
    double rate = c.rng.uniform(4, 10);
    for (double t = c.rng.uniform(0, 1 / rate); t < c.t(c.n); t += -std::log(std::max(c.rng.uniform(), 1e-9)) / rate)
      add_burst(x, c.rng, static_cast<size_t>(t * c.fs), c.rng.uniform(2500, 5000), c.rng.uniform(0.003, 0.006),
                kLevel * c.rng.uniform(1.5, 3), c.fs);
  }
  if (c.fault == "bearing_whine") bearing_whine(c, x, whine);
  return x;
}

std::vector<double> slider(Ctx& c) {
  double period = c.id_rng.uniform(1.6, 2.6) / c.speed, fric_c = c.id_rng.uniform(1800, 3500);
  double motor = c.id_rng.uniform(500, 900), whine = c.id_rng.uniform(3000, 5000);
  double offset = c.rng.uniform(0, period);
  // Velocity profile: forward during 40% of the cycle, pause, back during 40%, pause.
  std::vector<double> vel(c.n);
  std::vector<size_t> stops;  // samples where a stroke starts or ends
  for (size_t i = 0; i < c.n; ++i) {
    double ph = std::fmod(c.t(i) + offset, period) / period;
    double v = 0;
    if (ph < 0.4)
      v = std::sin(M_PI * ph / 0.4);
    else if (ph >= 0.5 && ph < 0.9)
      v = std::sin(M_PI * (ph - 0.5) / 0.4);
    vel[i] = v;
    if (i > 0 && (vel[i - 1] == 0) != (v == 0)) stops.push_back(i);
  }
  auto fric = filtered(white(c.rng, c.n), Biquad::bandpass(fric_c, 0.7, c.fs));
  scale_to_rms(fric, kLevel * 1.4 * (0.85 + 0.3 * c.load));
  std::vector<double> x(c.n);
  for (size_t i = 0; i < c.n; ++i) x[i] = fric[i] * vel[i];
  add(x, filtered(white(c.rng, c.n), Biquad::lowpass(1000, 0.7, c.fs)), 0.005);
  std::vector<double> fm(c.n), motor_tone(c.n, 0.0);
  for (size_t i = 0; i < c.n; ++i) fm[i] = 0.6 + 0.4 * vel[i];
  add_tone(motor_tone, motor, 0.02, c.fs, c.rng.uniform(0, 6.28), &fm);
  for (size_t i = 0; i < c.n; ++i) x[i] += motor_tone[i] * vel[i];
  for (size_t s : stops) add_ping(x, s, 120, 0.015, 0.03, c.fs);  // soft end-of-stroke thud
  if (c.fault == "rattling") {                                    // a loose part clicking while the carriage moves
    double rate = c.rng.uniform(15, 30), f = c.rng.uniform(2500, 4000);
    for (double t = 0; t < c.t(c.n); t += 1 / rate) {
      size_t at = static_cast<size_t>((t + c.rng.uniform(0, 0.2 / rate)) * c.fs);
      if (at < c.n && vel[at] > 0.2) add_ping(x, at, f, 0.002, 0.2 * vel[at], c.fs);
    }
  }
  if (c.fault == "knocking")  // hard impacts at the end stops (worn damper)
    for (size_t s : stops) {
      add_ping(x, s, 150, 0.03, 0.15, c.fs);
      add_burst(x, c.rng, s, 3000, 0.004, 0.1, c.fs);
    }
  if (c.fault == "bearing_whine") {
    std::vector<double> w(c.n, 0.0);
    bearing_whine(c, w, whine);
    for (size_t i = 0; i < c.n; ++i) x[i] += w[i] * (0.3 + vel[i]);
  }
  return x;
}

std::vector<double> valve(Ctx& c) {
  double period = c.id_rng.uniform(0.9, 1.5), open_frac = c.id_rng.uniform(0.3, 0.5);
  double click = c.id_rng.uniform(2000, 4000), hiss_c = c.id_rng.uniform(1500, 2500);
  auto x = filtered(white(c.rng, c.n), Biquad::lowpass(800, 0.7, c.fs));
  scale_to_rms(x, 0.01 * (0.85 + 0.3 * c.load));  // the system's pump, far away
  auto hiss = filtered(white(c.rng, c.n), Biquad::highpass(hiss_c, 0.7, c.fs));
  scale_to_rms(hiss, 0.03);
  if (c.fault == "clogging")  // obstructed seat: little flow when open
    for (auto& v : hiss) v *= std::pow(10, -c.rng.uniform(10, 16) / 20);
  std::vector<double> gate(c.n, 0.0);
  const double ramp = 0.015 * c.fs;
  for (double t0 = c.rng.uniform(-period, 0); t0 < c.t(c.n); t0 += period) {
    double open_t = t0 + c.rng.uniform(-0.02, 0.02), close_t = open_t + period * open_frac;
    auto a = static_cast<int64_t>(open_t * c.fs), b = static_cast<int64_t>(close_t * c.fs);
    for (int64_t i = std::max<int64_t>(a, 0); i < std::min<int64_t>(b, static_cast<int64_t>(c.n)); ++i)
      gate[static_cast<size_t>(i)] = std::min({1.0, (i - a) / ramp, (b - i) / ramp});
    if (a >= 0 && a < static_cast<int64_t>(c.n)) {
      add_ping(x, static_cast<size_t>(a), click, 0.004, 0.08, c.fs);
      add_ping(x, static_cast<size_t>(a), click * 1.7, 0.002, 0.04, c.fs);
      if (c.fault == "rattling") {  // chattering armature: extra clicks right after opening
        int extra = c.rng.integer(5, 9);
        double gap = c.rng.uniform(0.02, 0.035);
        for (int e = 1; e <= extra; ++e)
          add_ping(x, static_cast<size_t>(a + static_cast<int64_t>(e * gap * c.fs)), click * 1.1, 0.003, 0.1, c.fs);
      }
    }
    if (b >= 0 && b < static_cast<int64_t>(c.n)) {
      add_ping(x, static_cast<size_t>(b), click * 0.9, 0.004, 0.06, c.fs);
      if (c.fault == "knocking")  // water hammer when the valve slams shut
        add_ping(x, static_cast<size_t>(b), c.rng.uniform(60, 100), 0.05, 0.15, c.fs);
    }
  }
  for (size_t i = 0; i < c.n; ++i) x[i] += hiss[i] * gate[i];
  return x;
}

std::vector<double> gearbox(Ctx& c) {
  double fr = c.id_rng.uniform(12, 25) * c.speed, whine = c.id_rng.uniform(3000, 5500);
  int teeth = c.id_rng.integer(20, 35);
  auto x = filtered(white(c.rng, c.n), Biquad::lowpass(4000, 0.7, c.fs));
  scale_to_rms(x, 0.012 * (0.85 + 0.3 * c.load));
  std::vector<double> mesh(c.n, 0.0);
  auto fm = wander(c.rng, c.n, c.fs, 0.3, 0.003);
  const double amps[] = {0.03, 0.015, 0.008};
  for (int h = 1; h <= 3; ++h)
    add_tone(mesh, h * fr * teeth, amps[h - 1] * (0.9 + 0.2 * c.load), c.fs, c.rng.uniform(0, 6.28), &fm);
  modulate(mesh, fr, c.fault == "imbalance" ? c.rng.uniform(0.4, 0.6) : 0.1, c.fs);
  if (c.fault == "imbalance") add_tone(mesh, fr, 0.02, c.fs, 0, &fm);
  add(x, mesh);
  if (c.fault == "knocking") {  // broken tooth: an impact once per revolution
    double f = c.rng.uniform(1500, 3000), phase = c.rng.uniform(0, 1 / fr);
    for (double t = phase; t < c.t(c.n); t += 1 / fr) add_ping(x, static_cast<size_t>(t * c.fs), f, 0.003, 0.06, c.fs);
  }
  if (c.fault == "bearing_whine") bearing_whine(c, x, whine);
  return x;
}

using Model = std::function<std::vector<double>(Ctx&)>;
const std::map<std::string, std::pair<Model, std::vector<std::string>>>& models() {
  static const std::map<std::string, std::pair<Model, std::vector<std::string>>> m = {
      {"fan", {fan, {"imbalance", "bearing_whine", "clogging", "dropout"}}},
      {"pump", {pump, {"clogging", "knocking", "bearing_whine", "dropout"}}},
      {"slider", {slider, {"rattling", "knocking", "bearing_whine"}}},
      {"valve", {valve, {"clogging", "rattling", "knocking"}}},
      {"gearbox", {gearbox, {"knocking", "imbalance", "bearing_whine", "dropout"}}},
  };
  return m;
}

// Intermittent drop-outs: the machine sound nearly vanishes a few times (loose contact, stall).
void dropouts(Rng& rng, std::vector<double>& x, double fs) {
  int k = rng.integer(3, 5);
  const double ramp = 0.01 * fs;
  for (int e = 0; e < k; ++e) {
    double start = (e + rng.uniform(0.15, 0.6)) * static_cast<double>(x.size()) / k;
    double len = rng.uniform(0.15, 0.4) * fs;
    double floor = std::pow(10, -rng.uniform(20, 30) / 20);
    for (double i = std::max(0.0, start - ramp);
         i < std::min<double>(static_cast<double>(x.size()), start + len + ramp); i += 1) {
      double in = std::min({1.0, (i - (start - ramp)) / ramp, (start + len + ramp - i) / ramp});
      x[static_cast<size_t>(i)] *= 1 - (1 - floor) * std::clamp(in, 0.0, 1.0);
    }
  }
}

}  // namespace

std::vector<std::string> synth_machine_types() {
  std::vector<std::string> v;
  for (auto& [k, m] : models()) v.push_back(k);
  return v;
}

std::vector<std::string> synth_faults(const std::string& machine) {
  auto it = models().find(machine);
  if (it == models().end()) throw InvalidArgument("synth: unknown machine type '" + machine + "'");
  return it->second.second;
}

std::vector<float> synthesize_clip(const std::string& machine, const std::string& id, const std::string& fault,
                                   uint64_t seed, uint64_t clip_index, double seconds, int sample_rate) {
  auto faults = synth_faults(machine);
  if (fault != "none" && std::find(faults.begin(), faults.end(), fault) == faults.end())
    throw InvalidArgument("synth: machine type " + machine + " has no fault '" + fault + "'");
  if (!(seconds > 0 && seconds <= 600) || sample_rate < 8000 || sample_rate > 192000)
    throw InvalidArgument("synth: bad clip length or sample rate");
  Rng id_rng(hash_mix(seed, machine + "/" + id));
  Rng rng(hash_mix(seed, machine + "/" + id + "/" + std::to_string(clip_index) + "/" + fault));
  Ctx c{id_rng,
        rng,
        fault,
        static_cast<size_t>(seconds * sample_rate),
        static_cast<double>(sample_rate),
        rng.uniform(0.97, 1.03),
        rng.uniform(0, 1)};
  const double gain_db = rng.uniform(-2, 2), snr_db = rng.uniform(12, 25);
  auto x = models().at(machine).first(c);
  if (fault == "dropout") dropouts(rng, x, c.fs);
  auto bg = pink(rng, c.n);
  add(bg, filtered(white(rng, c.n), Biquad::lowpass(200, 0.7, c.fs)), 2.0);  // room rumble
  scale_to_rms(bg, kLevel * std::pow(10, -snr_db / 20));
  std::vector<float> out(c.n);
  const double g = std::pow(10, gain_db / 20) * 2.0;  // nominal machine level about -20 dBFS
  for (size_t i = 0; i < c.n; ++i) out[i] = static_cast<float>(std::clamp((x[i] + bg[i]) * g, -1.0, 1.0));
  return out;
}

}  // namespace asdcap
