// Dev-only measurement of the autoencoder on a DCASE 2020-layout folder (<type>/train/*.{wav,flac},
// <type>/test/{normal,anomaly}_id_XX_*.{wav,flac}): per machine type and seed, training time, losses,
// AUC per machine ID, the change of the scores between two seeds, and how often the nearest normal
// training clip of a test clip (by the mean bottleneck code, or by the mean output of the last 128-wide
// encoder layer) has the test clip's machine ID. Not part of the build; from the repository root,
// after building build/:
//   g++ -std=c++20 -O2 -fopenmp -I src -I include scripts/dev/ae_eval.cpp build/src/ae/libasdcap_ae.a
//     build/src/modelio/libasdcap_modelio.a build/src/audio/libasdcap_audio.a build/src/nn/libasdcap_nn.a
//     build/src/core/libasdcap_core.a -lopenblas -lfftw3 -lsndfile -lgomp -lcrypto -lz -o /tmp/ae_eval
//   /tmp/ae_eval ../shared/synth-dev [epochs=100] [threads=0]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "ae/model.hpp"

using namespace asdcap;
namespace fs = std::filesystem;

namespace {

struct Clip {
  std::string path, id;
  bool anomaly = false;
  AeClipFeatures f;
};

double auc(const std::vector<double>& normal, const std::vector<double>& anomalous) {
  double s = 0;
  for (double a : anomalous)
    for (double n : normal) s += a > n ? 1 : (a == n ? 0.5 : 0);
  return s / static_cast<double>(anomalous.size() * normal.size());
}

std::string id_of(const std::string& name) {
  const auto p = name.find("id_");
  return p == std::string::npos ? "?" : name.substr(p, 5);
}

std::vector<Clip> clips(const fs::path& dir) {
  std::vector<Clip> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    out.push_back({e.path().string(), id_of(name), name.rfind("anomaly", 0) == 0, ae_clip_features(e.path().string())});
  }
  std::sort(out.begin(), out.end(), [](const Clip& a, const Clip& b) { return a.path < b.path; });
  return out;
}

// Clips of `test` whose nearest clip of `train` (squared distance of the mean activations of BatchNorm
// layer `layer`) has the same machine ID.
int same_id_neighbours(const ae::Network<float>& net, int layer, const std::vector<Clip>& train,
                       const std::vector<Clip>& test) {
  auto embed = [&](const Clip& c) {
    std::vector<double> v;
    ae::infer(net, c.f.data.data(), c.f.rows, 0, nullptr, layer, &v);
    return v;
  };
  std::vector<std::vector<double>> refs;
  for (const Clip& c : train) refs.push_back(embed(c));
  int same = 0;
  for (const Clip& c : test) {
    const std::vector<double> q = embed(c);
    double best = 1e300;
    size_t at = 0;
    for (size_t i = 0; i < refs.size(); ++i) {
      double d = 0;
      for (size_t j = 0; j < q.size(); ++j) d += (q[j] - refs[i][j]) * (q[j] - refs[i][j]);
      if (d < best) best = d, at = i;
    }
    same += train[at].id == c.id;
  }
  return same;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: ae_eval DATASET [epochs] [threads]\n");
    return 2;
  }
  const int epochs = argc > 2 ? std::atoi(argv[2]) : 100, threads = argc > 3 ? std::atoi(argv[3]) : 0;
  std::vector<fs::path> types;
  for (const auto& e : fs::directory_iterator(argv[1]))
    if (e.is_directory()) types.push_back(e.path());
  std::sort(types.begin(), types.end());
  for (const fs::path& type : types) {
    const std::vector<Clip> train = clips(type / "train"), test = clips(type / "test");
    std::vector<float> data;
    for (const Clip& c : train) data.insert(data.end(), c.f.data.begin(), c.f.data.end());
    const int64_t rows = static_cast<int64_t>(data.size()) / kAeVectorDim;
    std::vector<std::vector<double>> scores;
    for (uint64_t seed : {1, 2}) {
      AeTrainOptions o;
      o.epochs = epochs;
      o.seed = seed;
      o.threads = threads;
      const auto t0 = std::chrono::steady_clock::now();
      const AeModel m = AeModel::train(data.data(), rows, o);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::vector<double> s;
      std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> by_id;
      for (const Clip& c : test) {
        s.push_back(m.score(c.f.data.data(), c.f.rows, threads));
        (c.anomaly ? by_id[c.id].second : by_id[c.id].first).push_back(s.back());
      }
      scores.push_back(s);
      std::printf("%s seed %lu: %ld vectors, %.1f s, loss %.3f, val_loss %.3f, AUC", type.filename().c_str(),
                  static_cast<unsigned long>(seed), static_cast<long>(rows), secs, m.info().final_loss,
                  m.info().final_val_loss);
      for (const auto& [id, p] : by_id)
        if (!p.first.empty() && !p.second.empty()) std::printf(" %s %.3f", id.c_str(), auc(p.first, p.second));
      const ae::Network<float>& net = AeModelInternals::network(m);
      std::printf(
          "; nearest normal clip of the same ID: %d/%zu by the 8-dim code, %d/%zu by the last 128-wide encoder layer\n",
          same_id_neighbours(net, 4, train, test), test.size(), same_id_neighbours(net, 3, train, test), test.size());
      std::fflush(stdout);
    }
    double mean = 0, worst = 0;
    for (size_t i = 0; i < test.size(); ++i) {
      const double r = std::fabs(scores[0][i] - scores[1][i]) / scores[0][i];
      mean += r / static_cast<double>(test.size());
      worst = std::max(worst, r);
    }
    std::printf("%s: seed 1 -> 2 changes the scores by %.1f %% on average, %.1f %% at most\n", type.filename().c_str(),
                100 * mean, 100 * worst);
    std::fflush(stdout);
  }
}
