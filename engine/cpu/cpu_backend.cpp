// The CPU backend: the model graph of Qwen2, Qwen3 and Llama over a KV cache in host memory.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/backend.h"
#include "engine/log.h"
#include "engine/mapped_file.h"
#include "engine/cpu/attention.h"
#include "engine/cpu/matmul.h"
#include "engine/cpu/rms_norm.h"
#include "engine/cpu/thread_pool.h"
#include "engine/quant.h"
#include "engine/rope.h"

namespace ponder {
namespace {

constexpr std::size_t kChunk = 512;  // tokens per prefill pass (bounds the activations)

// A small weight (a norm, a bias) widened to float once, at load.
std::vector<float> widen(const Weight& w) {
  std::vector<float> v;
  if (!w.present()) return v;
  v.resize(w.elements());
  dequantize(w.type, w.data, v.data(), v.size(), nullptr);
  return v;
}

struct Snapshot final : KvSnapshot {
  std::uint32_t n = 0;
  std::size_t size = 0;
  // Per layer: K rows [0, n), then V rows [0, n). Plain memory, not a PageBuffer: a snapshot is
  // written whole, in order, while a request waits for its first token, and in 2 MiB pages those
  // first touches cost more (a warm 4,096-token request's first token 0.92-1.00 s -> 1.23-1.33 s:
  // bench/RESULTS.md); its reads, in order too, gain nothing from them.
  std::unique_ptr<unsigned char[]> data;
  std::uint32_t positions() const override { return n; }
  std::size_t bytes() const override { return size; }
};

struct LayerSmall {  // a layer's vectors, widened to float
  std::vector<float> attn_norm, ffn_norm, bq, bk, bv, q_norm, k_norm;
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(const Model& model, const BackendOptions& options)
      : model_(model), c_(model.config()), options_(options), pool_(options.threads) {}

  bool init(std::string* error) {
    if (!cpu::attention_supports(kv_type(), c_.head_dim)) {
      *error = "the CPU backend cannot keep a " + std::string(ggml_type_info(static_cast<std::uint32_t>(kv_type()))->name) +
               " KV cache for heads of " + std::to_string(c_.head_dim) + " (Q8_0 needs a multiple of 32)";
      return false;
    }
    if (options_.context == 0) {
      *error = "a context of 0 positions";
      return false;
    }
    if (!check_weight_types(model_, cpu::matmul_supports, "the CPU backend", error)) return false;
    if (!rope_inverse_frequencies(c_, model_.weights().rope_freqs, &inv_freq_, &rope_scale_, error)) return false;
    const ModelWeights& w = model_.weights();
    output_norm_ = widen(w.output_norm);
    layers_.resize(c_.n_layer);
    for (std::uint32_t i = 0; i < c_.n_layer; ++i) {
      const LayerWeights& l = w.layers[i];
      LayerSmall& s = layers_[i];
      s.attn_norm = widen(l.attn_norm);
      s.ffn_norm = widen(l.ffn_norm);
      s.bq = widen(l.bq);
      s.bk = widen(l.bk);
      s.bv = widen(l.bv);
      s.q_norm = widen(l.q_norm);
      s.k_norm = widen(l.k_norm);
    }
    q_dim_ = std::size_t{c_.n_head} * c_.head_dim;
    kv_dim_ = std::size_t{c_.n_head_kv} * c_.head_dim;
    // The cache is allocated, not touched: pages (2 MiB ones where the kernel allows) arrive as
    // positions are written.
    kv_row_ = row_bytes(kv_type(), kv_dim_);
    const std::size_t cache_bytes = std::size_t{c_.n_layer} * options_.context * kv_row_;
    k_cache_ = PageBuffer(cache_bytes);
    v_cache_ = PageBuffer(cache_bytes);
    const auto no_cache = [&] {
      *error = "not enough memory for a KV cache of " + std::to_string(options_.context) + " positions";
      return false;
    };
    if (!k_cache_.data() || !v_cache_.data()) return no_cache();
    try {
      const std::size_t wide = std::max<std::size_t>({c_.n_embd, q_dim_, c_.n_ff});
      x_.resize(kChunk * c_.n_embd);
      xn_.resize(kChunk * c_.n_embd);
      q_.resize(kChunk * q_dim_);
      k_.resize(kChunk * kv_dim_);
      v_.resize(kChunk * kv_dim_);
      att_.resize(kChunk * q_dim_);
      out_.resize(kChunk * wide);
      gate_.resize(kChunk * c_.n_ff);
      up_.resize(kChunk * c_.n_ff);
      cos_.resize(kChunk * c_.head_dim / 2);
      sin_.resize(kChunk * c_.head_dim / 2);
    } catch (const std::bad_alloc&) {
      return no_cache();
    }
    return true;
  }

