// Device memory planning (kernels/plan.h).
#include "kernels/plan.h"

#include <algorithm>

#include "kernels/attention_math.h"

namespace ponder::cuda {
namespace {

constexpr std::uint64_t kAlign = 256;               // every device buffer starts on 256 bytes
constexpr std::uint64_t kReserve = 192ull << 20;    // cuBLAS workspace (64 MiB) + the runtime's own
constexpr std::uint32_t kGemvRows = 8;              // kernels/ops.h kGemvMaxRows

std::uint64_t aligned(std::uint64_t b) { return (b + kAlign - 1) / kAlign * kAlign; }

bool quantized(GgmlType t) { return t != GgmlType::f32 && t != GgmlType::f16 && t != GgmlType::bf16; }

// Bytes a weight takes on the device: matrices as stored, vectors widened to F32.
std::uint64_t device_bytes(const Weight& w) {
  if (!w.present()) return 0;
  return aligned(w.n_dims >= 2 ? w.bytes : w.elements() * 4);
}

}  // namespace

CudaPlan plan_memory(const ModelConfig& c, const ModelWeights& w, std::uint32_t context, KvType kv,
                     std::uint32_t chunk) {
  CudaPlan p;
  p.context = context;
  p.chunk = chunk;
  p.kv = kv;
  auto add = [&](const Weight& x) {
    p.weights += device_bytes(x);
    if (x.present() && x.n_dims >= 2 && quantized(x.type)) p.dequantized = std::max(p.dequantized, x.elements());
  };
  p.weights += device_bytes(w.tok_embd);  // rows are widened by embed(): never dequantized whole
  add(w.output_norm);
  if (w.output.present() && w.output.data != w.tok_embd.data) p.weights += device_bytes(w.output);  // logits: gemv, no scratch
  add(w.rope_freqs);
  for (const LayerWeights& l : w.layers)
    for (const Weight* x : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.bq, &l.bk, &l.bv, &l.q_norm, &l.k_norm, &l.wo,
                            &l.ffn_norm, &l.gate, &l.up, &l.down})
      add(*x);
  p.weights += aligned(c.head_dim / 2 * sizeof(double));  // RoPE's inverse frequencies

  p.kv_cache = 2 * aligned(kv_bytes_per_token(c, kv) / 2 * context);  // one buffer for K, one for V
  const std::uint64_t E = c.n_embd, Q = std::uint64_t{c.n_head} * c.head_dim,
                      KV = std::uint64_t{c.n_head_kv} * c.head_dim, F = c.n_ff;
  const std::uint64_t wide = std::max({E, Q, F});
  // x, xn, q, k, v, att, out (wide), gate, up — F32.
  p.activations = aligned(chunk * E * 4) * 2 + aligned(chunk * Q * 4) * 2 + aligned(chunk * KV * 4) * 2 +
                  aligned(chunk * wide * 4) + aligned(chunk * F * 4) * 2 + aligned(chunk * 4) /* token ids */;
  p.scratch = aligned(p.dequantized * 2) + aligned(chunk * wide * 2);
  p.logits = aligned(std::uint64_t{kGemvRows} * c.n_vocab * 4);
  // Split-K partials at the most splits decode uses (kernels/attention.cu's workspace).
  p.attention = aligned(std::uint64_t{c.n_head} * math::kMaxDecodeSplits * (c.head_dim + 2) * 4);
  p.reserve = kReserve;
  return p;
}

bool choose_plan(const ModelConfig& c, const ModelWeights& w, std::uint32_t context, KvType kv,
                 std::uint64_t free_bytes, CudaPlan* plan, std::string* message) {
  for (std::uint32_t chunk : {2048u, 1024u, 512u, 256u}) {
    const CudaPlan p = plan_memory(c, w, context, kv, std::min(chunk, std::max(context, 1u)));
    if (p.total() <= free_bytes) {
      *plan = p;
      return true;
    }
  }
  const CudaPlan p = plan_memory(c, w, context, kv, 256);
  std::string m = "the model needs " + format_bytes(p.total()) + " of GPU memory (weights " + format_bytes(p.weights) +
                  " + KV cache " + format_bytes(p.kv_cache) + " for " + std::to_string(context) +
                  " tokens + workspace " + format_bytes(p.workspace()) + ") but the GPU has " +
                  format_bytes(free_bytes) + " free";
  // The largest context (a multiple of 256) that fits with chunks of 256.
  std::uint32_t lo = 0, hi = std::max<std::uint32_t>(context / 256, 1);
  while (lo < hi) {
    const std::uint32_t mid = (lo + hi + 1) / 2;
    if (plan_memory(c, w, mid * 256, kv, 256).total() <= free_bytes) lo = mid;
    else hi = mid - 1;
  }
  if (lo > 0) m += "; the largest context that fits is " + std::to_string(lo * 256) + " tokens";
  else m += "; not even the weights fit: choose a smaller or more quantized model, or the CPU backend";
  if (message) *message = m;
  return false;
}

}  // namespace ponder::cuda
