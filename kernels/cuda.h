#pragma once
// Host-side entry points of kernels/. Callable whether or not CUDA was compiled in: without
// CUDA (or without a usable GPU) they report why and do nothing.
//
// Errors never abort: every CUDA call is checked and its message returned to the caller.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "engine/backend.h"

namespace ponder::cuda {

/// True when CUDA support was compiled in and a device can be used. Any failure of the runtime
/// (no driver, error 35 "insufficient driver", no device) counts as "no GPU"; `why` says which.
bool available(std::string* why = nullptr);

/// Short description of device 0 ("NVIDIA H200, sm_90, 139 GiB"), or the reason there is none.
std::string describe_device();

/// RMSNorm of host arrays on the GPU (copies in, runs kernels/rms_norm.cu, copies out): the
/// plumbing check used by the tests against engine/cpu/rms_norm.
/// x, out: F32 [rows, n]; weight: F32 [n]. Returns false with `error` set on any CUDA failure.
bool rms_norm_host(const float* x, const float* weight, float* out, std::size_t rows,
                   std::size_t n, float eps, std::string* error);

/// The device's copy bandwidth in GB/s (bytes read + written per second by a 1 GiB
/// device-to-device copy, the best of several): decode's limit. 0 with `error` without a GPU.
double copy_bandwidth(std::string* error);

struct CudaBackendOptions {
  /// Fill the weights on the device with random values of their type instead of uploading the
  /// file's (benchmarks of real shapes from a file that holds no data: bench/gpu).
  bool random_weights = false;
  std::uint64_t seed = 1;
  /// Tokens per prefill pass at most (the plan may pick fewer to fit); 0 = 2048.
  std::uint32_t max_chunk = 0;
};

}  // namespace ponder::cuda

namespace ponder {

/// The CUDA backend (kernels/cuda_backend.cpp): weights uploaded once (streamed from the
/// mapping) and kept in device memory with the KV cache; decode replayed as one CUDA graph;
/// sampling on the device. Null with `error` when this build has no CUDA, no GPU is usable,
/// the model does not fit (the message names the largest context that would), or a CUDA call
/// failed.
std::unique_ptr<Backend> make_cuda_backend(const Model& model, const BackendOptions& options,
                                           std::string* error, const cuda::CudaBackendOptions& cuda_options = {});

enum class BackendChoice { cpu, cuda, automatic };
/// "cpu", "cuda" or "auto"; false for anything else.
bool parse_backend_choice(std::string_view name, BackendChoice* choice);
/// cpu: the CPU backend, when the host's memory holds the model, its KV cache and workspace
/// (engine/model.h's check_memory; else null with its message). cuda: the CUDA backend, or null
/// with its error (its own memory plan). automatic: the CUDA backend when a GPU is usable and the
/// model fits on it, else the CPU backend, with `note` set to why the GPU was not used (empty when
/// it was, or when no GPU is usable).
std::unique_ptr<Backend> make_backend(BackendChoice choice, const Model& model, const BackendOptions& options,
                                      std::string* error, std::string* note = nullptr);

}  // namespace ponder
