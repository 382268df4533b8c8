// Dequantization for prefill: a weight (n elements of its stored type, whole blocks) widened to
// F32 or F16 in a scratch buffer, which cuBLAS then multiplies.
//
// Work split: one thread per 8-element group (kernels/blocks.h), grid-stride; consecutive threads
// take consecutive groups, so each warp writes 32 × 8 consecutive outputs (two float4 or one
// 16-byte store per thread when the output is 16-byte aligned: coalesced). The values are
// bit-identical to ponder::dequantize (F16: then rounded to nearest even, as f32_to_f16). The
// elements past the last whole group (F32/F16/BF16 only) are done one per thread.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/blocks.h"
#include "kernels/check.cuh"
#include "kernels/dequantize_kernels.cuh"
#include "kernels/dispatch.cuh"
#include "kernels/ops.h"

namespace ponder::cuda {
namespace {

using dequantize_detail::kBlock;
using dequantize_detail::kMaxGrid;
using dequantize_detail::dequantize_kernel;

template <class Out>
bool launch_dequantize(const void* w, GgmlType type, std::size_t n, Out* out, cudaStream_t stream,
                       std::string* error) {
  const GgmlTypeInfo* info = ggml_type_info(static_cast<std::uint32_t>(type));
  if (!supports(type) || !info) return launch_refused("dequantize", "unsupported weight type " + std::to_string(static_cast<unsigned>(type)), error);
  if (n % info->block_elements != 0)
    return launch_refused("dequantize", std::to_string(n) + " elements is not a whole number of " + std::string(info->name) + " blocks", error);
  if (n == 0) return true;
  if (reinterpret_cast<std::uintptr_t>(w) % 16 != 0) return launch_refused("dequantize", "the weight is not 16-byte aligned", error);
  const bool out_vec = reinterpret_cast<std::uintptr_t>(out) % 16 == 0;
  const std::size_t groups = n / blocks::kGroup;
  const auto grid = static_cast<unsigned>(std::max<std::size_t>(1, std::min(kMaxGrid, (groups + kBlock - 1) / kBlock)));
  const auto* bytes = static_cast<const unsigned char*>(w);
  return dispatch_type(type, [&](auto tag) {
    dequantize_kernel<decltype(tag)::value, Out><<<grid, kBlock, 0, stream>>>(bytes, n, out, out_vec);
    return check(cudaGetLastError(), "dequantize launch", error);
  });
}

}  // namespace

bool dequantize_f16(const void* w, GgmlType type, std::size_t n, __half* out, cudaStream_t stream,
                    std::string* error) {
  return launch_dequantize(w, type, n, out, stream, error);
}

bool dequantize_f32(const void* w, GgmlType type, std::size_t n, float* out, cudaStream_t stream,
                    std::string* error) {
  return launch_dequantize(w, type, n, out, stream, error);
}

}  // namespace ponder::cuda
