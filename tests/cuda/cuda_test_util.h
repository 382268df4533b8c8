#pragma once
// What the CUDA tests share: device buffers, fresh random inputs, poisoned outputs, and the
// normalised error ‖a − b‖ / ‖b‖. Compiled by g++ (the kernels are reached through kernels/ops.h).
#include <cuda_runtime.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace ponder::test {

/// A launcher's result, checked: fails the test with its message.
#define CUDA_OK(call)                                             \
  do {                                                           \
    std::string cuda_ok_error_;                                  \
    const bool cuda_ok_ = (call);                                \
    INFO(#call << ": " << cuda_ok_error_);                       \
    REQUIRE(cuda_ok_);                                           \
  } while (0)
/// A call that returns false with `error` set, checked (the message shown when it fails).
#define REQUIRE_OK(call, error)                                   \
  do {                                                           \
    const bool require_ok_ = (call);                             \
    INFO(#call << ": " << (error));                              \
    REQUIRE(require_ok_);                                        \
  } while (0)
/// A runtime call, checked.
#define CUDA_RT(call)                                                       \
  do {                                                                     \
    const cudaError_t cuda_rt_ = (call);                                   \
    INFO(#call << ": " << cudaGetErrorString(cuda_rt_));                   \
    REQUIRE(cuda_rt_ == cudaSuccess);                                      \
  } while (0)

/// Device memory for n elements of T, freed at scope end.
template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t n) : n_(n) { CUDA_RT(cudaMalloc(&p_, bytes() ? bytes() : 1)); }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return p_; }
  std::size_t size() const { return n_; }
  std::size_t bytes() const { return n_ * sizeof(T); }
  void upload(const std::vector<T>& host) {
    REQUIRE(host.size() == n_);
    CUDA_RT(cudaMemcpy(p_, host.data(), bytes(), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    CUDA_RT(cudaDeviceSynchronize());
    CUDA_RT(cudaMemcpy(host.data(), p_, bytes(), cudaMemcpyDeviceToHost));
    return host;
  }
  /// Fills with 0xFF bytes (NaN for floats): an element a kernel forgot to write shows.
  void poison() { CUDA_RT(cudaMemset(p_, 0xFF, bytes())); }

 private:
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

/// A generator seeded differently on every run (the seed is printed when a check fails).
inline std::mt19937_64& fresh_rng() {
  static std::mt19937_64 rng(std::random_device{}());
  return rng;
}

/// n normal(0, scale) floats, never all zero.
inline std::vector<float> random_floats(std::size_t n, float scale, std::mt19937_64& rng = fresh_rng()) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

/// ‖a − b‖ / ‖b‖ in double; infinity when a holds a NaN or an infinity.
inline double rel_error(const float* a, const float* b, std::size_t n) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    const double d = double(a[i]) - double(b[i]);
    num += d * d;
    den += double(b[i]) * double(b[i]);
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}
inline double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  return rel_error(a.data(), b.data(), a.size());
}

}  // namespace ponder::test
