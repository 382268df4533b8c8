// Device discovery for kernels/.
#include "kernels/check.cuh"
#include "kernels/cuda.h"

#include <algorithm>

namespace ponder::cuda {

bool available(std::string* why) {
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    // Without a GPU this is typically error 35 (insufficient driver), not "no device".
    if (why) *why = std::string("no usable CUDA device: ") + cudaGetErrorString(status);
    cudaGetLastError();  // clear the sticky error state
    return false;
  }
  if (count == 0) {
    if (why) *why = "no CUDA device found";
    return false;
  }
  return true;
}

std::string describe_device() {
  std::string why;
  if (!available(&why)) return why;
  cudaDeviceProp prop{};
  if (!check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties", &why)) return why;
  return std::string(prop.name) + ", sm_" + std::to_string(prop.major) +
         std::to_string(prop.minor) + ", " + std::to_string(prop.totalGlobalMem >> 30) + " GiB";
}

double copy_bandwidth(std::string* error) {
  if (!available(error)) return 0;
  constexpr std::size_t kBytes = std::size_t{1} << 30;
  void *a = nullptr, *b = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  double best = 0;
  if (check(cudaMalloc(&a, kBytes), "cudaMalloc", error) && check(cudaMalloc(&b, kBytes), "cudaMalloc", error) &&
      check(cudaMemset(a, 1, kBytes), "cudaMemset", error) && check(cudaEventCreate(&start), "cudaEventCreate", error) &&
      check(cudaEventCreate(&stop), "cudaEventCreate", error)) {
    for (int i = 0; i < 6; ++i) {  // the first is a warm-up
      float ms = 0;
      if (!check(cudaEventRecord(start), "cudaEventRecord", error) ||
          !check(cudaMemcpy(b, a, kBytes, cudaMemcpyDeviceToDevice), "cudaMemcpy", error) ||
          !check(cudaEventRecord(stop), "cudaEventRecord", error) ||
          !check(cudaEventSynchronize(stop), "cudaEventSynchronize", error) ||
          !check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime", error)) {
        best = 0;
        break;
      }
      if (i > 0 && ms > 0) best = std::max(best, 2.0 * kBytes / (ms * 1e-3) / 1e9);
    }
  }
  if (start) cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  cudaFree(a);
  cudaFree(b);
  return best;
}

}  // namespace ponder::cuda
