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
#include "kernels/rms_norm_kernels.cuh"

namespace ponder::cuda {
namespace {

using rms_norm_detail::add_rms_norm_f32;
using rms_norm_detail::kBlock;
using rms_norm_detail::rms_norm_f32;

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
