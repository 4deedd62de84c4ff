// msclap's _generate_beam (clapcap), step for step, with the decoder's key/value cache (or, for the
// test oracle, the whole sequence recomputed every step as msclap does).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "asdcap/caption.hpp"
#include "asdcap/error.hpp"
#include "asdcap/nn.hpp"
#include "core/parallel.hpp"

namespace asdcap {

namespace {

// torch: (logits / temperature).softmax(-1) in float32 (max-subtracted exp, then multiply by 1/sum).
// Leaves exp(x - max) in row and returns 1/sum; log(row[j] * inv) is msclap's log-probability.
float softmax_parts(float* row, int64_t n, float temperature) {
  const float t = temperature > 0.f ? temperature : 1.f;
  if (t != 1.f)
    for (int64_t j = 0; j < n; ++j) row[j] /= t;
  float mx = -INFINITY;
  for (int64_t j = 0; j < n; ++j) mx = std::max(mx, row[j]);
  return 1.f / static_cast<float>(nn::exp_shifted_sum(row, n, mx));
}

float log_prob(float e, float inv) { return std::log(e * inv); }

struct Candidate {
  float value;
  int64_t index;
};
// torch.topk order: larger value first; equal values by lower flat index.
bool better(const Candidate& a, const Candidate& b) {
  return a.value > b.value || (a.value == b.value && a.index < b.index);
}

// The k best of values[0..n) (NaN never selected before a number).
std::vector<Candidate> top_k(const float* values, int64_t n, int k) {
  std::vector<Candidate> best;
  best.reserve(static_cast<size_t>(k) + 1);
  float floor = -INFINITY;  // value of the k-th best so far (once k are held)
  for (int64_t i = 0; i < n; ++i) {
    if (values[i] < floor) continue;  // fast path; NaN also fails the next test
    const float v = std::isnan(values[i]) ? -INFINITY : values[i];
    if (static_cast<int>(best.size()) == k && !better({v, i}, best.back())) continue;
    Candidate c{v, i};
    auto pos = std::upper_bound(best.begin(), best.end(), c, better);
    best.insert(pos, c);
    if (static_cast<int>(best.size()) > k) best.pop_back();
    if (static_cast<int>(best.size()) == k) floor = best.back().value;
  }
  return best;
}

// One caption's beams between decoding steps (msclap's tokens, scores, seq_lengths, is_stopped).
struct BeamState {
  int beam = 0;
  int64_t vocab = 0, stop_id = 0;
  float temperature = 1.f;
  std::vector<std::vector<int64_t>> tokens;
  std::vector<float> scores, lengths;
  std::vector<bool> stopped;
  int steps = 0;

  BeamState(int beam_, int64_t vocab_, float temperature_, int64_t stop_id_)
      : beam(beam_), vocab(vocab_), stop_id(stop_id_), temperature(temperature_) {
    const auto B = static_cast<size_t>(beam);
    tokens.resize(B);
    scores.resize(B);
    lengths.assign(B, 1.f);
    stopped.assign(B, false);
  }
  bool done(int max_tokens) const {
    return steps >= max_tokens || std::all_of(stopped.begin(), stopped.end(), [](bool s) { return s; });
  }
  std::vector<int64_t> last_tokens() const {
    std::vector<int64_t> last;
    for (const auto& t : tokens) last.push_back(t.back());
    return last;
  }

  // Step 1: `row` [vocab] are the logits after the prefix alone (overwritten).
  void first(float* row) {
    const float inv = softmax_parts(row, vocab, temperature);
    // log(p) is monotonic in exp(x - max): the k best log-probs are among the best exponentials
    // (a few extra cover rounding ties); torch.topk order on the log-probs themselves.
    auto best = top_k(row, vocab, static_cast<int>(std::min<int64_t>(vocab, beam + 8)));
    for (auto& c : best) c.value = log_prob(c.value, inv);
    std::partial_sort(best.begin(), best.begin() + beam, best.end(), better);
    for (size_t b = 0; b < static_cast<size_t>(beam); ++b) {
      tokens[b].push_back(best[b].index);
      scores[b] = best[b].value;
      stopped[b] = best[b].index == stop_id;
    }
    steps = 1;
  }

