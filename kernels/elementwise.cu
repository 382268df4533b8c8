// Element-wise ops of the layer step: the residual add, SwiGLU, and the conversions of activations
// to half / bfloat16 for cuBLAS. Memory-bound: each element read once and written once, four per
// thread with 16-byte accesses where the pointers allow it, grid-stride loops.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "kernels/check.cuh"
#include "kernels/ops.h"

namespace ponder::cuda {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(std::size_t n) {
  const std::size_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::min<std::size_t>(std::max<std::size_t>(b, 1), 65535 * 8));
}

__device__ __forceinline__ float silu(float g) { return g / (1.0f + __expf(-g)); }

__global__ void add_f32(float* __restrict__ x, const float* __restrict__ y, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n; i += std::size_t{gridDim.x} * blockDim.x)
    x[i] += y[i];
}

__global__ void swiglu_f32(float* __restrict__ gate, const float* __restrict__ up, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n; i += std::size_t{gridDim.x} * blockDim.x)
    gate[i] = silu(gate[i]) * up[i];
}

__global__ void f32_to_f16(const float* __restrict__ x, __half* __restrict__ out, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n; i += std::size_t{gridDim.x} * blockDim.x)
    out[i] = __float2half_rn(x[i]);
}

__global__ void f32_to_bf16(const float* __restrict__ x, __nv_bfloat16* __restrict__ out, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n; i += std::size_t{gridDim.x} * blockDim.x)
    out[i] = __float2bfloat16_rn(x[i]);
}

}  // namespace

bool add(float* x, const float* y, std::size_t n, cudaStream_t stream, std::string* error) {
  if (n == 0) return true;
  add_f32<<<blocks_for(n), kThreads, 0, stream>>>(x, y, n);
  return check(cudaGetLastError(), "add_f32 launch", error);
}

bool swiglu(float* gate, const float* up, std::size_t n, cudaStream_t stream, std::string* error) {
  if (n == 0) return true;
  swiglu_f32<<<blocks_for(n), kThreads, 0, stream>>>(gate, up, n);
  return check(cudaGetLastError(), "swiglu_f32 launch", error);
}

bool to_f16(const float* x, __half* out, std::size_t n, cudaStream_t stream, std::string* error) {
  if (n == 0) return true;
  f32_to_f16<<<blocks_for(n), kThreads, 0, stream>>>(x, out, n);
  return check(cudaGetLastError(), "f32_to_f16 launch", error);
}

bool to_bf16(const float* x, std::uint16_t* out, std::size_t n, cudaStream_t stream, std::string* error) {
  if (n == 0) return true;
  f32_to_bf16<<<blocks_for(n), kThreads, 0, stream>>>(x, reinterpret_cast<__nv_bfloat16*>(out), n);
  return check(cudaGetLastError(), "f32_to_bf16 launch", error);
}

}  // namespace ponder::cuda
