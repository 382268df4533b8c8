// kernels/ without CUDA: this build has no GPU code, and says so.
#include "kernels/cuda.h"

namespace ponder::cuda {

static const char* kNoCuda = "ponder was built without CUDA (nvcc was not found at build time)";

bool available(std::string* why) {
  if (why) *why = kNoCuda;
  return false;
}

std::string describe_device() { return kNoCuda; }

bool rms_norm_host(const float*, const float*, float*, std::size_t, std::size_t, float,
                   std::string* error) {
  if (error) *error = kNoCuda;
  return false;
}

double copy_bandwidth(std::string* error) {
  if (error) *error = kNoCuda;
  return 0;
}

}  // namespace ponder::cuda

namespace ponder {

std::unique_ptr<Backend> make_cuda_backend(const Model&, const BackendOptions&, std::string* error,
                                           const cuda::CudaBackendOptions&) {
  if (error) *error = "the CUDA backend: " + std::string(cuda::kNoCuda);
  return nullptr;
}

}  // namespace ponder
