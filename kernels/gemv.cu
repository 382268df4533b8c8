// GEMV for decode: y[t, n] = Σ_k W[n, k] x[t, k] for T ≤ kGemvMaxRows rows of x, with W in its
// stored type (kernels/blocks.h decodes it). Memory-bound: every weight byte is read once, with
// 16-byte loads.
//
// Work split: a thread block of kWarps warps owns kRows consecutive rows of W (so a row of x
// loaded into registers serves kRows weight rows). The rows' K elements are cut into tiles of
// Tile<type>::kElements elements (whole blocks, ~1 KiB per row); tile i goes to warp
// i % kWarps, so for a small N the K dimension still spreads over the warps.
//
// One tile, one warp:
//   1. Stage. The tile's bytes of the kRows rows are copied to the warp's shared memory with
//      16-byte loads (uint4, streaming: ld.global.cs), 32 lanes on consecutive chunks (coalesced),
//      kLoads loads per lane issued before the first store (kLoads · 512 bytes in flight per
//      warp). Quant blocks are not 16-byte sized (Q8_0 is 34 bytes), so a row's tile generally
//      starts inside a 16-byte chunk: the copy is of whole aligned chunks and keeps each byte's
//      address modulo 16, so the blocks in shared memory are aligned as they are in global memory
//      (what blocks.h's typed loads need). Only a chunk that would run past the end of W is read
//      byte by byte.
//   2. Decode and multiply. Lane l takes the 8-element groups l, l + 32, ... of the tile
//      (consecutive lanes, consecutive groups: the x loads, two float4 per group and row of x,
//      are coalesced and shared by the kRows weight rows). A group decodes to
//      scale · q[i] − min (blocks.h), so Σ value·x = scale · Σ q·x − min · Σ x: per element one
//      FMA per row of x. F32/F16/BF16 rows whose K is not a multiple of 8 end in a partial group,
//      done element by element.
//   3. After the last tile: each (row, t) sum is reduced across the warp with shuffles, then
//      across the block's warps through shared memory, and written once.
//
// The index arithmetic (staging slots, staged row addresses) and a lane's product of one group
// are in kernels/gemv_tile.h, shared with a host test that runs them lane by lane without a GPU
// (tests/engine/test_cuda_gemv_host.cpp); the kernel itself is in kernels/gemv_kernel.cuh, which
// tests/engine/test_cuda_emulated_gemv.cpp runs on the host under the emulator.
//
// Numerics: float accumulation of the exact dequantized weights (no activation quantization):
// against a float64 product of the dequantized weights, the error is float rounding (relative
// ‖Δ‖/‖y‖ ~1e-7 … 1e-6 for K ≤ 10^4). The CPU's quantized paths quantize x to int8 and differ
// from this by ~1e-3 … 1e-2 relative (their error, not this one's).
//
// Performance (written without a GPU: nothing here is measured yet). The floor is bytes / HBM
// bandwidth: a 1536 × 8960 Q4_K matrix is 7.7 MB, ~1.6 µs at 4.8 TB/s. Registers ≤ 128 a thread
// (__launch_bounds__(128, 4): ≥ 16 warps per SM), no spills, 11–19 KB of shared memory a block.
// Expected limits, to check first on a GPU: small N launches few blocks (N = 1536: 384 blocks of
// 4 warps on 132 SMs); every x load serves 4 weight rows, so x costs T · 4 bytes of L1 traffic
// per 4 weight elements, which at T = 8 with 4-bit weights (~8× the weight bytes) may make L1,
// not HBM, the limit; Q8_0 / Q4_0 / Q6_K blocks are only 2-byte aligned, so their groups are read
// from shared memory in 16-bit pieces.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/blocks.h"
#include "kernels/check.cuh"
#include "kernels/dispatch.cuh"
#include "kernels/gemv_kernel.cuh"
#include "kernels/gemv_tile.h"
#include "kernels/ops.h"

namespace ponder::cuda {
namespace {

using gemv::kRows;
using gemv::kThreads;
using gemv::kWarps;
using gemv_detail::gemv_kernel;

template <GgmlType kType, int kT>
bool launch_gemv(const unsigned char* w, std::size_t N, std::size_t K, const float* x, float* y,
                 cudaStream_t stream, std::string* error) {
  const std::size_t rb = row_bytes(kType, K);
  const bool x_vec = K % 4 == 0 && reinterpret_cast<std::uintptr_t>(x) % 16 == 0;
  const auto grid = static_cast<unsigned>((N + kRows - 1) / kRows);
  gemv_kernel<kType, kT><<<grid, kThreads, 0, stream>>>(w, rb, w + N * rb, static_cast<int>(N),
                                                         static_cast<int>(K), x, x_vec, y);
  return check(cudaGetLastError(), "gemv launch", error);
}

template <GgmlType kType>
bool launch_gemv_rows(const unsigned char* w, std::size_t N, std::size_t K, const float* x,
                      std::size_t T, float* y, cudaStream_t stream, std::string* error) {
  switch (T) {
    case 1: return launch_gemv<kType, 1>(w, N, K, x, y, stream, error);
    case 2: return launch_gemv<kType, 2>(w, N, K, x, y, stream, error);
    case 3: return launch_gemv<kType, 3>(w, N, K, x, y, stream, error);
    case 4: return launch_gemv<kType, 4>(w, N, K, x, y, stream, error);
    case 5: return launch_gemv<kType, 5>(w, N, K, x, y, stream, error);
    case 6: return launch_gemv<kType, 6>(w, N, K, x, y, stream, error);
    case 7: return launch_gemv<kType, 7>(w, N, K, x, y, stream, error);
    case 8: return launch_gemv<kType, 8>(w, N, K, x, y, stream, error);
    default: return launch_refused("gemv", "T = " + std::to_string(T) + " is not 1..8", error);
  }
}

}  // namespace

bool supports(GgmlType type) {
  return dispatch_type(type, [](auto) { return true; });
}

bool gemv(const void* w, GgmlType type, std::size_t N, std::size_t K, const float* x,
          std::size_t T, float* y, cudaStream_t stream, std::string* error) {
  if (!supports(type)) return launch_refused("gemv", "unsupported weight type " + std::to_string(static_cast<unsigned>(type)), error);
  if (N == 0 || T == 0) return true;
  const GgmlTypeInfo* info = ggml_type_info(static_cast<std::uint32_t>(type));
  if (K == 0 || K % info->block_elements != 0)
    return launch_refused("gemv", "K = " + std::to_string(K) + " is not a whole number of " + std::string(info->name) + " blocks", error);
  if (N > 0x7FFFFFFFu || K > 0x7FFFFFFFu) return launch_refused("gemv", "N or K too large", error);
  if (T > kGemvMaxRows) return launch_refused("gemv", "T = " + std::to_string(T) + " > kGemvMaxRows", error);
  if (reinterpret_cast<std::uintptr_t>(w) % 16 != 0) return launch_refused("gemv", "the weight is not 16-byte aligned", error);
  const auto* bytes = static_cast<const unsigned char*>(w);
  return dispatch_type(type, [&](auto tag) {
    return launch_gemv_rows<decltype(tag)::value>(bytes, N, K, x, T, y, stream, error);
  });
}

}  // namespace ponder::cuda
