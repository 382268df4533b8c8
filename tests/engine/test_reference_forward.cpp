// The reference forward pass (tests/reference/forward.py, PyTorch float64) that the engine's
// logits are judged against, and the bridge from any model ponder opens to it
// (tests/support/reference_bridge.h). Until the engine has a forward pass of its own, the
// reference is checked against a second implementation written here: a naive float64 forward in
// C++ straight from the generator's weights (reference_weight), sharing no code with forward.py.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/model.h"
#include "engine/quant.h"
#include "support/reference_bridge.h"
#include "support/temp_dir.h"
#include "support/test_model.h"

using namespace ponder;
using namespace ponder::test;

namespace {

TestModelSpec spec_for(Arch arch) {
  TestModelSpec s;  // tiny: 256/512/2 layers/2 heads/1 kv head/head_dim 128, 768 vocabulary rows
  s.arch = arch;
  if (arch == Arch::llama) {  // as the R1 Llama distills (and make_test_model --arch llama)
    s.rope_theta = 500000;
    s.rms_eps = 1e-5;
    s.llama3_scaling = true;
  }
  return s;
}

const char* name_of(Arch a) { return a == Arch::qwen2 ? "qwen2" : a == Arch::qwen3 ? "qwen3" : "llama"; }

// A prompt: ids spread over the reduced vocabulary's tokens, BOS first.
std::vector<std::int32_t> prompt(std::size_t n) {
  std::vector<std::int32_t> ids;
  std::uint64_t x = 12345;
  for (std::size_t i = 0; i < n; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    ids.push_back(i == 0 ? ReducedVocab::bos : static_cast<std::int32_t>((x >> 33) % ReducedVocab::n_tokens));
  }
  return ids;
}

// ---------------------------------------------------------------------------------------------
// The naive forward: one position at a time, loops only, double throughout.

struct Naive {
  TestModelSpec s;
  std::map<std::string, std::vector<double>> w;  // internal name -> HF layout [out][in]
  double yarn_factor = 0, yarn_original = 0;     // YaRN when yarn_factor > 0 (qwen)

  const std::vector<double>& at(const std::string& name) {
    auto it = w.find(name);
    if (it == w.end()) {
      std::vector<float> f = reference_weight(s, name);
      it = w.emplace(name, std::vector<double>(f.begin(), f.end())).first;
    }
    return it->second;
  }
  // y = M x (+ b), M [rows][cols]
  std::vector<double> mul(const std::string& m, const std::vector<double>& x, const std::string& bias = "") {
    const std::vector<double>& M = at(m);
    const std::size_t cols = x.size(), rows = M.size() / cols;
    std::vector<double> y(rows, 0.0);
    for (std::size_t r = 0; r < rows; ++r) {
      double acc = 0;
      for (std::size_t c = 0; c < cols; ++c) acc += M[r * cols + c] * x[c];
      y[r] = acc;
    }
    if (!bias.empty())
      for (std::size_t r = 0; r < rows; ++r) y[r] += at(bias)[r];
    return y;
  }
  // RMSNorm of x[off, off + n) in place.
  void norm(std::vector<double>& x, std::size_t off, std::size_t n, const std::string& g) {
    double ss = 0;
    for (std::size_t i = 0; i < n; ++i) ss += x[off + i] * x[off + i];
    const double r = 1 / std::sqrt(ss / static_cast<double>(n) + s.rms_eps);
    for (std::size_t i = 0; i < n; ++i) x[off + i] = x[off + i] * r * at(g)[i];
  }
  // The rotation angle per position of pair i: llama3 scaling as written in Meta's
  // apply_scaling (wavelength bands); YaRN as transformers ramps it, over the pair indices
  // between those turning 32 times and once over the original context; otherwise θ^(-2i/d).
  double inv_freq(std::size_t i) const {
    const double d = s.head_dim, f = std::pow(s.rope_theta, -2.0 * static_cast<double>(i) / d);
    if (yarn_factor > 0) {
      // pair index whose frequency turns `r` times over the original context
      auto index = [&](double r) { return d * std::log(yarn_original / (2 * M_PI * r)) / (2 * std::log(s.rope_theta)); };
      const double lo = std::max(0.0, std::floor(index(32))), hi = std::min(d - 1, std::ceil(index(1)));
      const double ramp = std::clamp((static_cast<double>(i) - lo) / (hi - lo), 0.0, 1.0);  // 0: kept, 1: interpolated
      return ramp * f / yarn_factor + (1 - ramp) * f;
    }
    if (!s.llama3_scaling) return f;
    const double factor = 8, low = 1, high = 4, old = 8192, wavelen = 2 * M_PI / f;
    if (wavelen < old / high) return f;
    if (wavelen > old / low) return f / factor;
    const double smooth = (old / wavelen - low) / (high - low);
    return (1 - smooth) * f / factor + smooth * f;
  }
  // rotate-half RoPE of every head in x (n_heads x head_dim) at position p
  // (YaRN also scales q and k by 0.1 ln(factor) + 1)
  void rope(std::vector<double>& x, std::size_t n_heads, std::size_t p) const {
    const std::size_t d = s.head_dim, h2 = d / 2;
    const double m = yarn_factor > 0 ? 0.1 * std::log(yarn_factor) + 1 : 1.0;
    for (std::size_t h = 0; h < n_heads; ++h)
      for (std::size_t i = 0; i < h2; ++i) {
        const double a = static_cast<double>(p) * inv_freq(i), c = m * std::cos(a), sn = m * std::sin(a);
        double& x1 = x[h * d + i];
        double& x2 = x[h * d + i + h2];
        const double x1v = x1, x2v = x2;
        x1 = x1v * c - x2v * sn;
        x2 = x2v * c + x1v * sn;
      }
  }

