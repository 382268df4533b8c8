// Sampling on the device: the next token is chosen where the logits are, and only its id crosses
// to the host (4 bytes instead of 600 KB per token), which also lets the sampler sit inside the
// captured decode graph.
//
// One block of 1024 threads over the row (152K logits = 600 KB, resident in L2 after the logits
// product wrote them). Every truncation keeps the tokens whose logit is at least a threshold, so
// they compose by taking the largest threshold, found as an order-preserving 32-bit key:
//   floor  : weight w = exp((l - max) / T) ≥ e^-30          (the CPU sampler's floor)
//   top-k  : the k-th largest key, by radix selection on counts (4 passes of 8 bits)
//   top-p  : the largest key whose tokens at or above it hold ≥ top_p of the mass of the tokens
//            top-k kept (radix selection on sums of weights)
//   min-p  : w ≥ min_p, i.e. l ≥ max + T ln(min_p) (applied last, as the CPU sampler does)
// then the draw: target = u × (mass kept), found by a block-wide prefix sum in id order.
// Passes over the row: max, (4 top-k), mass, (4 top-p), draw.
#include <cstdint>

#include "kernels/check.cuh"
#include "kernels/ops.h"
#include "kernels/sample_kernel.cuh"

namespace ponder::cuda {

using sample_detail::kThreads;
using sample_detail::sample_kernel;

std::size_t sample_workspace(std::uint32_t) { return 0; }

bool sample(const SampleArgs& a, void*, cudaStream_t stream, std::string* error) {
  if (a.n_valid == 0 || !a.logits || !a.out || !a.d_params) {
    if (error) *error = "sample: no logits";
    return false;
  }
  sample_kernel<<<1, kThreads, 0, stream>>>(a);
  return check(cudaGetLastError(), "sample_kernel launch", error);
}

}  // namespace ponder::cuda
