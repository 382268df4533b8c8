// The AVX-512 kernels compiled against SIMDe's portable AVX-512 (tests only; see the top of
// matmul_avx512.cpp). A file of its own because CMake's per-source compile options would
// otherwise give this copy the -mavx512* flags of the real one.
#define PONDER_SIMD_EMU 1
#include "engine/cpu/matmul_avx512.cpp"