  std::string_view name() const override { return "cpu"; }
  std::uint32_t context() const override { return options_.context; }
  std::uint32_t cached() const override { return cached_; }
  void truncate(std::uint32_t n) override { cached_ = std::min(cached_, n); }
  void set_abort_flag(const std::atomic<bool>* flag) override { abort_ = flag; }

  std::unique_ptr<KvSnapshot> save(std::uint32_t n, std::string* error) const override {
    n = std::min(n, cached_);
    auto snap = std::make_unique<Snapshot>();
    snap->n = n;
    const std::size_t span = std::size_t{n} * kv_row_;  // one layer's K (or V) rows
    try {
      snap->data.reset(new unsigned char[2 * c_.n_layer * span]);
    } catch (const std::bad_alloc&) {
      *error = "not enough memory to keep " + std::to_string(n) + " positions of KV cache";
      return nullptr;
    }
    snap->size = 2 * c_.n_layer * span;
    unsigned char* dst = snap->data.get();
    for (std::uint32_t l = 0; l < c_.n_layer; ++l) {
      std::memcpy(dst, k_cache_.data() + cell(l, 0), span), dst += span;
      std::memcpy(dst, v_cache_.data() + cell(l, 0), span), dst += span;
    }
    return snap;
  }

  void restore(const KvSnapshot& snapshot, std::uint32_t n) override {
    const auto& snap = static_cast<const Snapshot&>(snapshot);
    n = std::min({n, snap.n, options_.context});
    const std::size_t stride = std::size_t{snap.n} * kv_row_, span = std::size_t{n} * kv_row_;
    const unsigned char* src = snap.data.get();
    for (std::uint32_t l = 0; l < c_.n_layer; ++l) {
      std::memcpy(k_cache_.data() + cell(l, 0), src, span), src += stride;
      std::memcpy(v_cache_.data() + cell(l, 0), src, span), src += stride;
    }
    cached_ = n;
  }

  bool eval(const std::int32_t* tokens, std::size_t n, float* logits, std::size_t n_logits,
            std::string* error) override {
    if (!check_eval(c_, cached_, options_.context, tokens, n, n_logits, error)) return false;
    for (std::size_t begin = 0; begin < n; begin += kChunk) {
      const std::size_t T = std::min(kChunk, n - begin);
      if (!run_chunk(tokens + begin, T)) {
        *error = "cancelled";
        return false;
      }
      // Logits for the rows of this chunk that are among the last n_logits of the batch.
      const std::size_t first_wanted = n - n_logits;
      if (logits && begin + T > first_wanted) {
        const std::size_t from = std::max(begin, first_wanted) - begin;
        const std::size_t rows = T - from;
        cpu::rms_norm(x_.data() + from * c_.n_embd, output_norm_.data(), xn_.data(), rows, c_.n_embd,
                      static_cast<float>(c_.rms_eps));
        float* dst = logits + (begin + from - first_wanted) * c_.n_vocab;
        cpu::matmul(model_.weights().output, xn_.data(), rows, dst, &pool_);
      }
    }
    return true;
  }

