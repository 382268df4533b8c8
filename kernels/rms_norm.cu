// RMSNorm: one block per row; each thread sums squares over a strided slice, the block reduces
// with warp shuffles, then each thread scales its slice. Memory-bound: reads x and weight once,
// writes out once. add_rms_norm fuses the residual add before it (x += delta, then the norm of
// the new x): the row is read twice from L1/L2 instead of a second pass over device memory.
#include <cuda_runtime.h>

#include <cstddef>
#include <string>

#include "kernels/check.cuh"
#include "kernels/cuda.h"
#include "kernels/ops.h"

namespace ponder::cuda {
namespace {

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

}  // namespace

bool add_rms_norm(float* x, const float* delta, const float* weight, float* out, std::size_t rows,
                  std::size_t n, float eps, cudaStream_t stream, std::string* error) {
  if (rows == 0 || n == 0) return true;
  add_rms_norm_f32<<<static_cast<unsigned>(rows), kBlock, 0, stream>>>(x, delta, weight, out,
                                                                       static_cast<int>(n), eps);
  return check(cudaGetLastError(), "add_rms_norm_f32 launch", error);
}

/// Device-pointer launcher (the CUDA backend will call this on its stream).
bool rms_norm_device(const float* x, const float* weight, float* out, std::size_t rows,
                     std::size_t n, float eps, cudaStream_t stream, std::string* error) {
  if (rows == 0 || n == 0) return true;
  rms_norm_f32<<<static_cast<unsigned>(rows), kBlock, 0, stream>>>(x, weight, out,
                                                                   static_cast<int>(n), eps);
  return check(cudaGetLastError(), "rms_norm_f32 launch", error);
}

bool rms_norm_host(const float* x, const float* weight, float* out, std::size_t rows,
                   std::size_t n, float eps, std::string* error) {
  if (!available(error)) return false;
  const std::size_t bytes = rows * n * sizeof(float);
  float *dx = nullptr, *dw = nullptr, *dy = nullptr;
  bool ok = check(cudaMalloc(&dx, bytes), "cudaMalloc x", error) &&
            check(cudaMalloc(&dw, n * sizeof(float)), "cudaMalloc weight", error) &&
            check(cudaMalloc(&dy, bytes), "cudaMalloc out", error) &&
            check(cudaMemcpy(dx, x, bytes, cudaMemcpyHostToDevice), "copy x", error) &&
            check(cudaMemcpy(dw, weight, n * sizeof(float), cudaMemcpyHostToDevice),
                  "copy weight", error) &&
            rms_norm_device(dx, dw, dy, rows, n, eps, nullptr, error) &&
            check(cudaMemcpy(out, dy, bytes, cudaMemcpyDeviceToHost), "copy out", error);
  cudaFree(dx);
  cudaFree(dw);
  cudaFree(dy);
  return ok;
}

}  // namespace ponder::cuda
