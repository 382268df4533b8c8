#pragma once
// Host-side entry points of kernels/. Callable whether or not CUDA was compiled in: without
// CUDA (or without a usable GPU) they report why and do nothing.
//
// Errors never abort: every CUDA call is checked and its message returned to the caller.
#include <cstddef>
#include <string>

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

}  // namespace ponder::cuda