 private:
  // One pass over T ≤ kChunk tokens at positions cached_ ...; leaves the last hidden states in x_.
  // False when the abort flag stopped it (cached_ unchanged: what it wrote is past the end).
  bool run_chunk(const std::int32_t* tokens, std::size_t T) {
    const ModelWeights& w = model_.weights();
    const std::size_t E = c_.n_embd, D = c_.head_dim;
    const float eps = static_cast<float>(c_.rms_eps);
    // Embeddings: one row each, widened from the stored type.
    const std::size_t row = row_bytes(w.tok_embd.type, E);
    for (std::size_t t = 0; t < T; ++t)
      dequantize(w.tok_embd.type, w.tok_embd.data + row * static_cast<std::size_t>(tokens[t]), x_.data() + t * E, E,
                 nullptr);
    // The rotation angles of each position (cos and sin scaled by YaRN's attention factor).
    const std::size_t half = D / 2;
    for (std::size_t t = 0; t < T; ++t)
      for (std::size_t i = 0; i < half; ++i) {
        const double angle = static_cast<double>(cached_ + t) * inv_freq_[i];
        cos_[t * half + i] = static_cast<float>(rope_scale_ * std::cos(angle));
        sin_[t * half + i] = static_cast<float>(rope_scale_ * std::sin(angle));
      }

    for (std::uint32_t il = 0; il < c_.n_layer; ++il) {
      if (abort_ && abort_->load(std::memory_order_relaxed)) return false;
      const LayerWeights& l = w.layers[il];
      const LayerSmall& s = layers_[il];
      // Attention block.
      cpu::rms_norm(x_.data(), s.attn_norm.data(), xn_.data(), T, E, eps);
      const cpu::MatmulOut qkv[] = {{&l.wq, q_.data()}, {&l.wk, k_.data()}, {&l.wv, v_.data()}};
      cpu::matmul_shared(qkv, 3, xn_.data(), T, &pool_);
      for (std::size_t t = 0; t < T; ++t) {
        float* q = q_.data() + t * q_dim_;
        float* k = k_.data() + t * kv_dim_;
        float* v = v_.data() + t * kv_dim_;
        if (c_.qkv_bias) {  // qwen2
          cpu::add_to(q, s.bq.data(), q_dim_);
          cpu::add_to(k, s.bk.data(), kv_dim_);
          cpu::add_to(v, s.bv.data(), kv_dim_);
        }
        if (c_.qk_norm) {  // qwen3: RMSNorm over each head before RoPE
          cpu::rms_norm(q, s.q_norm.data(), q, c_.n_head, D, eps);
          cpu::rms_norm(k, s.k_norm.data(), k, c_.n_head_kv, D, eps);
        }
        const bool adjacent = c_.rope.pairing != RopePairing::half;
        cpu::rope(q, c_.n_head, c_.head_dim, cos_.data() + t * half, sin_.data() + t * half, adjacent);
        cpu::rope(k, c_.n_head_kv, c_.head_dim, cos_.data() + t * half, sin_.data() + t * half, adjacent);
        store_kv(il, cached_ + static_cast<std::uint32_t>(t), k, v);
      }
      attention(il, T);
      cpu::matmul(l.wo, att_.data(), T, out_.data(), &pool_);
      cpu::add_to(x_.data(), out_.data(), T * E);
      // MLP block: down(silu(gate(x)) * up(x)).
      cpu::rms_norm(x_.data(), s.ffn_norm.data(), xn_.data(), T, E, eps);
      cpu::matmul_swiglu(l.gate, l.up, xn_.data(), T, gate_.data(), up_.data(), &pool_);
      cpu::matmul(l.down, gate_.data(), T, out_.data(), &pool_);
      cpu::add_to(x_.data(), out_.data(), T * E);
    }
    cached_ += static_cast<std::uint32_t>(T);
    return true;
  }

  // Byte offset of a position's K (or V) row in the cache: [layer][position][kv_dim].
  std::size_t cell(std::uint32_t layer, std::uint32_t pos) const {
    return (std::size_t{layer} * options_.context + pos) * kv_row_;
  }

  // The cache's element type.
  GgmlType kv_type() const { return kv_ggml_type(options_.kv); }

  void store_kv(std::uint32_t layer, std::uint32_t pos, const float* k, const float* v) {
    const std::size_t at = cell(layer, pos);
    cpu::store_kv_row(kv_type(), k, k_cache_.data() + at, kv_dim_);
    cpu::store_kv_row(kv_type(), v, v_cache_.data() + at, kv_dim_);
  }

