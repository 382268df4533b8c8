// Random weights made on the device (benchmarks of real shapes from a file that holds no data:
// a 32B model in Q4_K_M is 19 GB that need not be written, carried or read).
//
// Float types: uniform in ±0.05. Block types: random quant bytes, then each block's f16 scales
// overwritten with small valid values, so every decoded weight is finite and of a weight's size.
// One thread per element (float types) or per block; a hash of (seed, index) makes it repeatable.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "kernels/check.cuh"
#include "kernels/ops.h"

namespace ponder::cuda {
namespace {

__device__ __forceinline__ std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in [-1, 1).
__device__ __forceinline__ float unit(std::uint64_t h) { return static_cast<float>(h >> 40) * 0x1.0p-23f - 1.0f; }

template <class T>
__global__ void fill_floats(T* dst, std::size_t n, std::uint64_t seed) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n; i += std::size_t{gridDim.x} * blockDim.x) {
    const float v = 0.05f * unit(mix(seed ^ mix(i)));
    if constexpr (sizeof(T) == 4) dst[i] = v;
    else if constexpr (std::is_same_v<T, __half>) dst[i] = __float2half_rn(v);
    else dst[i] = __float2bfloat16_rn(v);
  }
}

// A block of `bytes` random bytes, then f16 scales at the given offsets (-1: none) set to
// `scale` × (1 ± 25%).
__global__ void fill_blocks(unsigned char* dst, std::size_t blocks, unsigned bytes, int scale_at, int min_at,
                            float scale, std::uint64_t seed) {
  for (std::size_t b = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; b < blocks; b += std::size_t{gridDim.x} * blockDim.x) {
    unsigned char* p = dst + b * bytes;
    std::uint64_t h = mix(seed ^ mix(b));
    for (unsigned i = 0; i < bytes; ++i) {
      if (i % 8 == 0) h = mix(h);
      p[i] = static_cast<unsigned char>(h >> (8 * (i % 8)));
    }
    const __half d = __float2half_rn(scale * (1.0f + 0.25f * unit(mix(h))));
    const __half m = __float2half_rn(scale * (1.0f + 0.25f * unit(mix(h + 1))));
    if (scale_at >= 0) memcpy(p + scale_at, &d, 2);
    if (min_at >= 0) memcpy(p + min_at, &m, 2);
  }
}

unsigned grid_for(std::size_t n) {
  return static_cast<unsigned>(std::clamp<std::size_t>((n + 255) / 256, 1, 65535u * 16));
}

}  // namespace

bool fill_random(void* dst, GgmlType type, std::size_t n, std::uint64_t seed, cudaStream_t stream, std::string* error) {
  if (n == 0) return true;
  const GgmlTypeInfo* info = ggml_type_info(static_cast<std::uint32_t>(type));
  if (!info || n % info->block_elements) {
    if (error) *error = "fill_random: not whole blocks of a known type";
    return false;
  }
  const std::size_t blocks = n / info->block_elements;
  auto* bytes = static_cast<unsigned char*>(dst);
  // Scales per type: Q8_0 d·q (|q| ≤ 127), Q4_0 d·(q − 8), Q4_K/Q5_K d·sc·q − dmin·m (6-bit sc, m),
  // Q6_K d·sc·(q − 32) (int8 sc): each gives weights of a few hundredths.
  switch (type) {
    case GgmlType::f32: fill_floats<<<grid_for(n), 256, 0, stream>>>(static_cast<float*>(dst), n, seed); break;
    case GgmlType::f16: fill_floats<<<grid_for(n), 256, 0, stream>>>(static_cast<__half*>(dst), n, seed); break;
    case GgmlType::bf16: fill_floats<<<grid_for(n), 256, 0, stream>>>(static_cast<__nv_bfloat16*>(dst), n, seed); break;
    case GgmlType::q8_0: fill_blocks<<<grid_for(blocks), 256, 0, stream>>>(bytes, blocks, 34, 0, -1, 4e-4f, seed); break;
    case GgmlType::q4_0: fill_blocks<<<grid_for(blocks), 256, 0, stream>>>(bytes, blocks, 18, 0, -1, 6e-3f, seed); break;
    case GgmlType::q4_k: fill_blocks<<<grid_for(blocks), 256, 0, stream>>>(bytes, blocks, 144, 0, 2, 1e-4f, seed); break;
    case GgmlType::q5_k: fill_blocks<<<grid_for(blocks), 256, 0, stream>>>(bytes, blocks, 176, 0, 2, 5e-5f, seed); break;
    case GgmlType::q6_k: fill_blocks<<<grid_for(blocks), 256, 0, stream>>>(bytes, blocks, 210, 208, -1, 2e-5f, seed); break;
    default:
      if (error) *error = std::string("fill_random: type ") + std::string(info->name) + " is not read by the kernels";
      return false;
  }
  return check(cudaGetLastError(), "fill_random launch", error);
}

}  // namespace ponder::cuda
