#pragma once
// Intel AMX (AMX-TILE and AMX-BF16, palette 1) emulated on the host, for the tests: the kernel of
// engine/cpu/matmul_avx512.cpp that uses it is compiled a second time with this header in front
// (tests/engine/avx512_emulated.cpp) and runs on CPUs without AMX. (AMX-INT8's TDPBSSD/TDPBUSD
// went with the int8 AMX kernels, 2026-11-30: slower than the VNNI tiles where measured.)
//
// Written from the instruction descriptions of Intel's Software Developer's Manual (LDTILECFG,
// TILELOADD, TILESTORED, TILEZERO, TDPBF16PS (below), TILERELEASE): the 64-byte configuration
// (palette, start_row, 2-15 reserved, 16-31 colsb of tiles 0-7 as 16-bit words, 32-47 reserved,
// 48-55 rows of tiles 0-7, 56-63 reserved) and loads that zero what is past colsb and rows.
// What the hardware faults on, this aborts on, with the reason: a bad
// configuration, a tile used before configuration or beyond its configured shape, and operand
// shapes that do not match (a.colsb / 4 != b.rows, dst.colsb != b.colsb, dst.rows != a.rows).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

// Unnamed inner namespace: each file that includes this gets its own copy (the rule of the
// kernel files, which are compiled with their own -m flags).
namespace ponder::test::amx_emu {
namespace {

struct State {
  bool configured = false;
  std::uint16_t colsb[8] = {};
  std::uint8_t rows[8] = {};
  std::uint8_t data[8][16][64] = {};
};

inline State& state() {
  thread_local State s;  // tile registers and configuration are per thread, as on the hardware
  return s;
}

[[noreturn]] inline void fault(const char* what, int tile = -1) {
  std::fprintf(stderr, "amx_emu: %s (tile %d)\n", what, tile);
  std::abort();
}

inline void loadconfig(const void* config) {
  const auto* b = static_cast<const unsigned char*>(config);
  State& s = state();
  s = State{};
  if (b[0] == 0) return;  // palette 0: the init state, tiles unconfigured
  if (b[0] != 1) fault("palette other than 0 or 1");
  if (b[1] != 0) fault("start_row not zero (restarting an interrupted load is not emulated)");
  for (int i = 2; i < 16; ++i)
    if (b[i] != 0) fault("reserved configuration bytes 2-15 not zero");
  for (int i = 32; i < 48; ++i)
    if (b[i] != 0) fault("reserved configuration bytes 32-47 not zero");
  for (int i = 56; i < 64; ++i)
    if (b[i] != 0) fault("reserved configuration bytes 56-63 not zero");
  for (int t = 0; t < 8; ++t) {
    s.colsb[t] = static_cast<std::uint16_t>(b[16 + 2 * t] | (b[17 + 2 * t] << 8));
    s.rows[t] = b[48 + t];
    if (s.colsb[t] > 64 || s.rows[t] > 16) fault("tile larger than 16 rows x 64 bytes", t);
    if ((s.colsb[t] == 0) != (s.rows[t] == 0)) fault("tile with rows but no columns or the reverse", t);
  }
  s.configured = true;
}

inline void release() { state() = State{}; }

inline State& tile(int t) {
  State& s = state();
  if (!s.configured) fault("tile instruction before LDTILECFG", t);
  if (t < 0 || t > 7) fault("no such tile", t);
  if (s.rows[t] == 0) fault("tile not configured", t);
  return s;
}

inline void loadd(int t, const void* base, std::ptrdiff_t stride) {
  State& s = tile(t);
  std::memset(s.data[t], 0, sizeof s.data[t]);
  for (int r = 0; r < s.rows[t]; ++r) std::memcpy(s.data[t][r], static_cast<const char*>(base) + r * stride, s.colsb[t]);
}

inline void stored(int t, void* base, std::ptrdiff_t stride) {
  State& s = tile(t);
  for (int r = 0; r < s.rows[t]; ++r) std::memcpy(static_cast<char*>(base) + r * stride, s.data[t][r], s.colsb[t]);
}

inline void zero(int t) { std::memset(tile(t).data[t], 0, sizeof state().data[t]); }

// The operands of a TDP* instruction: configured, distinct, of matching shapes.
inline State& dp_operands(int dst, int a, int b) {
  tile(dst), tile(a);
  State& s = tile(b);
  if (dst == a || dst == b || a == b) fault("TDP* operands not distinct", dst);
  if (s.colsb[a] % 4 != 0 || s.colsb[a] / 4 != s.rows[b]) fault("a.colsb / 4 != b.rows", a);
  if (s.colsb[dst] != s.colsb[b]) fault("dst.colsb != b.colsb", dst);
  if (s.rows[dst] != s.rows[a]) fault("dst.rows != a.rows", dst);
  return s;
}

// AMX-BF16's TDPBF16PS, as the manual's newer pseudocode has it: per row m and column n, two
// float partial sums (the even and the odd value of each bf16 pair) start at zero and take, pair
// after pair along k, a fused multiply-add of the pair's product (exact: 8 x 8 significant
// bits); then the two are added together and to dst. Inputs that are denormals (bf16, or dst's
// floats) count as zero (DAZ); every result that is a float denormal is flushed to zero (FTZ);
// rounding to nearest even; MXCSR is not used.
inline float bf16_daz(const std::uint8_t* p) {
  std::uint32_t bits = static_cast<std::uint32_t>(p[0] | (p[1] << 8)) << 16;
  if ((bits & 0x7F800000u) == 0) bits &= 0x80000000u;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline float ftz(float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7F800000u) == 0) bits &= 0x80000000u;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline void dpbf16ps(int dst, int a, int b) {
  State& s = dp_operands(dst, a, b);
  for (int m = 0; m < s.rows[dst]; ++m)
    for (int n = 0; n < s.colsb[dst] / 4; ++n) {
      float even = 0.0f, odd = 0.0f;
      for (int k = 0; k < s.colsb[a] / 4; ++k) {
        even = ftz(std::fma(bf16_daz(&s.data[a][m][4 * k]), bf16_daz(&s.data[b][k][4 * n]), even));
        odd = ftz(std::fma(bf16_daz(&s.data[a][m][4 * k + 2]), bf16_daz(&s.data[b][k][4 * n + 2]), odd));
      }
      float c;
      std::memcpy(&c, &s.data[dst][m][4 * n], 4);
      c = ftz(ftz(c) + ftz(even + odd));  // (DAZ on dst too: the same bits as FTZ)
      std::memcpy(&s.data[dst][m][4 * n], &c, 4);
    }
}

}  // namespace
}  // namespace ponder::test::amx_emu

// The intrinsics' names, as g++'s <immintrin.h> spells them (there they are macros or inline
// functions; a function-like macro of the same name takes precedence from here on).
#undef _tile_loadd
#undef _tile_stored
#undef _tile_zero
#undef _tile_dpbf16ps
#define _tile_loadconfig(config) ::ponder::test::amx_emu::loadconfig(config)
#define _tile_release() ::ponder::test::amx_emu::release()
#define _tile_loadd(t, base, stride) ::ponder::test::amx_emu::loadd((t), (base), static_cast<std::ptrdiff_t>(stride))
#define _tile_stored(t, base, stride) ::ponder::test::amx_emu::stored((t), (base), static_cast<std::ptrdiff_t>(stride))
#define _tile_zero(t) ::ponder::test::amx_emu::zero(t)
#define _tile_dpbf16ps(dst, a, b) ::ponder::test::amx_emu::dpbf16ps((dst), (a), (b))