  // Causal grouped-query attention of the chunk's T queries (q_, at positions cached_ ...) over
  // the cache, into att_.
  void attention(std::uint32_t layer, std::size_t T) {
    cpu::AttentionArgs a;
    a.q = q_.data();
    a.out = att_.data();
    a.k = k_cache_.data() + cell(layer, 0);
    a.v = v_cache_.data() + cell(layer, 0);
    a.row_bytes = kv_row_;
    a.kv_type = kv_type();
    a.n_head = c_.n_head;
    a.n_head_kv = c_.n_head_kv;
    a.head_dim = c_.head_dim;
    a.first_pos = cached_;
    a.T = T;
    cpu::attention(a, &pool_, &attention_workspace_);
  }

  const Model& model_;
  const ModelConfig& c_;
  BackendOptions options_;
  cpu::ThreadPool pool_;
  std::vector<double> inv_freq_;
  double rope_scale_ = 1;  // multiplies cos and sin (YaRN's attention factor)
  std::vector<float> output_norm_;
  std::vector<LayerSmall> layers_;
  std::size_t q_dim_ = 0, kv_dim_ = 0;
  std::size_t kv_row_ = 0;  // bytes of one position's K (or V) in one layer
  PageBuffer k_cache_, v_cache_;
  const std::atomic<bool>* abort_ = nullptr;
  std::vector<float> x_, xn_, q_, k_, v_, att_, out_, gate_, up_, cos_, sin_;
  std::vector<float> attention_workspace_;  // cpu::attention's scratch, kept between calls
  std::uint32_t cached_ = 0;
};

// Decode reads every weight at each step: mapped in 4 KiB pages, that is a TLB miss every 4 KiB
// of each stream. Each file's weights (the spans of adjacent tensors) are faulted in now, in 2
// MiB pages where the page cache can hold them so (map_in_huge_pages). On the 2-core Zen 4 VM
// of bench/RESULTS.md, a Q8_0 model of the 1.5B shape written shortly before (43% of it in 2 MiB
// pages): decode in its fast minutes 32.1 -> 35.5 tokens/s (alternating windows, 40 each); one
// with 68 of its 780 blocks in small pieces (91%): 1.1-3.1% slower than a copy at 100%.
void map_weights_in_huge_pages(const Model& model) {
  std::vector<std::pair<const unsigned char*, const unsigned char*>> spans;
  // (Not the token embeddings: decode reads one row of them a step, and faulting in the whole
  // table would add it to the resident memory.)
  const Weight& embd = model.weights().tok_embd;
  for (const auto& [name, w] : model.named_weights())
    if (w->present() && w != &embd) spans.emplace_back(w->data, w->data + w->bytes);
  std::sort(spans.begin(), spans.end());
  constexpr std::size_t kGap = std::size_t{2} << 20;  // tensors of one file lie closer than this
  for (std::size_t i = 0; i < spans.size();) {
    const unsigned char* begin = spans[i].first;
    const unsigned char* end = spans[i].second;
    for (++i; i < spans.size() && spans[i].first <= end + kGap; ++i) end = std::max(end, spans[i].second);
    const HugePageReport r = map_in_huge_pages(begin, static_cast<std::size_t>(end - begin));
    if (r.tried && r.resident > 0)
      log::info(model.path(), ": weights in 2 MiB pages: ", 100 * r.huge_before / r.resident, "% -> ",
                100 * r.huge_after / r.resident, "% of ", r.resident >> 20, " MiB; ",
                r.scanned ? std::to_string(r.small_blocks) + " blocks of 2 MiB in 4 KiB pages, " : std::string(),
                r.blocks_reread, " blocks read again");
  }
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const Model& model, const BackendOptions& options, std::string* error) {
  if (!model.has_weights()) {
    *error = model.path() + ": has no weights to run";
    return nullptr;
  }
  cpu::verify_kernels_once();  // the AVX-512 / AMX kernels against the AVX2 ones, natively, once
  map_weights_in_huge_pages(model);
  auto b = std::make_unique<CpuBackend>(model, options);
  if (!b->init(error)) return nullptr;
  return b;
}

}  // namespace ponder
