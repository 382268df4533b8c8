#pragma once
// The device code of kernels/rms_norm.cu (described at the top of that file), in a header so that
// tests/engine/test_cuda_emulated_small.cpp can also run it on the host under tests/engine/cuda_emu.h.
#if !defined(PONDER_CUDA_EMU)  // else the includer has included tests/engine/cuda_emu.h
#include <cuda_runtime.h>
#endif

#include <cstddef>

namespace ponder::cuda::rms_norm_detail {
// Under the host emulator the kernels get other link names (see attention_kernels.cuh).
#ifdef PONDER_CUDA_EMU
inline namespace emulated {
#endif

constexpr int kBlock = 256;

__device__ float block_sum(float v) {
  __shared__ float partial[kBlock / 32];
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < kBlock / 32 ? partial[lane] : 0.0f;
  if (warp == 0)
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  __shared__ float total;
  if (threadIdx.x == 0) total = v;
  __syncthreads();
  return total;
}

// x, out: F32 [rows, n]; weight: F32 [n]. grid = rows, block = kBlock.
// out may be x (each thread reads its elements before writing them).
__global__ void rms_norm_f32(const float* x, const float* __restrict__ weight, float* out, int n,
                             float eps) {
  const float* xr = x + static_cast<std::size_t>(blockIdx.x) * n;
  float* yr = out + static_cast<std::size_t>(blockIdx.x) * n;
  float sum = 0.0f;
  for (int i = threadIdx.x; i < n; i += kBlock) sum += xr[i] * xr[i];
  const float scale = rsqrtf(block_sum(sum) / n + eps);
  for (int i = threadIdx.x; i < n; i += kBlock) yr[i] = xr[i] * scale * weight[i];
}

// x += delta, then out = rms_norm(x) * weight. grid = rows, block = kBlock.
__global__ void add_rms_norm_f32(float* __restrict__ x, const float* __restrict__ delta,
                                 const float* __restrict__ weight, float* __restrict__ out, int n,
                                 float eps) {
  float* xr = x + static_cast<std::size_t>(blockIdx.x) * n;
  const float* dr = delta + static_cast<std::size_t>(blockIdx.x) * n;
  float* yr = out + static_cast<std::size_t>(blockIdx.x) * n;
  float sum = 0.0f;
  for (int i = threadIdx.x; i < n; i += kBlock) {
    const float v = xr[i] + dr[i];
    xr[i] = v;
    sum += v * v;
  }
  const float scale = rsqrtf(block_sum(sum) / n + eps);
  // Each thread reads back only the elements it wrote: no barrier needed.
  for (int i = threadIdx.x; i < n; i += kBlock) yr[i] = xr[i] * scale * weight[i];
}

#ifdef PONDER_CUDA_EMU
}  // namespace emulated
#endif
}  // namespace ponder::cuda::rms_norm_detail
