#pragma once
// The CUDA backend's operations: host-side launchers of the kernels in kernels/*.cu, one op family
// per file. Every launcher takes device pointers and a stream, never synchronises and never
// allocates (so a decode step can be captured as one CUDA graph), checks the launch, and returns
// false with `error` set ("<kernel> launch: <cuda error>") when it failed.
//
// Conventions:
// - Activations are F32, row-major: T rows (tokens) × n columns.
// - Weights are in their stored ggml type (engine/quant.h), row-major [N rows][K elements], one
//   row a whole number of blocks, exactly the bytes of the GGUF file (uploaded as they are).
// - Values that change from one decode step to the next (the position of the first token of the
//   batch) are read from device memory (`const std::int32_t* d_pos`), so that a captured graph
//   stays valid: the backend writes the current position before replaying it.
// - Only compiled with nvcc present (PONDER_HAVE_CUDA); kernels/cuda.h is the part callable from
//   a build without CUDA.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/quant.h"
#include "kernels/sample_args.h"

namespace ponder::cuda {

// ---- embedding.cu -------------------------------------------------------------------------
/// out[t, :] = row tokens[t] of `table` (n_embd elements of `type`: any type gemv reads) widened
/// to F32. Tokens are trusted (the backend checks them on the host first).
bool embed(const void* table, GgmlType type, std::size_t n_embd, const std::int32_t* tokens,
           std::size_t T, float* out, cudaStream_t stream, std::string* error);

// ---- rms_norm.cu --------------------------------------------------------------------------
/// out = x / sqrt(mean(x²) + eps) * w per row of n (out may be x).
bool rms_norm_device(const float* x, const float* weight, float* out, std::size_t rows,
                     std::size_t n, float eps, cudaStream_t stream, std::string* error);
/// x += delta (the residual), then out = rms_norm(x) * w: one pass instead of two.
bool add_rms_norm(float* x, const float* delta, const float* weight, float* out, std::size_t rows,
                  std::size_t n, float eps, cudaStream_t stream, std::string* error);

// ---- elementwise.cu -----------------------------------------------------------------------
/// x[i] += y[i], i < n.
bool add(float* x, const float* y, std::size_t n, cudaStream_t stream, std::string* error);
/// gate[i] = silu(gate[i]) * up[i], i < n (SwiGLU).
bool swiglu(float* gate, const float* up, std::size_t n, cudaStream_t stream, std::string* error);
/// Converts n floats to half / bfloat16 (the activations of a cuBLAS prefill product).
bool to_f16(const float* x, __half* out, std::size_t n, cudaStream_t stream, std::string* error);
bool to_bf16(const float* x, std::uint16_t* out, std::size_t n, cudaStream_t stream, std::string* error);

// ---- rope.cu ------------------------------------------------------------------------------
/// The per-token work between the Q/K/V products and attention, fused: bias add (Qwen2), per-head
/// RMSNorm (Qwen3), RoPE on q and k, and the store of k and v into the KV cache at positions
/// *d_pos + t.
struct QkvArgs {
  float* q = nullptr;        // [T][n_head * head_dim], rotated in place
  const float* k = nullptr;  // [T][n_head_kv * head_dim]
  const float* v = nullptr;  // [T][n_head_kv * head_dim]
  const float *bq = nullptr, *bk = nullptr, *bv = nullptr;  // biases or null
  const float *q_norm = nullptr, *k_norm = nullptr;          // [head_dim] or null
  float eps = 1e-6f;
  const double* inv_freq = nullptr;  // [head_dim / 2], scaling already applied (as the CPU's)
  float rope_scale = 1;              // multiplies cos and sin (YaRN's attention factor)
  bool adjacent_pairs = false;       // RopePairing::adjacent; else rotate-half
  std::uint32_t n_head = 0, n_head_kv = 0, head_dim = 0;
  std::size_t T = 0;
  const std::int32_t* d_pos = nullptr;  // position of token 0
  void* k_cache = nullptr;              // this layer's K rows: position p at k_cache + p * row_bytes
  void* v_cache = nullptr;
  std::size_t row_bytes = 0;            // one position's K (or V) row: n_head_kv * head_dim of kv_type
  GgmlType kv_type = GgmlType::f16;     // f32, f16 or q8_0 (rounded as engine/quant.h does)
};
bool qkv_rope_store(const QkvArgs& a, cudaStream_t stream, std::string* error);

// ---- gemv.cu (decode) and dequantize.cu (prefill) -------------------------------------------
/// True when the kernels read `type`: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K.
bool supports(GgmlType type);
/// y[t, n] = Σ_k W[n, k] x[t, k] for T ≤ kGemvMaxRows rows of x (decode: T = 1), reading W once.
constexpr std::size_t kGemvMaxRows = 8;
bool gemv(const void* w, GgmlType type, std::size_t N, std::size_t K, const float* x,
          std::size_t T, float* y, cudaStream_t stream, std::string* error);
/// Widens n elements (whole blocks) of `type` to half / bfloat16 / float (prefill: a weight is
/// dequantized into a scratch buffer, then multiplied by cuBLAS).
bool dequantize_f16(const void* w, GgmlType type, std::size_t n, __half* out, cudaStream_t stream,
                    std::string* error);
bool dequantize_f32(const void* w, GgmlType type, std::size_t n, float* out, cudaStream_t stream,
                    std::string* error);

// ---- attention.cu -------------------------------------------------------------------------
/// Causal grouped-query attention of T queries at positions *d_pos ... over this layer's cache
/// (every position up to *d_pos + T - 1 already stored), as engine/cpu/attention.h defines it.
struct AttentionArgs {
  const float* q = nullptr;          // [T][n_head][head_dim], RoPE applied
  float* out = nullptr;              // [T][n_head][head_dim]
  const void* k = nullptr;           // K rows: position p at k + p * row_bytes
  const void* v = nullptr;
  std::size_t row_bytes = 0;
  GgmlType kv_type = GgmlType::f16;  // f32, f16 or q8_0
  std::uint32_t n_head = 0, n_head_kv = 0, head_dim = 0;  // head_dim ≤ 256, a multiple of 32
  std::size_t T = 0;
  const std::int32_t* d_pos = nullptr;
  std::uint32_t max_positions = 0;  // the cache's size (bounds the split-K grid of decode)
};
/// Prefill (T ≥ 1): flash attention, tiles of queries × tiles of keys with an online softmax.
bool attention_prefill(const AttentionArgs& a, cudaStream_t stream, std::string* error);
/// Decode (T = 1): split-K ("flash-decoding"): the keys are split among kAttentionSplits blocks per
/// head (more, up to 4×, when the model has so few KV heads that the grid would not fill the GPU;
/// fixed for a model, whatever the length) whose partial results (max, sum, weighted values) are
/// combined by a second kernel. `workspace` holds attention_decode_workspace() bytes.
constexpr std::uint32_t kAttentionSplits = 32;
std::size_t attention_decode_workspace(std::uint32_t n_head, std::uint32_t head_dim);
bool attention_decode(const AttentionArgs& a, void* workspace, cudaStream_t stream, std::string* error);

// ---- sample.cu ----------------------------------------------------------------------------
/// Chooses the next token from a row of logits on the device, so only the id crosses to the host:
/// rows ≥ n_valid (padding) and non-finite logits never win. temperature 0: argmax (ties to the
/// lowest id). Otherwise top-k (0 = off), temperature, softmax, top-p, min-p, then one draw with a
/// uniform number hashed from (seed, step), all read from device memory (graph-safe).
/// The truncations are thresholds on the logit found by radix selection, so tokens tied with the
/// last one kept are all kept (the CPU sampler breaks such ties by id), and as on the CPU tokens
/// below e^-30 of the most likely one are never drawn. One block: ~10 passes over the row in L2.
std::size_t sample_workspace(std::uint32_t n_valid);
bool sample(const SampleArgs& a, void* workspace, cudaStream_t stream, std::string* error);

// ---- random_weights.cu ------------------------------------------------------------------
/// Fills n elements (whole blocks) of `type` with random values of a weight's magnitude (about
/// ±0.05; quantized blocks with valid small scales), from a hash of (seed, element): benchmarks of
/// real shapes with no weights in the file.
bool fill_random(void* dst, GgmlType type, std::size_t n, std::uint64_t seed, cudaStream_t stream,
                 std::string* error);

}  // namespace ponder::cuda
