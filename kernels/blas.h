#pragma once
// cuBLAS for the prefill products, opened at run time (dlopen of libcublas.so.13): the binary
// starts and runs on the CPU where cuBLAS is missing, and the CUDA backend says what is missing.
#include <cuda_runtime.h>
#include <library_types.h>

#include <cstddef>
#include <memory>
#include <string>

namespace ponder::cuda {

class Blas {
 public:
  /// A cuBLAS handle bound to `stream`; null with `error` when the library or a symbol is missing.
  static std::unique_ptr<Blas> open(cudaStream_t stream, std::string* error);
  ~Blas();
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;

  /// y[T, N] = x[T, K] · W[N, K]ᵀ with W and x of `type` (CUDA_R_16F, CUDA_R_16BF or CUDA_R_32F,
  /// row-major, rows contiguous) and y F32 (row stride N), accumulated in F32 (F32 inputs: plain
  /// F32 arithmetic, no TF32).
  bool gemm(const void* w, const void* x, cudaDataType type, std::size_t N, std::size_t K,
            std::size_t T, float* y, std::string* error);

 private:
  Blas() = default;
  struct Api;
  std::unique_ptr<Api> api_;
  void* handle_ = nullptr;
};

}  // namespace ponder::cuda
