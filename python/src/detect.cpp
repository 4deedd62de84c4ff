// Whole runs on a folder: the synthetic dataset, detection (run_detect), comparison (run_compare), explanation
// (run_explain) and the run folder's records read back as Python objects.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "asdcap/compare.hpp"
#include "asdcap/detect.hpp"
#include "asdcap/error.hpp"
#include "asdcap/explain.hpp"
#include "asdcap/llm.hpp"
#include "asdcap/run.hpp"
#include "asdcap/synth.hpp"
#include "bindings.hpp"

namespace asdcap::python {

namespace {

std::string kind_name(ResultRow::Kind kind) {
  switch (kind) {
    case ResultRow::Kind::Id: return "id";
    case ResultRow::Kind::Average: return "average";
    case ResultRow::Kind::Overall: return "overall";
  }
  return "id";
}

}  // namespace

void register_detect(py::module_& m) {
  // ---- synthetic data -------------------------------------------------------------------------
  m.def(
      "synthesize_dataset",
      [](const std::string& out_dir, uint64_t seed, const std::vector<std::string>& machines,
         const std::vector<std::string>& ids, int n_train, int n_test_normal, int n_test_anomaly, double seconds,
         int sample_rate, int threads) {
        SynthOptions o;
        o.out_dir = out_dir;
        o.seed = seed;
        o.machines = machines;
        o.ids = ids;
        o.n_train = n_train;
        o.n_test_normal = n_test_normal;
        o.n_test_anomaly = n_test_anomaly;
        o.seconds = seconds;
        o.sample_rate = sample_rate;
        o.threads = threads;
        py::gil_scoped_release release;
        return synthesize_dataset(o).n_files;
      },
      py::arg("out_dir"), py::kw_only(), py::arg("seed") = 1, py::arg("machines") = SynthOptions{}.machines,
      py::arg("ids") = SynthOptions{}.ids, py::arg("n_train") = 40, py::arg("n_test_normal") = 15,
      py::arg("n_test_anomaly") = 15, py::arg("seconds") = 10.0, py::arg("sample_rate") = 16000, py::arg("threads") = 0,
      "Writes the synthetic machine-sound dataset (DCASE 2020 layout, deterministic by seed) to "
      "out_dir, as `asdcap synth`. Returns the number of files written.");

  // ---- detection ------------------------------------------------------------------------------
  py::class_<ResultRow>(m, "ResultRow", "One line of results.csv: a machine ID, a machine's average or the overall.")
      .def_property_readonly(
          "kind", [](const ResultRow& r) { return kind_name(r.kind); }, "'id', 'average' or 'overall'.")
      .def_readonly("machine", &ResultRow::machine)
      .def_readonly("id", &ResultRow::id)
      .def_readonly("auc", &ResultRow::auc, "Area under the ROC curve (NaN: one class only).")
      .def_readonly("pauc", &ResultRow::pauc, "Partial AUC up to FPR 0.1 (NaN: one class only).")
      .def_readonly("threshold", &ResultRow::threshold)
      .def_readonly("threshold_rule", &ResultRow::threshold_rule)
      .def_readonly("n_normal", &ResultRow::n_normal)
      .def_readonly("n_anomaly", &ResultRow::n_anomaly)
      .def_readonly("n_unknown", &ResultRow::n_unknown)
      .def_readonly("n_train", &ResultRow::n_train)
      .def("__repr__", [](const ResultRow& r) {
        return "ResultRow(machine='" + r.machine + "', id='" + r.id + "', auc=" + std::to_string(r.auc) +
               ", pauc=" + std::to_string(r.pauc) + ")";
      });
  py::class_<DetectSummary>(m, "DetectSummary", "What run_detect did; the run folder holds the rest.")
      .def_readonly("rows", &DetectSummary::rows, "One ResultRow per machine ID.")
      .def_property_readonly(
          "lines", [](const DetectSummary& s) { return result_lines(s); },
          "The lines of results.csv: the IDs, each machine's average and the overall average.")
      .def_property_readonly(
          "table", [](const DetectSummary& s) { return format_results_table(s); },
          "The table `asdcap detect` prints (AUC and pAUC in %).")
      .def_readonly("n_scored", &DetectSummary::n_scored)
      .def_readonly("n_skipped", &DetectSummary::n_skipped)
      .def_readonly("n_embedded", &DetectSummary::n_embedded)
      .def_readonly("n_cache_hits", &DetectSummary::n_cache_hits)
      .def_readonly("out_dir", &DetectSummary::out_dir);
  m.def(
      "run_detect",
      [](const std::string& data_root, const std::string& out_dir, const std::string& backend, const std::string& model,
         int k, const std::string& crop, const std::string& channels, const std::vector<std::string>& machines,
         int threads, bool quiet) {
        DetectOptions o;
        o.data_root = data_root;
        o.out_dir = out_dir;
        o.backend = backend;
        o.model_path = model;
        o.k = k;
        o.crop = CropPolicy::parse(crop);
        o.channels = parse_channel_mode(channels);
        o.machines = machines;
        o.threads = threads;
        o.quiet = quiet;
        py::gil_scoped_release release;
        return run_detect(o);
      },
      py::arg("data_root"), py::arg("out_dir"), py::kw_only(), py::arg("backend") = "acoustic", py::arg("model") = "",
      py::arg("k") = 4, py::arg("crop") = "random", py::arg("channels") = "mean",
      py::arg("machines") = std::vector<std::string>{}, py::arg("threads") = 0, py::arg("quiet") = true,
      "Runs detection on a dataset folder and publishes the run folder out_dir, as `asdcap detect`.");

  py::class_<Neighbor>(m, "Neighbor", "A normal training clip near a scored clip.")
      .def_readonly("file", &Neighbor::file, "Relative to the data root.")
      .def_readonly("path", &Neighbor::path)
      .def_readonly("distance", &Neighbor::distance);
  py::class_<ScoredClip>(m, "ScoredClip", "A test clip's score, decision and nearest normal clips (neighbors.jsonl).")
      .def_readonly("file", &ScoredClip::file)
      .def_readonly("path", &ScoredClip::path)
      .def_readonly("machine", &ScoredClip::machine)
      .def_readonly("id", &ScoredClip::id)
      .def_readonly("split", &ScoredClip::split)
      .def_readonly("label", &ScoredClip::label, "'normal', 'anomaly' or None when the name does not say.")
      .def_readonly("domain", &ScoredClip::domain)
      .def_readonly("score", &ScoredClip::score)
      .def_readonly("threshold", &ScoredClip::threshold)
      .def_readonly("decision", &ScoredClip::decision, "1: flagged as anomalous.")
      .def_readonly("neighbors", &ScoredClip::neighbors, "Nearest first.");
  m.def(
      "read_scores",
      [](const std::string& dir) {
        py::gil_scoped_release release;
        return read_neighbors(dir);
      },
      py::arg("out_dir"), "The scored clips of a run folder (its neighbors.jsonl).");
  m.def(
      "read_results",
      [](const std::string& dir) {
        py::gil_scoped_release release;
        return read_results(dir);
      },
      py::arg("out_dir"), "The lines of a run folder's results.csv.");

  // ---- comparison -----------------------------------------------------------------------------
  py::class_<CompareTable::Row>(m, "CompareRow",
                                "One line of a comparison: a machine ID, a machine's average or the overall; one "
                                "value per system.")
      .def_property_readonly(
          "kind", [](const CompareTable::Row& r) { return kind_name(r.kind); }, "'id', 'average' or 'overall'.")
      .def_readonly("machine", &CompareTable::Row::machine)
      .def_readonly("id", &CompareTable::Row::id)
      .def_readonly("auc", &CompareTable::Row::auc, "AUC per system, in the table's system order (NaN: no value).")
      .def_readonly("pauc", &CompareTable::Row::pauc, "pAUC (FPR up to 0.1) per system (NaN: no value).")
      .def_readonly("best_auc", &CompareTable::Row::best_auc, "Index of the best system by AUC (-1: none).")
      .def_readonly("best_pauc", &CompareTable::Row::best_pauc, "Index of the best system by pAUC (-1: none).")
      .def_property_readonly(
          "published",
          [](const CompareTable::Row& r) -> std::optional<std::map<std::string, double>> {
            if (!r.published) return std::nullopt;
            const auto& names = published_systems();
            const PublishedRow& p = *r.published;
            const double values[] = {p.baseline, p.panns, p.laion_clap, p.ms_clap};
            std::map<std::string, double> out;
            for (size_t i = 0; i < names.size() && i < 4; ++i) out[names[i]] = values[i];
            return out;
          },
          "The papers' published AUC (%) per system for this line of Table I (DCASE 2020 development "
          "data only), else None.")
      .def("__repr__", [](const CompareTable::Row& r) {
        return "CompareRow(machine='" + r.machine + "', id='" + r.id + "', " + std::to_string(r.auc.size()) +
               " systems)";
      });
  py::class_<CompareTable>(m, "CompareTable", "AUC/pAUC of every compared system side by side (table.csv).")
      .def_readonly("systems", &CompareTable::systems, "The systems' labels, in column order.")
      .def_readonly("backends", &CompareTable::backends, "The backend each system ran.")
      .def_readonly("rows", &CompareTable::rows, "Machine IDs, each machine's average, then the overall line.")
      .def_readonly("dcase2020_dev", &CompareTable::dcase2020_dev,
                    "True when the data are DCASE 2020 development data: rows carry the papers' figures.")
      .def_property_readonly(
          "text", [](const CompareTable& t) { return format_compare_table(t); },
          "The table `asdcap compare` prints (AUC in %, the best of each line marked '*').");
  py::class_<CompareResult>(m, "CompareResult", "What run_compare wrote: the table and each system's run folder.")
      .def_readonly("table", &CompareResult::table)
      .def_readonly("run_dirs", &CompareResult::run_dirs, "Each system's run folder, in the table's system order.")
      .def_readonly("out_dir", &CompareResult::out_dir);
  m.def(
      "run_compare",
      [](const std::string& data_root, const std::string& out_dir, const std::vector<std::string>& backends,
         const std::vector<std::string>& models, int k, const std::string& crop, const std::string& channels,
         const std::vector<std::string>& machines, int threads, bool quiet, int epochs, int batch_size,
         double learning_rate, uint64_t seed) {
        CompareOptions o;
        o.data_root = data_root;
        o.out_dir = out_dir;
        for (const auto& b : backends) o.systems.push_back({"", b, ""});
        for (const auto& f : models) o.systems.push_back({"", "", f});
        o.detect.k = k;
        if (!crop.empty()) o.detect.crop = CropPolicy::parse(crop);
        o.detect.channels = parse_channel_mode(channels);
        o.detect.machines = machines;
        o.detect.threads = threads;
        o.detect.quiet = quiet;
        o.detect.training.epochs = epochs;
        o.detect.training.batch_size = batch_size;
        o.detect.training.learning_rate = learning_rate;
        o.detect.training.seed = seed;
        py::gil_scoped_release release;
        return run_compare(o);
      },
      py::arg("data_root"), py::arg("out_dir"), py::kw_only(), py::arg("backends") = std::vector<std::string>{},
      py::arg("models") = std::vector<std::string>{}, py::arg("k") = 4, py::arg("crop") = "",
      py::arg("channels") = "mean", py::arg("machines") = std::vector<std::string>{}, py::arg("threads") = 0,
      py::arg("quiet") = true, py::arg("epochs") = TrainingOptions{}.epochs,
      py::arg("batch_size") = TrainingOptions{}.batch_size, py::arg("learning_rate") = TrainingOptions{}.learning_rate,
      py::arg("seed") = TrainingOptions{}.seed,
      "Runs several detection systems on one dataset, as `asdcap compare` (each clip decoded once for all): "
      "the backends, then the model files, one run folder each under out_dir, and table.csv. No backend "
      "and no model: the weight-free backends. crop '': each backend's default.");
  m.def(
      "read_compare_table",
      [](const std::string& path) {
        py::gil_scoped_release release;
        return read_compare_table(path);
      },
      py::arg("path"), "A comparison's table.csv read back.");

  // ---- explanation ----------------------------------------------------------------------------
  py::class_<ExplainedClip>(m, "ExplainedClip", "A flagged clip and each method's answer (or error).")
      .def_readonly("file", &ExplainedClip::file)
      .def_readonly("machine", &ExplainedClip::machine)
      .def_readonly("id", &ExplainedClip::id)
      .def_readonly("score", &ExplainedClip::score)
      .def_readonly("answers", &ExplainedClip::answers, "method -> answer")
      .def_readonly("errors", &ExplainedClip::errors, "method -> error or the reason it could not run");
  py::class_<ExplainSummary>(m, "ExplainSummary", "What run_explain did; explanations.jsonl holds every record.")
      .def_readonly("n_flagged", &ExplainSummary::n_flagged)
      .def_readonly("n_explained", &ExplainSummary::n_explained)
      .def_readonly("n_skipped", &ExplainSummary::n_skipped)
      .def_readonly("n_errors", &ExplainSummary::n_errors)
      .def_readonly("n_reused", &ExplainSummary::n_reused)
      .def_readonly("n_llm_requests", &ExplainSummary::n_llm_requests)
      .def_readonly("first_llm_error", &ExplainSummary::first_llm_error)
      .def_readonly("methods", &ExplainSummary::methods)
      .def_readonly("unavailable", &ExplainSummary::unavailable, "method -> why it could not run")
      .def_readonly("clips", &ExplainSummary::clips)
      .def_readonly("explanations_path", &ExplainSummary::explanations_path);
  m.def(
      "run_explain",
      [](const std::string& out_dir, const std::string& model, const std::vector<std::string>& methods,
         const std::string& llm, const std::string& llm_model, int top, bool all_flagged,
         const std::vector<std::string>& texts, const std::string& caption_prompt, bool combined_evidence,
         bool reuse_answers, const std::string& data_root, int threads,
         const std::map<std::string, std::string>& machine_parts) {
        ExplainOptions o;
        o.out_dir = out_dir;
        o.model_path = model;
        for (const auto& method : methods)
          for (const auto& parsed : parse_methods(method)) o.methods.push_back(parsed);
        o.llm = llm;
        o.llm_options = llm_options_from_env();
        o.llm_options.model = llm_model;
        o.top = top;
        o.all_flagged = all_flagged;
        o.texts = texts;
        o.caption_prompt = caption_prompt;
        o.combined_evidence = combined_evidence;
        o.reuse_answers = reuse_answers;
        o.data_root = data_root;
        o.threads = threads;
        for (const auto& [type, list] : machine_parts) o.machine_parts[type] = parse_machine_parts(list);
        py::gil_scoped_release release;
        return run_explain(o);
      },
      py::arg("out_dir"), py::kw_only(), py::arg("model") = "", py::arg("methods") = std::vector<std::string>{},
      py::arg("llm") = "offline", py::arg("llm_model") = "", py::arg("top") = 3, py::arg("all_flagged") = false,
      py::arg("texts") = std::vector<std::string>{}, py::arg("caption_prompt") = "Sounds like",
      py::arg("combined_evidence") = false, py::arg("reuse_answers") = true, py::arg("data_root") = "",
      py::arg("threads") = 0, py::arg("machine_parts") = std::map<std::string, std::string>{},
      "Explains the flagged clips of a detection run folder, as `asdcap explain` (llm 'openai' reads "
      "OPENAI_BASE_URL and OPENAI_API_KEY from the environment; machine_parts: type -> 'flow,rotor,gears' "
      "or 'none', as --machine-parts).");
}

}  // namespace asdcap::python
