// Main of test_cuda: the CUDA kernels and backend against the CPU reference. Without a usable GPU
// every test is skipped with the reason (exit code 77, ctest's SKIP_RETURN_CODE); listing the tests
// (catch_discover_tests at build time) always works.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <string>

#include "kernels/cuda.h"

int main(int argc, char** argv) {
  bool listing = false;
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--list", 6) == 0) listing = true;
  std::string why;
  if (!listing && !ponder::cuda::available(&why)) {
    std::printf("SKIPPED: %s: the CUDA tests need a GPU (bench/gpu-check.sh runs them on one)\n", why.c_str());
    return 77;
  }
  if (!listing) std::printf("device: %s\n", ponder::cuda::describe_device().c_str());
  return Catch::Session().run(argc, argv);
}
