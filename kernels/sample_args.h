#pragma once
// The sampler kernel's arguments (kernels/ops.h, sample()), plain C++ so that the host emulator of
// the tests can include them without CUDA's headers.
#include <cstdint>

namespace ponder::cuda {

/// The settings live in device memory (written before each replay of the decode graph).
struct SampleParams {
  float temperature = 0, top_p = 1, min_p = 0;
  std::uint32_t top_k = 0;
  std::uint64_t seed = 0;
  std::uint64_t step = 0;  // the draw's number: u = hash(seed, step)
};
struct SampleArgs {
  const float* logits = nullptr;
  std::uint32_t n_valid = 0;
  const SampleParams* d_params = nullptr;  // device memory
  std::int32_t* out = nullptr;             // the chosen id (device memory)
};

}  // namespace ponder::cuda
