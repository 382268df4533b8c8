// The AVX-512 and AMX kernels of engine/cpu/matmul_avx512.cpp compiled for CPUs without them:
// AVX-512 from SIMDe's portable definitions of the intrinsics (Debian's libsimde-dev), AMX from
// amx_emu.h. Their entry points are then block_avx512_emulated and block_amx_emulated, which the
// tests hand to cpu::detail::emulate_isa (test_matmul.cpp).
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include "engine/amx_emu.h"

#define PONDER_SIMD_EMU 1
#include "engine/cpu/matmul_avx512.cpp"
