#pragma once
// Device memory planning for the CUDA backend, before anything is allocated: the weights as
// uploaded, the KV cache for the requested context, and the workspace of a prefill chunk. Plain
// C++ (no CUDA headers) so the arithmetic is tested on any machine.
#include <cstdint>
#include <string>

#include "engine/model.h"

namespace ponder::cuda {

struct CudaPlan {
  std::uint32_t context = 0;  // positions of the KV cache
  std::uint32_t chunk = 0;    // tokens per prefill pass
  KvType kv = KvType::f16;
  std::uint64_t weights = 0;     // matrices in their stored type, vectors widened to F32
  std::uint64_t kv_cache = 0;    // K and V, every layer, `context` positions
  std::uint64_t activations = 0; // F32 activations of a chunk (x, normed x, q, k, v, attention, out, gate, up)
  std::uint64_t scratch = 0;     // a quantized weight dequantized for cuBLAS + the chunk's activations in F16
  std::uint64_t dequantized = 0; // elements of the largest quantized layer matrix (0: none)
  std::uint64_t logits = 0;      // logits of up to kGemvMaxRows rows
  std::uint64_t attention = 0;   // split-K partials of decode attention
  std::uint64_t reserve = 0;     // cuBLAS workspace and the runtime's own allocations
  std::uint64_t workspace() const { return activations + scratch + logits + attention + reserve; }
  std::uint64_t total() const { return weights + kv_cache + workspace(); }
};

/// The plan for `context` positions and prefill chunks of `chunk` tokens.
CudaPlan plan_memory(const ModelConfig& config, const ModelWeights& weights, std::uint32_t context,
                     KvType kv, std::uint32_t chunk);

/// The plan to use with `free_bytes` of device memory: the requested context with the largest
/// prefill chunk (2048 down to 256 tokens) that fits. False when none fits, with `message` saying
/// what is needed, what is free, and the largest context that would fit (a multiple of 256,
/// chunk 256), or that not even the weights fit.
bool choose_plan(const ModelConfig& config, const ModelWeights& weights, std::uint32_t context, KvType kv,
                 std::uint64_t free_bytes, CudaPlan* plan, std::string* message);

}  // namespace ponder::cuda
