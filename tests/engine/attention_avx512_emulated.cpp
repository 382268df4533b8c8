// The AVX-512 attention kernel of engine/cpu/attention_avx512.cpp compiled for CPUs without
// AVX-512, against SIMDe's portable definitions of the intrinsics (Debian's libsimde-dev), as
// attention_tile_avx512_emulated, which the tests hand to cpu::detail::emulate_isa
// (tests/support/cpu_isas.h). A translation unit of its own: its helpers have the names of
// matmul_avx512.cpp's.
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#define PONDER_SIMD_EMU 1
#include "engine/cpu/attention_avx512.cpp"
