#pragma once
// The CPU kernel paths a test can run here (test_engine only: it links the emulated kernels).
#include <vector>

#include "engine/cpu/attention_internal.h"
#include "engine/cpu/matmul.h"
#include "engine/cpu/matmul_internal.h"

namespace ponder::test {

// Every path this machine can run, in increasing order. Where the CPU has AVX2 but not AVX-512
// or AMX, those paths run their kernels compiled against emulations of the instructions
// (tests/engine/avx512_emulated.cpp, attention_avx512_emulated.cpp).
inline std::vector<cpu::Isa> cpu_isas() {
#if defined(PONDER_HAVE_AVX512_EMU)
  cpu::detail::emulate_isa(cpu::Isa::avx512, {cpu::detail::block_avx512_emulated, nullptr,
                                               cpu::detail::attention_tile_avx512_emulated});
  cpu::detail::emulate_isa(cpu::Isa::amx, {cpu::detail::block_amx_emulated, cpu::detail::pack_amx_bf16_emulated,
                                            cpu::detail::attention_tile_avx512_emulated});
#endif
  std::vector<cpu::Isa> out;
  for (cpu::Isa isa : {cpu::Isa::portable, cpu::Isa::avx2, cpu::Isa::avx512, cpu::Isa::amx})
    if (isa <= cpu::detail::usable_isa()) out.push_back(isa);
  return out;
}

}  // namespace ponder::test
