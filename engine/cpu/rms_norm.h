#pragma once
// RMSNorm on the CPU: the reference the CUDA kernel (kernels/rms_norm.cu) is tested against.
#include <cstddef>

namespace ponder::cpu {

/// out[r, i] = x[r, i] / sqrt(mean_i(x[r, :]^2) + eps) * weight[i]
/// x, out: F32 [rows, n] row-major (out may alias x); weight: F32 [n].
void rms_norm(const float* x, const float* weight, float* out, std::size_t rows, std::size_t n,
              float eps);

}  // namespace ponder::cpu
