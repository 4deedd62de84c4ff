// asdcap convert --laion-clap on the golden tiny checkpoint (../shared/golden-laion): the
// architecture read from the tensors, which tensors the model file keeps, both zip member methods,
// the optimiser state never read, and hostile or truncated checkpoints refused with one line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "asdcap/error.hpp"
#include "laion_golden.hpp"
#include "modelio/gguf.hpp"
#include "modelio/unpickler.hpp"
#include "modelio/zip_tools.hpp"

using namespace asdcap;
using namespace laiontest;

namespace {

nlohmann::json golden_config() {
  std::ifstream in(golden_dir() + "config.json");
  return nlohmann::json::parse(in);
}

// name -> shape of every tensor of a GGUF file.
std::map<std::string, std::vector<int64_t>> gguf_shapes(const std::string& path) {
  const std::string bytes = ziptest::slurp(path);
  const GgufView g = GgufView::parse(bytes.data(), bytes.size(), path);
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& t : g.tensors) {
    out[t.name] = t.shape;
    // A weight stored in the packed panel layout (docs/model-files.md): [ceil(out / 48), in, 48], its
    // PyTorch shape in its key after the output dimension.
    if (auto key = g.kv.find("asdcap.packed." + t.name); key != g.kv.end()) {
      const std::vector<int64_t>& v = key->second.ints;
      out[t.name].assign(v.begin() + 1, v.end());
      int64_t in = 1;
      for (size_t i = 2; i < v.size(); ++i) in *= v[i];
      EXPECT_EQ(t.shape, (std::vector<int64_t>{(v[1] + 47) / 48, in, 48})) << t.name;
    }
  }
  return out;
}

// The message of the Error converting `bytes` (written to a temporary .pt) throws; "" if none.
std::string convert_error(const std::string& bytes, const std::string& name = "hostile.pt") {
  const std::string path = (temp_dir() / name).string();
  ziptest::spit(path, bytes);
  LaionConvertOptions o;
  o.checkpoint = path;
  o.out = (temp_dir() / "hostile.gguf").string();
  try {
    convert_laion(o);
  } catch (const Error& e) {
    EXPECT_FALSE(std::filesystem::exists(o.out));
    return e.what();
  }
  return "";
}

std::string repacked(const std::vector<std::pair<std::string, std::string>>& members) {
  return ziptest::zip_stored(members);
}

}  // namespace

TEST(LaionConvert, ArchitectureComesFromTheTensors) {
  const nlohmann::json cfg = golden_config();
  const auto m = LaionModel::open(converted(golden_checkpoint()), 1);
  const LaionConfig& c = m->config();
  const auto& h = cfg["htsat"];
  EXPECT_EQ(c.audio.embed_dim, h["embed_dim"].get<int>());
  EXPECT_EQ(c.audio.depths, h["depths"].get<std::vector<int>>());
  EXPECT_EQ(c.audio.heads, h["num_heads"].get<std::vector<int>>());
  EXPECT_EQ(c.audio.window, h["window_size"].get<int>());
  EXPECT_EQ(c.audio.patch, h["patch_size"].get<int>());
  EXPECT_EQ(c.audio.num_features, h["num_features"].get<int>());
  EXPECT_EQ(c.audio.num_classes, h["num_classes"].get<int>());
  EXPECT_EQ(c.audio.mlp_ratio, static_cast<int>(h["mlp_ratio"].get<double>()));
  EXPECT_EQ(c.joint_dim, 64);  // README: joint_embed_shape 64
  const auto& a = cfg["audio_cfg"];
  EXPECT_EQ(c.sample_rate, a["sample_rate"].get<int>());
  EXPECT_EQ(c.clip_samples, a["clip_samples"].get<int64_t>());
  EXPECT_EQ(c.hop, a["hop_size"].get<int>());
  EXPECT_EQ(c.n_fft, a["window_size"].get<int>());
  EXPECT_EQ(c.mel_bins, a["mel_bins"].get<int>());
  EXPECT_EQ(c.fmin, a["fmin"].get<float>());
  EXPECT_EQ(c.fmax, a["fmax"].get<float>());
  EXPECT_EQ(c.frames(), 1001);
  const auto& t = cfg["text_branch"]["roberta_config"];
  EXPECT_EQ(c.text_vocab, t["vocab_size"].get<int>());
  EXPECT_EQ(c.text_hidden, t["hidden_size"].get<int>());
  EXPECT_EQ(c.text_layers, t["num_hidden_layers"].get<int>());
  EXPECT_EQ(c.text_intermediate, t["intermediate_size"].get<int>());
  EXPECT_EQ(c.text_positions, t["max_position_embeddings"].get<int>());
  EXPECT_EQ(c.logit_scale_a, cfg["logit_scale_a"].get<float>());
  EXPECT_EQ(c.logit_scale_t, cfg["logit_scale_t"].get<float>());
  EXPECT_TRUE(is_laion_model_file(converted(golden_checkpoint())));
}