  // A later step: `logits` [beam, vocab] of every beam's last token (overwritten). Returns the
  // re-selection: new beam b continues old beam src[b].
  std::vector<int64_t> advance(float* logits) {
    const auto B = static_cast<size_t>(beam);
    const int64_t V = vocab;
    // Candidate scores in msclap's float32 order of operations: (score + log p) / length. The
    // transform is monotonic within a beam, so the global top k lies among each beam's top k by
    // exp(x - max); a few extra per beam cover rounding ties. Only those get their log computed.
    std::vector<float> new_len = lengths;
    std::vector<Candidate> cands;
    const int per_row = static_cast<int>(std::min<int64_t>(V, beam + 8));
    for (size_t b = 0; b < B; ++b) {
      if (stopped[b]) {  // logits[is_stopped] = -inf; logits[is_stopped, 0] = 0
        cands.push_back({(scores[b] + 0.f) / new_len[b], static_cast<int64_t>(b) * V});
        continue;
      }
      float* row = logits + b * static_cast<size_t>(V);
      const float inv = softmax_parts(row, V, temperature);
      new_len[b] += 1.f;
      for (const auto& c : top_k(row, V, per_row)) {
        cands.push_back({(scores[b] + log_prob(c.value, inv)) / new_len[b], static_cast<int64_t>(b) * V + c.index});
      }
    }
    // (Stopped beams' other tokens are -inf: never needed, a live beam always offers k candidates.)
    // torch.topk over the flattened [beam, vocab] scores; equal values: lower flat index first.
    std::partial_sort(cands.begin(), cands.begin() + beam, cands.end(), better);
    std::vector<std::vector<int64_t>> new_tokens(B);
    std::vector<float> new_scores(B), gathered_len(B);
    std::vector<bool> new_stopped(B);
    std::vector<int64_t> src(B);
    for (size_t b = 0; b < B; ++b) {
      const auto s = static_cast<size_t>(cands[b].index / V);
      const int64_t tok = cands[b].index % V;
      src[b] = static_cast<int64_t>(s);
      gathered_len[b] = new_len[s];
      new_tokens[b] = tokens[s];
      new_tokens[b].push_back(tok);
      new_scores[b] = cands[b].value * gathered_len[b];
      new_stopped[b] = stopped[s] || tok == stop_id;
    }
    tokens.swap(new_tokens);
    scores.swap(new_scores);
    lengths.swap(gathered_len);
    stopped.swap(new_stopped);
    ++steps;
    return src;
  }

  BeamSearchResult finish() const {
    const auto B = static_cast<size_t>(beam);
    BeamSearchResult result;
    result.steps = steps;
    result.slots = tokens;
    std::vector<float> final_scores(B);
    for (size_t b = 0; b < B; ++b) {
      final_scores[b] = scores[b] / lengths[b];
      result.slot_lengths.push_back(static_cast<int64_t>(lengths[b]));
    }
    std::vector<size_t> order(B);
    for (size_t b = 0; b < B; ++b) order[b] = b;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return final_scores[a] > final_scores[b]; });
    for (size_t i : order) {
      CaptionBeam cb;
      const auto n = static_cast<size_t>(result.slot_lengths[i]);
      cb.tokens.assign(tokens[i].begin(), tokens[i].begin() + static_cast<int64_t>(std::min(n, tokens[i].size())));
      cb.score = final_scores[i];
      result.beams.push_back(std::move(cb));
    }
    return result;
  }
};

void check_search(const Gpt2& gpt2, int64_t n_prefix, int beam, int max_tokens) {
  if (beam < 1 || beam > gpt2.vocab()) throw InvalidArgument("beam size must be between 1 and the vocabulary size");
  if (max_tokens < 1) throw InvalidArgument("max tokens must be at least 1");
  if (n_prefix < 1) throw InvalidArgument("beam search needs at least one prefix vector");
  if (n_prefix + max_tokens > gpt2.n_ctx())
    throw InvalidArgument(std::to_string(n_prefix) + " prefix positions + " + std::to_string(max_tokens) +
                          " tokens exceed the decoder's " + std::to_string(gpt2.n_ctx()) + " positions");
}

}  // namespace

