// cuBLAS through dlopen: the few entry points the prefill products need.
#include "kernels/blas.h"

#include <cublas_api.h>
#include <dlfcn.h>

#include <limits>

namespace ponder::cuda {

struct Blas::Api {
  void* lib = nullptr;
  cublasStatus_t (*create)(cublasHandle_t*) = nullptr;
  cublasStatus_t (*destroy)(cublasHandle_t) = nullptr;
  cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t) = nullptr;
  const char* (*status_string)(cublasStatus_t) = nullptr;
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                            const void*, const void*, cudaDataType, int, const void*, cudaDataType,
                            int, const void*, void*, cudaDataType, int, cublasComputeType_t,
                            cublasGemmAlgo_t) = nullptr;
  ~Api() {
    if (lib) dlclose(lib);
  }
  std::string status(cublasStatus_t s) const {
    return status_string ? status_string(s) : "cuBLAS status " + std::to_string(static_cast<int>(s));
  }
};

namespace {
template <class F>
bool bind(void* lib, const char* name, F* out, std::string* error) {
  *out = reinterpret_cast<F>(dlsym(lib, name));
  if (*out) return true;
  if (error) *error = std::string("cuBLAS has no symbol ") + name;
  return false;
}
}  // namespace

std::unique_ptr<Blas> Blas::open(cudaStream_t stream, std::string* error) {
  auto api = std::make_unique<Api>();
  for (const char* name : {"libcublas.so.13", "libcublas.so", "/usr/local/cuda/lib64/libcublas.so.13"}) {
    api->lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (api->lib) break;
  }
  if (!api->lib) {
    if (error) *error = std::string("cuBLAS (libcublas.so.13) could not be loaded: ") + dlerror();
    return nullptr;
  }
  if (!bind(api->lib, "cublasCreate_v2", &api->create, error) ||
      !bind(api->lib, "cublasDestroy_v2", &api->destroy, error) ||
      !bind(api->lib, "cublasSetStream_v2", &api->set_stream, error) ||
      !bind(api->lib, "cublasGemmEx", &api->gemm_ex, error))
    return nullptr;
  bind(api->lib, "cublasGetStatusString", &api->status_string, nullptr);
  cublasHandle_t handle = nullptr;
  cublasStatus_t s = api->create(&handle);
  if (s != CUBLAS_STATUS_SUCCESS) {
    if (error) *error = "cublasCreate: " + api->status(s);
    return nullptr;
  }
  std::unique_ptr<Blas> blas(new Blas());
  blas->handle_ = handle;
  blas->api_ = std::move(api);
  if ((s = blas->api_->set_stream(handle, stream)) != CUBLAS_STATUS_SUCCESS) {
    if (error) *error = "cublasSetStream: " + blas->api_->status(s);
    return nullptr;
  }
  return blas;
}

Blas::~Blas() {
  if (handle_ && api_) api_->destroy(static_cast<cublasHandle_t>(handle_));
}

bool Blas::gemm(const void* w, const void* x, cudaDataType type, std::size_t N, std::size_t K,
                std::size_t T, float* y, std::string* error) {
  constexpr std::size_t kMax = std::numeric_limits<int>::max();
  if (N > kMax || K > kMax || T > kMax) {
    if (error) *error = "gemm: a dimension beyond 2^31";
    return false;
  }
  // cuBLAS is column-major: y (row-major T × N) is yᵀ (column-major N × T) = Wᵀᵀ · xᵀ, where the
  // row-major W (N × K) is a column-major K × N matrix used transposed, and x (T × K) a
  // column-major K × T matrix.
  const float alpha = 1.0f, beta = 0.0f;
  // F16/BF16 inputs accumulate in F32 on the tensor cores; F32 inputs stay F32 (pedantic: no TF32).
  const cublasComputeType_t compute = type == CUDA_R_32F ? CUBLAS_COMPUTE_32F_PEDANTIC : CUBLAS_COMPUTE_32F;
  const cublasStatus_t s = api_->gemm_ex(static_cast<cublasHandle_t>(handle_), CUBLAS_OP_T, CUBLAS_OP_N,
                                         static_cast<int>(N), static_cast<int>(T), static_cast<int>(K), &alpha,
                                         w, type, static_cast<int>(K), x, type, static_cast<int>(K), &beta, y,
                                         CUDA_R_32F, static_cast<int>(N), compute, CUBLAS_GEMM_DEFAULT);
  if (s == CUBLAS_STATUS_SUCCESS) return true;
  if (error) *error = "cublasGemmEx (" + std::to_string(N) + " x " + std::to_string(K) + " by " + std::to_string(T) + "): " + api_->status(s);
  return false;
}

}  // namespace ponder::cuda
