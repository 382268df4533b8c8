#include "engine/cpu/rms_norm.h"

#include <cmath>

namespace ponder::cpu {

void rms_norm(const float* x, const float* weight, float* out, std::size_t rows, std::size_t n,
              float eps) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = out + r * n;
    double sum = 0.0;  // accumulate in double: this is the reference
    for (std::size_t i = 0; i < n; ++i) sum += double(xr[i]) * double(xr[i]);
    const float scale = static_cast<float>(1.0 / std::sqrt(sum / double(n) + double(eps)));
    for (std::size_t i = 0; i < n; ++i) yr[i] = xr[i] * scale * weight[i];
  }
}

}  // namespace ponder::cpu
