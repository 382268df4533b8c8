#pragma once
// Checked CUDA calls: a failure becomes a message for the caller, never an abort.
#include <cuda_runtime.h>

#include <string>

namespace ponder::cuda {

/// Returns true on success; on failure writes "<what>: <cuda error string>" to `error`.
inline bool check(cudaError_t status, const char* what, std::string* error) {
  if (status == cudaSuccess) return true;
  if (error) *error = std::string(what) + ": " + cudaGetErrorString(status);
  return false;
}

}  // namespace ponder::cuda