  // Logits, T x vocab.
  std::vector<double> forward(const std::vector<std::int32_t>& ids) {
    const std::size_t H = s.n_embd, D = s.head_dim, nh = s.n_head, nkv = s.n_head_kv, T = ids.size();
    const std::vector<double>& emb = at("token_embd.weight");
    const std::size_t V = emb.size() / H;
    std::vector<std::vector<double>> x(T);
    for (std::size_t t = 0; t < T; ++t)
      x[t].assign(emb.begin() + static_cast<std::ptrdiff_t>(ids[t] * H), emb.begin() + static_cast<std::ptrdiff_t>((ids[t] + 1) * H));
    const bool bias = s.arch == Arch::qwen2, qk_norm = s.arch == Arch::qwen3;
    for (std::uint32_t l = 0; l < s.n_layer; ++l) {
      const std::string b = "blk." + std::to_string(l) + ".";
      std::vector<std::vector<double>> K(T), Vv(T);
      std::vector<std::vector<double>> out(T);
      for (std::size_t t = 0; t < T; ++t) {
        std::vector<double> h = x[t];
        norm(h, 0, H, b + "attn_norm.weight");
        std::vector<double> q = mul(b + "attn_q.weight", h, bias ? b + "attn_q.bias" : "");
        K[t] = mul(b + "attn_k.weight", h, bias ? b + "attn_k.bias" : "");
        Vv[t] = mul(b + "attn_v.weight", h, bias ? b + "attn_v.bias" : "");
        if (qk_norm) {
          for (std::size_t hd = 0; hd < nh; ++hd) norm(q, hd * D, D, b + "attn_q_norm.weight");
          for (std::size_t hd = 0; hd < nkv; ++hd) norm(K[t], hd * D, D, b + "attn_k_norm.weight");
        }
        rope(q, nh, t);
        rope(K[t], nkv, t);
        // causal attention over positions 0..t; head hd reads kv head hd / (nh / nkv)
        std::vector<double> o(nh * D, 0.0);
        for (std::size_t hd = 0; hd < nh; ++hd) {
          const std::size_t kv = hd / (nh / nkv);
          std::vector<double> sc(t + 1);
          double mx = -INFINITY;
          for (std::size_t u = 0; u <= t; ++u) {
            double dot = 0;
            for (std::size_t i = 0; i < D; ++i) dot += q[hd * D + i] * K[u][kv * D + i];
            sc[u] = dot / std::sqrt(static_cast<double>(D));
            mx = std::max(mx, sc[u]);
          }
          double sum = 0;
          for (double& v : sc) sum += (v = std::exp(v - mx));
          for (double& v : sc) v /= sum;
          for (std::size_t u = 0; u <= t; ++u)
            for (std::size_t i = 0; i < D; ++i) o[hd * D + i] += sc[u] * Vv[u][kv * D + i];
        }
        out[t] = mul(b + "attn_output.weight", o);
      }
      for (std::size_t t = 0; t < T; ++t) {
        for (std::size_t i = 0; i < H; ++i) x[t][i] += out[t][i];
        std::vector<double> h = x[t];
        norm(h, 0, H, b + "ffn_norm.weight");
        std::vector<double> g = mul(b + "ffn_gate.weight", h), u = mul(b + "ffn_up.weight", h);
        for (std::size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
        std::vector<double> down = mul(b + "ffn_down.weight", g);
        for (std::size_t i = 0; i < H; ++i) x[t][i] += down[i];
      }
    }
    std::vector<double> logits;
    logits.reserve(T * V);
    for (std::size_t t = 0; t < T; ++t) {
      norm(x[t], 0, H, "output_norm.weight");
      std::vector<double> row = mul("output.weight", x[t]);
      logits.insert(logits.end(), row.begin(), row.end());
    }
    return logits;
  }
};

// ---------------------------------------------------------------------------------------------
// Reference runs of the generator's BF16 snapshots, made once per process (one forward.py batch)
// and shared by the test cases.

struct ArchFixture {
  std::string snapshot;  // the generator's BF16 snapshot
  ReferenceResult full;  // prompt(64)
  ReferenceResult one;   // prompt(1)
  ReferenceResult seven;  // prompt(7), then 8 greedy tokens; attention in blocks of 5 queries
};

const int kGreedy = 8;
const Arch kArchs[] = {Arch::qwen2, Arch::qwen3, Arch::llama};

const ArchFixture& fixture(Arch arch) {
  static TempDir dir;
  static std::map<Arch, ArchFixture> cache;
  if (cache.empty()) {
    std::vector<ReferenceJob> jobs;
    std::map<Arch, ArchFixture> made;
    for (Arch a : kArchs) {
      ArchFixture& f = made[a];
      f.snapshot = (dir.path() / name_of(a)).string();
      std::string error;
      INFO(name_of(a));
      REQUIRE(write_snapshot(spec_for(a), f.snapshot, 1, &error));
      ReferenceOptions seven;
      seven.greedy = kGreedy;
      seven.block = 5;
      jobs.push_back({f.snapshot, prompt(64), {}});
      jobs.push_back({f.snapshot, prompt(1), {}});
      jobs.push_back({f.snapshot, prompt(7), seven});
    }
    std::vector<ReferenceResult> results;
    std::string error;
    const bool ok = run_reference_batch(jobs, &results, &error);
    INFO(error);
    REQUIRE(ok);
    std::size_t k = 0;
    for (Arch a : kArchs) {
      made[a].full = std::move(results[k++]);
      made[a].one = std::move(results[k++]);
      made[a].seven = std::move(results[k++]);
    }
    cache = std::move(made);
  }
  return cache.at(arch);
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

// The generator's spec as a GGUF of `type`, opened, written back as an F32 snapshot in `dir`.
std::unique_ptr<Model> gguf_to_f32_snapshot(Arch arch, GgmlType type, const std::filesystem::path& dir, bool k_m = false) {
  const std::string gguf = (dir / "m.gguf").string(), snap = (dir / "f32").string();
  std::string error;
  INFO(name_of(arch));
  std::filesystem::create_directories(dir);
  std::unique_ptr<Model> m;
  const bool ok = write_gguf(spec_for(arch), type, gguf, &error, k_m) && (m = Model::open(gguf, &error)) &&
                  write_f32_snapshot(*m, snap, &error);
  INFO(error);
  REQUIRE(ok);
  return m;
}

// sqrt(Σ ||dequantized - exact||² / Σ ||exact||²) over the model's matrices: the relative RMS
// error quantization put into the weights.
double weight_error(const Model& m, const TestModelSpec& spec) {
  double diff = 0, norm = 0;
  for (const auto& [name, w] : m.named_weights()) {
    if (!w->present() || w->n_dims != 2) continue;
    std::vector<float> got(w->elements());
    std::string error;
    REQUIRE(dequantize(w->type, w->data, got.data(), got.size(), &error));
    std::vector<float> want = reference_weight(spec, name);
    if (spec.arch == Arch::llama && (name.find(".attn_q.") != std::string::npos || name.find(".attn_k.") != std::string::npos))
      want = permute_qk_for_gguf(want, w->ne[0], name.find(".attn_q.") != std::string::npos ? spec.n_head : spec.n_head_kv);
    REQUIRE(want.size() == got.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      diff += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
      norm += static_cast<double>(want[i]) * want[i];
    }
  }
  return std::sqrt(diff / norm);
}

}  // namespace

TEST_CASE("reference forward: forward.py equals an independent C++ float64 forward", "[reference][forward]") {
  for (Arch arch : kArchs) {
    INFO(name_of(arch));
    const ArchFixture& f = fixture(arch);
    Naive naive{spec_for(arch), {}};
    const std::vector<double> want = naive.forward(prompt(64));
    REQUIRE(f.full.n_vocab == ReducedVocab::n_rows);
    REQUIRE(want.size() == f.full.logits.size());
    // Both are float64: they differ only in summation order.
    const double err = relative_max(f.full.logits.data(), want.data(), want.size());
    INFO("T = 64: max |logit| " << max_abs(want) << ", max difference / max |logit| " << err);
    CHECK(err < 1e-12);
    CHECK(max_abs(want) > 0.1);  // logits that say something (not all but zero)
    // T = 1 and 7, each its own run: the first rows of the naive forward (which is causal by
    // construction: position t never reads past t).
    for (const ReferenceResult* r : {&f.one, &f.seven}) {
      INFO("T = " << r->n_rows);
      REQUIRE(r->logits.size() == r->n_rows * r->n_vocab);
      CHECK(relative_max(r->logits.data(), want.data(), r->logits.size()) < 1e-12);
    }
  }
}

TEST_CASE("reference forward: the naive forward's llama3 frequencies are the converter's rope_freqs", "[reference][forward]") {
  const TestModelSpec s = spec_for(Arch::llama);
  Naive naive{s, {}};
  const std::vector<float> divisors = reference_weight(s, "rope_freqs.weight");
  REQUIRE(divisors.size() == s.head_dim / 2);
  std::size_t scaled = 0, smoothed = 0;
  for (std::size_t i = 0; i < divisors.size(); ++i) {
    const double plain = std::pow(s.rope_theta, -2.0 * static_cast<double>(i) / s.head_dim);
    INFO(i);
    CHECK(naive.inv_freq(i) == Approx(plain / divisors[i]).epsilon(1e-6));
    scaled += divisors[i] == 8.0f;
    smoothed += divisors[i] > 1.0f && divisors[i] < 8.0f;
  }
  // theta 5e5, head_dim 128: all three bands of llama3 scaling are exercised
  CHECK(scaled > 0);
  CHECK(smoothed > 0);
  CHECK(scaled + smoothed < divisors.size());
}

TEST_CASE("reference forward: causal and incremental", "[reference][forward]") {
  std::vector<ReferenceJob> jobs;
  for (Arch arch : kArchs) {
    const ArchFixture& f = fixture(arch);
    REQUIRE(f.seven.greedy.size() == static_cast<std::size_t>(kGreedy));
    std::vector<std::int32_t> seq = prompt(7);
    seq.insert(seq.end(), f.seven.greedy.begin(), f.seven.greedy.end() - 1);
    jobs.push_back({f.snapshot, seq, {}});
  }
  ReferenceOptions last_only;
  last_only.last_only = true;
  for (Arch arch : kArchs) jobs.push_back({fixture(arch).snapshot, prompt(64), last_only});
  ReferenceOptions real_vocab;  // greedy among the real tokens only, as an engine samples
  real_vocab.greedy = 2 * kGreedy;
  real_vocab.greedy_vocab = ReducedVocab::n_tokens;
  for (Arch arch : kArchs) jobs.push_back({fixture(arch).snapshot, prompt(7), real_vocab});
  std::vector<ReferenceResult> wholes;
  std::string error;
  const bool ok = run_reference_batch(jobs, &wholes, &error);
  INFO(error);
  REQUIRE(ok);
  for (std::size_t a = 0; a < std::size(kArchs); ++a) {
    const Arch arch = kArchs[a];
    INFO(name_of(arch));
    const ArchFixture& f = fixture(arch);
    // The runs of prefixes [0, 1) and [0, 7) give the first rows of the run of [0, 64): a
    // position never sees a later one (the 7-token run computed attention in blocks of 5).
    CHECK(relative_max(f.one.logits.data(), f.full.logits.data(), f.one.logits.size()) < 1e-12);
    CHECK(relative_max(f.seven.logits.data(), f.full.logits.data(), f.seven.logits.size()) < 1e-12);
    // Greedy decoding through forward.py's KV cache, one token at a time, equals prefill of the
    // whole sequence, and picks the argmax of each row (the lowest id on ties).
    const ReferenceResult& whole = wholes[a];
    const std::size_t V = whole.n_vocab;
    CHECK(relative_max(f.seven.greedy_logits.data(), whole.row(6), kGreedy * V) < 1e-12);
    CHECK(relative_max(f.seven.greedy_logits.data(), f.seven.row(6), V) == 0);  // row 0: the prompt's last
    for (int i = 0; i < kGreedy; ++i) {
      const double* row = whole.row(6 + static_cast<std::size_t>(i));
      INFO("greedy token " << i);
      CHECK(f.seven.greedy[static_cast<std::size_t>(i)] == std::max_element(row, row + V) - row);
    }
    // --last-only computes the last row alone, the same one
    const ReferenceResult& last = wholes[std::size(kArchs) + a];
    REQUIRE(last.n_rows == 1);
    REQUIRE(last.logits.size() == V);
    CHECK(relative_max(last.logits.data(), f.full.row(63), V) < 1e-12);
    // greedy_vocab: argmax of each row's first n_tokens (over every row, these random models
    // often pick padding rows: qwen3 continues 1,2,...,7 with 148 705 657 666 ...)
    const ReferenceResult& real = wholes[2 * std::size(kArchs) + a];
    REQUIRE(real.greedy.size() == static_cast<std::size_t>(2 * kGreedy));
    for (std::size_t i = 0; i < real.greedy.size(); ++i) {
      const double* row = real.greedy_logits.data() + i * V;
      INFO("real-vocabulary greedy token " << i);
      CHECK(real.greedy[i] == std::max_element(row, row + ReducedVocab::n_tokens) - row);
    }
    // and the naive forward agrees on the generated continuation too
    Naive naive{spec_for(arch), {}};
    const std::vector<double> want = naive.forward(jobs[a].ids);
    CHECK(relative_max(whole.logits.data(), want.data(), want.size()) < 1e-12);
  }
}

TEST_CASE("reference forward: an F32 GGUF through write_f32_snapshot gives the BF16 snapshot's logits", "[reference][forward]") {
  TempDir tmp;
  std::vector<ReferenceJob> jobs, from_snapshot;
  std::vector<std::unique_ptr<Model>> models;
  for (Arch arch : kArchs) {
    const std::filesystem::path dir = tmp.path() / name_of(arch);
    models.push_back(gguf_to_f32_snapshot(arch, GgmlType::f32, dir));
    jobs.push_back({(dir / "f32").string(), prompt(64), {}});
    // The bridge from a snapshot too (BF16 widened, HF order kept, rope_scaling from config.json).
    std::string error;
    std::unique_ptr<Model> m = Model::open(fixture(arch).snapshot, &error);
    const bool ok = m && write_f32_snapshot(*m, (dir / "from-snapshot").string(), &error);
    INFO(name_of(arch) << ": " << error);
    REQUIRE(ok);
    from_snapshot.push_back({(dir / "from-snapshot").string(), prompt(64), {}});
  }
  jobs.insert(jobs.end(), from_snapshot.begin(), from_snapshot.end());
  std::vector<ReferenceResult> results;
  std::string error;
  const bool ok = run_reference_batch(jobs, &results, &error);
  INFO(error);
  REQUIRE(ok);
  for (std::size_t a = 0; a < std::size(kArchs); ++a) {
    const Arch arch = kArchs[a];
    INFO(name_of(arch));
    const ArchFixture& f = fixture(arch);
    // The weights are the same values (bf16-representable), Q/K rows back in HF order, the same
    // rope parameters and eps: the same float64 computation, so the same logits to the bit.
    // (Without the un-permutation of a llama GGUF's Q and K, they differ by 6e-2.)
    const ReferenceResult& r = results[a];
    REQUIRE(r.logits.size() == f.full.logits.size());
    const double err = relative_max(r.logits.data(), f.full.logits.data(), r.logits.size());
    INFO("max difference / max |logit| " << err);
    CHECK(err == 0);
    const ReferenceResult& rs = results[std::size(kArchs) + a];
    REQUIRE(rs.logits.size() == f.full.logits.size());
    CHECK(relative_max(rs.logits.data(), f.full.logits.data(), rs.logits.size()) == 0);
    const std::string config = read_file(std::filesystem::path(jobs[a].snapshot_dir) / "config.json");
    CHECK(config.find(arch == Arch::llama ? "\"rms_norm_eps\": 1e-05" : "\"rms_norm_eps\": 1e-06") != std::string::npos);
    if (arch == Arch::llama) {
      CHECK(config.find("\"rope_type\": \"llama3\"") != std::string::npos);
      // Parameters that do not reproduce rope_freqs.weight are refused.
      Llama3RopeParams wrong;
      wrong.factor = 4;
      CHECK_FALSE(write_f32_snapshot(*models[a], (tmp.path() / "wrong").string(), &error, &wrong));
      CHECK(error.find("rope_freqs.weight") != std::string::npos);
      wrong = Llama3RopeParams{};
      wrong.original_context = 4096;
      CHECK_FALSE(write_f32_snapshot(*models[a], (tmp.path() / "wrong").string(), &error, &wrong));
    }
  }
}

TEST_CASE("reference forward: every GGUF weight type runs on its dequantized weights", "[reference][forward]") {
  // The logits of the dequantized weights differ from the exact (BF16) weights' logits in
  // proportion to the noise the weight type put into the weights: `w`, the relative RMS error
  // over all matrices, measured here on these N(0, 0.02) weights. For Q8_0, a step of 1/127 of a
  // 32-block's largest magnitude (about 2σ): RMS ≈ 2σ/127/√12 ≈ 0.46% of σ (measured 0.51%);
  // Q4_0 16 steps (8.2%); Q4_K 15 steps over a 32-block's range with 6-bit scales and mins
  // (6.9%), Q5_K 31 steps (3.5%), Q6_K 63 steps of the largest magnitude (1.7%); Q4_K_M mixes
  // Q4_K and Q6_K (6.1%). BF16 holds these weights exactly (the logits are the same bits); F16
  // too, but for the few values below its normal range (2^-14), which lose low bits (1.7e-8).
  // Every one of the 16 matrices on the path (embedding, 7 per layer, output) adds its own
  // independent error, so the logits' relative L2 difference is a few times `w`: measured
  // 2.5-3.5x on the three architectures (Q8_0 0.015-0.016, Q6_K 0.042-0.051, Q5_K 0.089-0.104,
  // Q4_K 0.18-0.21, Q4_0 0.22-0.25). Checked: `w` within 2x of the measured value, the logits'
  // difference between 1x and 6x `w`.
  struct Case {
    const char* name;
    GgmlType type;
    bool k_m;
    double w;  // the measured weight error
  };
  const Case cases[] = {
      {"BF16", GgmlType::bf16, false, 0},       {"F16", GgmlType::f16, false, 1.7e-8},
      {"Q8_0", GgmlType::q8_0, false, 5.1e-3},  {"Q4_0", GgmlType::q4_0, false, 8.2e-2},
      {"Q4_K", GgmlType::q4_k, false, 6.9e-2},  {"Q5_K", GgmlType::q5_k, false, 3.4e-2},
      {"Q6_K", GgmlType::q6_k, false, 1.7e-2},  {"Q4_K_M", GgmlType::q4_k, true, 6.1e-2},
  };
  TempDir tmp;
  std::vector<ReferenceJob> jobs;
  std::vector<double> weight_errors;
  for (Arch arch : kArchs)
    for (const Case& c : cases) {
      const std::filesystem::path dir = tmp.path() / (std::string(name_of(arch)) + "-" + c.name);
      std::unique_ptr<Model> m = gguf_to_f32_snapshot(arch, c.type, dir, c.k_m);
      weight_errors.push_back(weight_error(*m, spec_for(arch)));
      jobs.push_back({(dir / "f32").string(), prompt(64), {}});
    }
  std::vector<ReferenceResult> results;
  std::string error;
  const bool ok = run_reference_batch(jobs, &results, &error);
  INFO(error);
  REQUIRE(ok);
  std::size_t k = 0;
  for (Arch arch : kArchs)
    for (const Case& c : cases) {
      const ArchFixture& f = fixture(arch);
      const ReferenceResult& r = results[k];
      const double w = weight_errors[k++];
      REQUIRE(r.logits.size() == f.full.logits.size());
      const double err = relative_l2(r.logits.data(), f.full.logits.data(), r.logits.size());
      INFO(name_of(arch) << " " << c.name << ": weights' relative RMS error " << w << ", logits' relative L2 difference "
                         << err << " (" << err / w << "x)");
      if (c.w == 0) {
        CHECK(w == 0);
        CHECK(err == 0);
        continue;
      }
      CHECK(w > c.w / 2);
      CHECK(w < c.w * 2);
      CHECK(err > w);
      CHECK(err < 6 * w);
    }
}

TEST_CASE("reference forward: YaRN (factor 4 over 32768) and its bridge", "[reference][forward]") {
  // Qwen2.5's recommended setting beyond 32K (factor 4, original 32768) on a qwen2 with the
  // 14B's theta 1e6: with head_dim 128, pairs 0-23 keep their frequency, 40-63 are divided by 4.
  TestModelSpec spec = spec_for(Arch::qwen2);
  spec.rope_theta = 1e6;
  TempDir tmp;
  const std::string snap = (tmp.path() / "yarn").string(), bridged = (tmp.path() / "bridged").string();
  std::string error;
  REQUIRE(write_snapshot(spec, snap, 1, &error));
  {
    nlohmann::json config = nlohmann::json::parse(read_file(std::filesystem::path(snap) / "config.json"));
    config["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768}};
    tmp.write("yarn/config.json", config.dump(2));
  }
  std::unique_ptr<Model> m = Model::open(snap, &error);
  INFO(error);
  REQUIRE(m);
  REQUIRE(m->config().rope.scaling == RopeScaling::yarn);
  REQUIRE(write_f32_snapshot(*m, bridged, &error));
  std::vector<ReferenceResult> results;
  const bool ok = run_reference_batch({{snap, prompt(64), {}}, {bridged, prompt(64), {}}}, &results, &error);
  INFO(error);
  REQUIRE(ok);
  Naive naive{spec, {}};
  naive.yarn_factor = 4;
  naive.yarn_original = 32768;
  const std::vector<double> want = naive.forward(prompt(64));
  REQUIRE(results[0].logits.size() == want.size());
  CHECK(relative_max(results[0].logits.data(), want.data(), want.size()) < 1e-12);
  CHECK(relative_max(results[1].logits.data(), results[0].logits.data(), want.size()) == 0);
  // and YaRN changed them: the same model without it
  Naive plain{spec, {}};
  const std::vector<double> without = plain.forward(prompt(64));
  CHECK(relative_l2(without.data(), want.data(), want.size()) > 1e-3);
}

// Long context, where RoPE's slow frequencies (and llama3's scaling of them) turn by whole
// radians and the attention spans thousands of keys. Hidden (forward.py takes 15-20 s, the naive
// forward here 2-4 minutes on two shared cores): run it with `test_engine "[long]"`. Measured:
// max difference / max |logit| 3.5e-15.
TEST_CASE("reference forward: 8192 tokens equal the independent C++ forward (llama3 scaling)", "[reference][long][.]") {
  const Arch arch = Arch::llama;
  TempDir tmp;
  const std::string snap = (tmp.path() / "snapshot").string();
  std::string error;
  REQUIRE(write_snapshot(spec_for(arch), snap, 1, &error));
  const std::vector<std::int32_t> ids = prompt(8192);
  ReferenceResult r;
  const bool ok = run_reference(snap, ids, &r, &error);
  INFO(error);
  REQUIRE(ok);
  INFO(r.log);
  Naive naive{spec_for(arch), {}};
  const std::vector<double> want = naive.forward(ids);
  REQUIRE(want.size() == r.logits.size());
  const double err = relative_max(r.logits.data(), want.data(), want.size());
  INFO("max difference / max |logit| " << err << "; forward.py took " << r.seconds << " s");
  CHECK(err < 1e-12);
  // The last rows alone, as an engine test would compare them.
  const std::size_t V = r.n_vocab, tail = 64 * V;
  CHECK(relative_l2(r.logits.data() + r.logits.size() - tail, want.data() + want.size() - tail, tail) < 1e-12);
}
