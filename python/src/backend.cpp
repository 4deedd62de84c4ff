// Embedding backends (any name asdcap::make_backend knows), exact k-NN and the detection metrics.
#include <cmath>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "asdcap/audio.hpp"
#include "asdcap/backend.hpp"
#include "asdcap/error.hpp"
#include "asdcap/knn.hpp"
#include "asdcap/metrics.hpp"
#include "bindings.hpp"
#include "core/files.hpp"

namespace asdcap::python {

namespace {

// A backend; embed() of a backend that is not thread-safe is serialised here, so Python threads
// may share one Backend object.
struct Backend {
  std::unique_ptr<EmbeddingBackend> impl;
  std::mutex lock;

  std::vector<float> embed(const std::vector<float>& signal, const CropPolicy& crop) {
    if (impl->thread_safe_embed()) return impl->embed(signal, crop);
    std::lock_guard<std::mutex> guard(lock);
    return impl->embed(signal, crop);
  }
};

std::vector<bool> labels(const std::vector<int>& anomalous) {
  std::vector<bool> out;
  for (int v : anomalous) out.push_back(v != 0);
  return out;
}

void check_sizes(size_t scores, size_t labels_size, const char* what) {
  if (scores != labels_size)
    throw InvalidArgument(std::string(what) + ": scores and labels differ in length (" + std::to_string(scores) +
                          " and " + std::to_string(labels_size) + ")");
}

// A copy of one of a KnnResult's [queries x k] tables.
template <class T>
py::array_t<T> per_query(const KnnResult& r, const std::vector<T>& table) {
  const auto queries = static_cast<py::ssize_t>(r.mean_distance.size());
  return to_numpy(std::vector<T>(table), {queries, static_cast<py::ssize_t>(r.k)});
}

double or_nan(const std::optional<double>& v) { return v ? *v : std::nan(""); }

}  // namespace

void register_backend(py::module_& m) {
  m.def("backend_names", &backend_names, "The embedding backends make_backend knows.");
  py::class_<Backend>(m, "Backend", "An embedding backend: what turns a clip into the vector k-NN detection works on.")
      .def_property_readonly("name", [](const Backend& b) { return b.impl->name(); })
      .def_property_readonly(
          "identity", [](const Backend& b) { return b.impl->identity(); },
          "Name, maths version and model hash: cached embeddings are reused only under it.")
      .def_property_readonly("dim", [](const Backend& b) { return b.impl->dim(); })
      .def_property_readonly(
          "sample_rate", [](const Backend& b) { return b.impl->sample_rate(); },
          "The rate embed() takes signals at (0: the clip's own rate).")
      .def_property_readonly(
          "standardise_per_group", [](const Backend& b) { return b.impl->standardise_per_group(); },
          "True when detection z-scores each dimension against a machine ID's references.")
      .def_property_readonly(
          "distance_order", [](const Backend& b) { return b.impl->distance_order(); },
          "The Minkowski order of detection's k-NN distance (2: Euclidean); pass it to knn_search.")
      .def_property_readonly("thread_safe_embed", [](const Backend& b) { return b.impl->thread_safe_embed(); })
      .def(
          "embed",
          [](Backend& b, const FloatArray& signal, int sample_rate, const std::string& crop) {
            auto x = signal_vector(signal, b.impl->name() + " embed");
            const CropPolicy policy = CropPolicy::parse(crop);
            if (policy.seeded_from_content())
              throw InvalidArgument(
                  "crop 'random' without a seed needs the clip's file: give random:SEED, "
                  "offset:N, cover or whole for signals, or use embed_file");
            std::vector<float> e;
            {
              py::gil_scoped_release release;
              const int rate = b.impl->sample_rate();
              if (rate != 0 && sample_rate != rate) {
                if (sample_rate <= 0)
                  throw InvalidArgument("embed: sample_rate must be positive, got " + std::to_string(sample_rate));
                x = resample(x, sample_rate, rate);
              }
              e = b.embed(x, policy);
            }
            return to_numpy(std::move(e));
          },
          py::arg("signal"), py::arg("sample_rate"), py::arg("crop") = "offset:0",
          "Embeds one mono signal given at `sample_rate` (resampled to the backend's rate with "
          "torchaudio's resampler when they differ).")
      .def(
          "embed_file",
          [](Backend& b, const std::string& path, const std::string& crop, const std::string& channels) {
            const CropPolicy policy = CropPolicy::parse(crop);
            const ChannelMode mode = parse_channel_mode(channels);
            std::vector<float> e;
            {
              py::gil_scoped_release release;
              const auto signal = load_audio(path, b.impl->sample_rate(), mode);
              const std::string sha = policy.seeded_from_content() ? sha256_file(path) : "";
              e = b.embed(signal, resolve_clip_crop(policy, sha).policy);
            }
            return to_numpy(std::move(e));
          },
          py::arg("path"), py::arg("crop") = "random", py::arg("channels") = "mean",
          "Embeds one audio file as detection does (the crop resolved per file, 'random' seeded by "
          "its content).");
  m.def(
      "make_backend",
      [](const std::string& name, const std::string& model, int threads) {
        BackendOptions o;
        o.model_path = model;
        o.threads = threads;
        py::gil_scoped_release release;
        auto b = std::make_unique<Backend>();
        b->impl = make_backend(name, o);
        return b;
      },
      py::arg("name"), py::arg("model") = "", py::arg("threads") = 0,
      "Makes the embedding backend `name` (see backend_names()); `model` is its model file when it "
      "needs one. Raises InvalidArgument for an unknown name, ModelError for a bad model.");

  // ---- k-NN -----------------------------------------------------------------------------------
  py::class_<KnnResult>(m, "KnnResult", "Nearest references of each query, nearest first.")
      .def_readonly("k", &KnnResult::k, "Neighbours per query (min(k, references)).")
      .def_property_readonly(
          "index", [](const KnnResult& r) { return per_query(r, r.index); }, "[queries x k] reference indices (int64).")
      .def_property_readonly(
          "distance", [](const KnnResult& r) { return per_query(r, r.distance); },
          "[queries x k] exact distances (float64).")
      .def_property_readonly(
          "mean_distance", [](const KnnResult& r) { return to_numpy(std::vector<double>(r.mean_distance)); },
          "[queries]: the anomaly score (mean distance to the k nearest).");
  m.def(
      "knn_search",
      [](const FloatArray& queries, const FloatArray& references, int k, bool leave_one_out, int order) {
        const Matrix q = matrix(queries, "knn_search queries"), r = matrix(references, "knn_search references");
        if (q.cols != r.cols)
          throw InvalidArgument("knn_search: queries and references differ in dimension (" + std::to_string(q.cols) +
                                " and " + std::to_string(r.cols) + ")");
        if (k < 1) throw InvalidArgument("knn_search: k must be at least 1, got " + std::to_string(k));
        if (leave_one_out && q.rows != r.rows)
          throw InvalidArgument("knn_search: leave_one_out needs the queries to be the references");
        py::gil_scoped_release release;
        return asdcap::knn_search(q.values.data(), q.rows, r.values.data(), r.rows, q.cols, k, leave_one_out, order);
      },
      py::arg("queries"), py::arg("references"), py::arg("k") = 4, py::arg("leave_one_out") = false,
      py::arg("order") = 2,
      "Exact k nearest references of each query in the Minkowski distance of `order` (2: Euclidean; "
      "a backend's distance_order is what detection uses). With leave_one_out the queries are the "
      "references and reference i is excluded for query i.");

  // ---- metrics --------------------------------------------------------------------------------
  m.def(
      "roc_auc",
      [](const std::vector<double>& scores, const std::vector<int>& anomalous) {
        check_sizes(scores.size(), anomalous.size(), "roc_auc");
        return asdcap::roc_auc(scores, labels(anomalous));
      },
      py::arg("scores"), py::arg("labels"),
      "Area under the ROC curve (higher score = more anomalous, label 1 = anomalous); NaN when a class is empty.");
  m.def(
      "partial_roc_auc",
      [](const std::vector<double>& scores, const std::vector<int>& anomalous, double max_fpr) {
        check_sizes(scores.size(), anomalous.size(), "partial_roc_auc");
        if (!(max_fpr > 0 && max_fpr <= 1))
          throw InvalidArgument("partial_roc_auc: max_fpr must be in (0, 1], got " + std::to_string(max_fpr));
        return asdcap::partial_roc_auc(scores, labels(anomalous), max_fpr);
      },
      py::arg("scores"), py::arg("labels"), py::arg("max_fpr") = 0.1,
      "scikit-learn's roc_auc_score(labels, scores, max_fpr=max_fpr): the McClish-standardised pAUC.");
  m.def(
      "threshold_closest_to_corner",
      [](const std::vector<double>& scores, const std::vector<int>& anomalous) {
        check_sizes(scores.size(), anomalous.size(), "threshold_closest_to_corner");
        return or_nan(asdcap::threshold_closest_to_corner(scores, labels(anomalous)));
      },
      py::arg("scores"), py::arg("labels"),
      "The threshold whose ROC point is closest to (0, 1) (decision: score > threshold); NaN when a class is empty.");
  m.def(
      "gamma_threshold",
      [](const std::vector<double>& normal_scores, double q) {
        return or_nan(asdcap::gamma_threshold(normal_scores, q));
      },
      py::arg("normal_scores"), py::arg("q") = 0.9,
      "The q quantile of a gamma distribution fitted to normal scores; NaN when no fit is possible.");
}

}  // namespace asdcap::python
