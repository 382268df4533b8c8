// Token embedding: out[t, :] = row tokens[t] of the table, widened to F32 (the values of
// ponder::dequantize, bit for bit).
//
// Work split: grid.y strides over the tokens; along x, one thread per 8-element group of the row
// (kernels/blocks.h), grid-stride, consecutive threads on consecutive groups (two float4 stores
// each when the output row is 16-byte aligned: coalesced). The elements past the last whole
// group (F32/F16/BF16 rows whose length is not a multiple of 8) are done one per thread.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/blocks.h"
#include "kernels/check.cuh"
#include "kernels/embedding_kernels.cuh"
#include "kernels/dispatch.cuh"
#include "kernels/ops.h"

namespace ponder::cuda {
namespace {

using embedding_detail::kBlock;
using embedding_detail::embed_kernel;

}  // namespace

bool embed(const void* table, GgmlType type, std::size_t n_embd, const std::int32_t* tokens,
           std::size_t T, float* out, cudaStream_t stream, std::string* error) {
  const GgmlTypeInfo* info = ggml_type_info(static_cast<std::uint32_t>(type));
  if (!supports(type) || !info) return launch_refused("embed", "unsupported table type " + std::to_string(static_cast<unsigned>(type)), error);
  if (n_embd % info->block_elements != 0)
    return launch_refused("embed", "n_embd = " + std::to_string(n_embd) + " is not a whole number of " + std::string(info->name) + " blocks", error);
  if (T == 0 || n_embd == 0) return true;
  if (reinterpret_cast<std::uintptr_t>(table) % 16 != 0) return launch_refused("embed", "the table is not 16-byte aligned", error);
  // Every output row 16-byte aligned: the float4 stores.
  const bool out_vec = reinterpret_cast<std::uintptr_t>(out) % 16 == 0 && n_embd % 4 == 0;
  const std::size_t groups = n_embd / blocks::kGroup;
  const dim3 grid(static_cast<unsigned>(std::max<std::size_t>(1, std::min<std::size_t>(1024, (groups + kBlock - 1) / kBlock))),
                  static_cast<unsigned>(std::min<std::size_t>(T, 65535)));
  const std::size_t rb = row_bytes(type, n_embd);
  const auto* bytes = static_cast<const unsigned char*>(table);
  return dispatch_type(type, [&](auto tag) {
    embed_kernel<decltype(tag)::value><<<grid, kBlock, 0, stream>>>(bytes, rb, n_embd, tokens, T, out, out_vec);
    return check(cudaGetLastError(), "embed launch", error);
  });
}

}  // namespace ponder::cuda