TEST(LaionConvert, KeepsEveryTensorButDerivedOnesAndCounters) {
  // Every state-dict key of config.json (without "module.") is in the file with its shape (scalars
  // as [1]), except the two STFT kernels (checked, then computed by FFT), the num_batches_tracked
  // counters and the text branch's position_ids buffer.
  std::map<std::string, std::vector<int64_t>> expected;
  const nlohmann::json cfg = golden_config();
  for (const auto& k : cfg["checkpoint_format"]["state_dict_keys"]) {
    std::string name = k["key"].get<std::string>().substr(7);
    if (name.find("num_batches_tracked") != std::string::npos || name.find("stft.conv_") != std::string::npos ||
        name == "text_branch.embeddings.position_ids")
      continue;
    std::vector<int64_t> shape = k["shape"].get<std::vector<int64_t>>();
    if (shape.empty()) shape = {1};
    expected[name] = shape;
  }
  EXPECT_GT(expected.size(), 150u);
  EXPECT_EQ(gguf_shapes(converted(golden_checkpoint())), expected);
  // Format version 2: the HTSAT Linear layers and the audio projection stored packed.
  const std::string bytes = ziptest::slurp(converted(golden_checkpoint()));
  const GgufView g = GgufView::parse(bytes.data(), bytes.size(), "laion");
  EXPECT_EQ(g.kv.at("asdcap.format_version").i, 2);
  EXPECT_EQ(g.kv.count("asdcap.packed.audio_projection.0.weight"), 1u);
  EXPECT_EQ(g.kv.count("asdcap.packed.audio_branch.layers.0.blocks.0.attn.qkv.weight"), 1u);
}

TEST(LaionConvert, MelBankIsTheReference) {
  const std::string path = converted(golden_checkpoint());
  const std::string bytes = ziptest::slurp(path);
  const GgufView g = GgufView::parse(bytes.data(), bytes.size(), path);
  const std::vector<float> ref = read_npy(golden_dir() + "frontend/melW.npy").as_float();
  for (const auto& t : g.tensors)
    if (t.name == "audio_branch.logmel_extractor.melW") {
      ASSERT_EQ(t.nbytes, ref.size() * 4);
      EXPECT_EQ(std::memcmp(bytes.data() + t.offset, ref.data(), t.nbytes), 0);
      return;
    }
  FAIL() << "no melW";
}

TEST(LaionConvert, StoredMembersAndNoOptimiserStorages) {
  // The golden file's members re-packed STORED (as torch.save writes real checkpoints), once with
  // every member and once without the optimiser's storages: the same tensors either way, so the
  // optimiser state is never read.
  const std::string golden = ziptest::slurp(golden_checkpoint());
  auto members = ziptest::unzip_all(golden);
  const auto pkl = std::find_if(members.begin(), members.end(),
                                [](const auto& m) { return m.first.size() > 8 && m.first.ends_with("/data.pkl"); });
  ASSERT_NE(pkl, members.end());
  EXPECT_EQ(pkl->first, "epoch_top_0/data.pkl");
  const auto parsed =
      modelio::unpickle_checkpoint(reinterpret_cast<const uint8_t*>(pkl->second.data()), pkl->second.size(), "golden");
  std::set<std::string> used;
  for (const auto& t : parsed.state_dict) used.insert("epoch_top_0/data/" + t.storage_key);
  std::vector<std::pair<std::string, std::string>> without;
  size_t dropped = 0;
  for (const auto& m : members) {
    if (m.first.starts_with("epoch_top_0/data/") && !used.count(m.first)) {
      ++dropped;
      continue;
    }
    without.push_back(m);
  }
  EXPECT_GE(dropped, 12u * 2);  // exp_avg and exp_avg_sq of 12 parameters (and their steps)
  const auto reference = LaionModel::open(converted(golden_checkpoint()), 1);
  for (const auto* set : {&members, &without}) {
    const std::string name = set == &members ? "stored.pt" : "no_optimizer.pt";
    const std::string pt = (temp_dir() / name).string();
    ziptest::spit(pt, repacked(*set));
    const auto m = LaionModel::open(converted(pt), 1);
    EXPECT_EQ(gguf_shapes(m->path()), gguf_shapes(reference->path()));
    std::vector<int16_t> window(480000);
    for (size_t i = 0; i < window.size(); ++i) window[i] = static_cast<int16_t>((i * 7919) % 20001 - 10000);
    EXPECT_EQ(m->encode({window.data()})[0].embedding, reference->encode({window.data()})[0].embedding) << name;
  }
}

TEST(LaionConvert, CodeInTheOptimiserIsRefusedAndNeverRun) {
  const std::string marker = "/tmp/asdcap_laion_pwned_" + std::to_string(::getpid());
  std::filesystem::remove(marker);
  auto members = ziptest::unzip_all(ziptest::slurp(golden_checkpoint()));
  for (auto& m : members) {
    if (!m.first.ends_with("/data.pkl")) continue;
    // The last tensor of the pickle is the optimiser's: its rebuild call becomes posix.system.
    const std::string from = "ctorch._utils\n_rebuild_tensor_v2\n";
    const size_t at = m.second.rfind(from);
    ASSERT_NE(at, std::string::npos);
    m.second.replace(at, from.size(), "cposix\nsystem\n");
  }
  const std::string err = convert_error(repacked(members));
  EXPECT_NE(err.find("hostile.pt"), std::string::npos) << err;
  EXPECT_NE(err.find("'posix.system'"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST(LaionConvert, TruncatedCheckpointsGiveOneLine) {
  const std::string golden = ziptest::slurp(golden_checkpoint());
  for (size_t cut : {size_t{0}, size_t{100}, golden.size() / 2, golden.size() - 30}) {
    SCOPED_TRACE(cut);
    const std::string err = convert_error(golden.substr(0, cut), "truncated.pt");
    EXPECT_NE(err.find("truncated.pt"), std::string::npos) << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  }
}

TEST(LaionConvert, OtherCheckpointsAreNotLaion) {
  const std::string panns = std::string(ASDCAP_SHARED_DIR) + "/golden-panns/Cnn14_tiny.pth";
  const std::string err = convert_error(ziptest::slurp(panns), "cnn14.pth");
  EXPECT_NE(err.find("not a LAION-CLAP checkpoint"), std::string::npos) << err;
  // A PANNs or msclap model file is not a LAION-CLAP model file.
  EXPECT_THROW(LaionModel::open(golden_checkpoint()), Error);
}