BeamSearchResult beam_search(const Gpt2& gpt2, const float* prefix, int64_t n_prefix, int beam, int max_tokens,
                             float temperature, int64_t stop_id, bool use_cache) {
  check_search(gpt2, n_prefix, beam, max_tokens);
  const int64_t d = gpt2.n_embd(), V = gpt2.vocab();
  const auto B = static_cast<size_t>(beam);
  BeamState state(beam, V, temperature, stop_id);
  std::vector<float> logits(B * static_cast<size_t>(V)), hidden;

  // The naive path keeps every sequence's input embeddings, as msclap's `generated`.
  std::vector<float> generated;
  Gpt2::Cache cache;

  // Step 1: the prefix alone.
  hidden.resize(static_cast<size_t>(n_prefix * d));
  if (use_cache) {
    cache = gpt2.make_cache(1, n_prefix + max_tokens);
    gpt2.forward(prefix, n_prefix, cache, hidden.data());
  } else {
    gpt2.forward_nocache(prefix, 1, n_prefix, hidden.data());
  }
  gpt2.logits(hidden.data() + (n_prefix - 1) * d, 1, logits.data());
  state.first(logits.data());
  if (use_cache) {
    gpt2.share(cache, beam);
  } else {
    generated.resize(B * static_cast<size_t>(n_prefix * d));
    for (size_t b = 0; b < B; ++b)
      std::copy(prefix, prefix + n_prefix * d, generated.begin() + static_cast<int64_t>(b) * n_prefix * d);
  }

  std::vector<float> next_embed(B * static_cast<size_t>(d));
  while (!state.done(max_tokens)) {
    // Run the decoder on the last chosen token of every beam.
    gpt2.token_embeddings(state.last_tokens().data(), beam, next_embed.data());
    const int64_t len = n_prefix + state.steps;  // sequence length including the new token
    if (use_cache) {
      hidden.resize(B * static_cast<size_t>(d));
      gpt2.forward(next_embed.data(), 1, cache, hidden.data());
      gpt2.logits(hidden.data(), beam, logits.data());
    } else {
      std::vector<float> seq(B * static_cast<size_t>(len * d));
      for (size_t b = 0; b < B; ++b) {
        std::copy(generated.begin() + static_cast<int64_t>(b) * (len - 1) * d,
                  generated.begin() + static_cast<int64_t>(b + 1) * (len - 1) * d,
                  seq.begin() + static_cast<int64_t>(b) * len * d);
        std::copy(next_embed.begin() + static_cast<int64_t>(b) * d,
                  next_embed.begin() + static_cast<int64_t>(b + 1) * d,
                  seq.begin() + (static_cast<int64_t>(b) * len + len - 1) * d);
      }
      generated.swap(seq);
      hidden.resize(generated.size());
      gpt2.forward_nocache(generated.data(), beam, len, hidden.data());
      for (size_t b = 0; b < B; ++b)
        gpt2.logits(hidden.data() + (static_cast<int64_t>(b) * len + len - 1) * d, 1,
                    logits.data() + b * static_cast<size_t>(V));
    }
    const std::vector<int64_t> src = state.advance(logits.data());
    if (use_cache) {
      gpt2.reorder(cache, src);
    } else {
      std::vector<float> g(generated.size());
      for (size_t b = 0; b < B; ++b)
        std::copy(generated.begin() + src[b] * len * d, generated.begin() + (src[b] + 1) * len * d,
                  g.begin() + static_cast<int64_t>(b) * len * d);
      generated.swap(g);
    }
  }
  return state.finish();
}

