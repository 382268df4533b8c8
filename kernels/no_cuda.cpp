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

}  // namespace ponder::cuda