std::vector<BeamSearchResult> beam_search_batch(const Gpt2& gpt2, const std::vector<const float*>& prefixes,
                                                int64_t n_prefix, int beam, int max_tokens, float temperature,
                                                int64_t stop_id, int max_batch) {
  check_search(gpt2, n_prefix, beam, max_tokens);
  if (max_batch < 1) throw InvalidArgument("the caption batch size must be at least 1");
  for (const float* p : prefixes)
    if (p == nullptr) throw InvalidArgument("beam search: missing prefix");
  const int64_t d = gpt2.n_embd(), V = gpt2.vocab();
  std::vector<BeamSearchResult> results(prefixes.size());
  for (size_t first = 0; first < prefixes.size(); first += static_cast<size_t>(max_batch)) {
    const size_t n = std::min(prefixes.size() - first, static_cast<size_t>(max_batch));
    // Step 1: every caption's prefix, one sequence each, in one forward pass.
    std::vector<float> x(n * static_cast<size_t>(n_prefix * d)), hidden(x.size());
    for (size_t i = 0; i < n; ++i)
      std::copy(prefixes[first + i], prefixes[first + i] + n_prefix * d,
                x.begin() + static_cast<int64_t>(i) * n_prefix * d);
    Gpt2::Cache cache = gpt2.make_cache(static_cast<int64_t>(n), n_prefix + max_tokens);
    gpt2.forward(x.data(), n_prefix, cache, hidden.data());
    std::vector<float> last(n * static_cast<size_t>(d));
    for (size_t i = 0; i < n; ++i)
      std::copy(hidden.begin() + (static_cast<int64_t>(i) * n_prefix + n_prefix - 1) * d,
                hidden.begin() + (static_cast<int64_t>(i) * n_prefix + n_prefix) * d,
                last.begin() + static_cast<int64_t>(i) * d);
    std::vector<float> logits(n * static_cast<size_t>(beam * V));
    gpt2.logits(last.data(), static_cast<int64_t>(n), logits.data());
    // Each caption's selection reads only its own logits and state: the captions on the threads.
    std::vector<BeamState> states;
    for (size_t i = 0; i < n; ++i) states.emplace_back(beam, V, temperature, stop_id);
    parallel_for(gpt2.threads(), static_cast<int64_t>(n),
                 [&](int64_t i) { states[static_cast<size_t>(i)].first(logits.data() + i * V); });
    gpt2.share(cache, beam);

    // Later steps: the live captions' beams, beam rows each, as one batch; a finished caption's
    // rows leave the cache (and the batch) before the next step.
    std::vector<size_t> live(n);
    for (size_t i = 0; i < n; ++i) live[i] = i;
    std::vector<float> embed;
    while (true) {
      std::vector<int64_t> keep;
      std::vector<size_t> still;
      for (size_t g = 0; g < live.size(); ++g)
        if (!states[live[g]].done(max_tokens)) {
          keep.push_back(static_cast<int64_t>(g));
          still.push_back(live[g]);
        }
      if (still.empty()) break;
      if (still.size() != live.size()) gpt2.keep_groups(cache, keep);
      live.swap(still);
      const auto rows = static_cast<int64_t>(live.size()) * beam;
      std::vector<int64_t> ids;
      for (size_t i : live)
        for (int64_t t : states[i].last_tokens()) ids.push_back(t);
      embed.resize(static_cast<size_t>(rows * d));
      hidden.resize(static_cast<size_t>(rows * d));
      gpt2.token_embeddings(ids.data(), rows, embed.data());
      gpt2.forward(embed.data(), 1, cache, hidden.data());
      gpt2.logits(hidden.data(), rows, logits.data());
      std::vector<std::vector<int64_t>> chosen(live.size());
      parallel_for(gpt2.threads(), static_cast<int64_t>(live.size()), [&](int64_t g) {
        chosen[static_cast<size_t>(g)] = states[live[static_cast<size_t>(g)]].advance(logits.data() + g * beam * V);
      });
      std::vector<int64_t> src;
      for (size_t g = 0; g < live.size(); ++g)
        for (int64_t s : chosen[g]) src.push_back(static_cast<int64_t>(g) * beam + s);
      gpt2.reorder(cache, src);
    }
    for (size_t i = 0; i < n; ++i) results[first + i] = states[i].finish();
  }
  return results;
}

}  // namespace asdcap
