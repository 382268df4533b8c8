#pragma once
// Per-block decoders of the weight types the CUDA kernels read (F32, F16, BF16, Q8_0, Q4_0,
// Q4_K, Q5_K, Q6_K; ggml's block layouts, as engine/quant.cpp's reference dequantizers), written
// once for the device (nvcc) and the host (plain g++: tests/engine/test_cuda_blocks.cpp checks
// them bit for bit against ponder::dequantize without a GPU).
//
// The unit of work is a *group*: 8 consecutive elements of a row, starting at an element index
// that is a multiple of 8. A group never straddles a block or a sub-block of one scale (blocks
// hold 32 or 256 elements, sub-blocks 16 or 32), so it decodes to
//
//     value[i] = scale * q[i] - min          (i < 8; min = 0 for the symmetric types)
//
// with q[i] small integers held exactly in floats. gemv uses that form directly
// (Σ value·x = scale·Σ q·x − min·Σ x: two multiplies per group instead of per element);
// decode8 / decode1 give the values themselves, computed with the reference's operations in the
// reference's order and never fused into an FMA, so they are bit-identical to ponder::dequantize.
// For F32 / F16 / BF16 the "q" are the values themselves (scale 1, min 0).
//
// Addressing: `base` is the start of a run of whole blocks (a row, or a whole tensor) and `e` the
// element index from there. On the device the loads are typed, so `base` must be aligned as the
// type's blocks are in a tensor that starts 16-byte aligned: 2 bytes (F16, BF16, Q8_0, Q4_0,
// Q6_K: blocks of 2, 34, 18, 210 bytes), 4 (F32), 16 (Q4_K, Q5_K: 144 and 176 bytes). On the
// host every load goes through memcpy and any alignment works.
#include <cstddef>
#include <cstdint>
#include <cstring>

#ifdef __CUDACC__
#include <cuda_fp16.h>
#define PONDER_HD __host__ __device__ __forceinline__
#else
#define PONDER_HD inline
#endif
#ifdef __CUDA_ARCH__  // the device pass only: the host compiler warns of an unknown pragma
#define PONDER_UNROLL _Pragma("unroll")
#else
#define PONDER_UNROLL
#endif

#include "engine/quant.h"

namespace ponder::blocks {

// ---- Layout constants -------------------------------------------------------------------------

template <GgmlType kType>
struct Traits;
// kElements / kBytes: one block. kHasMin: the group form subtracts a min (Q4_K, Q5_K).
// kFloat: the elements are stored values, not quants (F32, F16, BF16).
template <> struct Traits<GgmlType::f32> {
  static constexpr int kElements = 1, kBytes = 4, kAlign = 4;
  static constexpr bool kHasMin = false, kFloat = true;
};
template <> struct Traits<GgmlType::f16> {
  static constexpr int kElements = 1, kBytes = 2, kAlign = 2;
  static constexpr bool kHasMin = false, kFloat = true;
};
template <> struct Traits<GgmlType::bf16> {
  static constexpr int kElements = 1, kBytes = 2, kAlign = 2;
  static constexpr bool kHasMin = false, kFloat = true;
};
template <> struct Traits<GgmlType::q8_0> {
  static constexpr int kElements = 32, kBytes = 34, kAlign = 2;
  static constexpr bool kHasMin = false, kFloat = false;
};
template <> struct Traits<GgmlType::q4_0> {
  static constexpr int kElements = 32, kBytes = 18, kAlign = 2;
  static constexpr bool kHasMin = false, kFloat = false;
};
template <> struct Traits<GgmlType::q4_k> {
  static constexpr int kElements = 256, kBytes = 144, kAlign = 16;
  static constexpr bool kHasMin = true, kFloat = false;
};
template <> struct Traits<GgmlType::q5_k> {
  static constexpr int kElements = 256, kBytes = 176, kAlign = 16;
  static constexpr bool kHasMin = true, kFloat = false;
};
template <> struct Traits<GgmlType::q6_k> {
  static constexpr int kElements = 256, kBytes = 210, kAlign = 2;
  static constexpr bool kHasMin = false, kFloat = false;
};

/// Elements per group.
constexpr int kGroup = 8;

/// One decoded group: value[i] = scale * q[i] - min (see the top of the file).
struct Group {
  float q[kGroup];
  float scale;
  float min;
};

// ---- Loads and exact arithmetic ---------------------------------------------------------------

/// Little-endian 16-bit load; on the device `p` is 2-byte aligned.
PONDER_HD std::uint32_t load_u16(const unsigned char* p) {
#ifdef __CUDA_ARCH__
  return *reinterpret_cast<const std::uint16_t*>(p);
#else
  std::uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
#endif
}

/// Little-endian 32-bit load; on the device `p` is 4-byte aligned.
PONDER_HD std::uint32_t load_u32(const unsigned char* p) {
#ifdef __CUDA_ARCH__
  return *reinterpret_cast<const std::uint32_t*>(p);
#else
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
#endif
}

/// True when `p` is 16-byte aligned (a group of F32/F16/BF16 elements then loads as vectors).
PONDER_HD bool aligned16(const unsigned char* p) {
  return (reinterpret_cast<std::uintptr_t>(p) & 15u) == 0;
}

/// 16 bytes from a 16-byte aligned address as four little-endian words (one vector load on the
/// device).
PONDER_HD void load16(const unsigned char* p, std::uint32_t* w) {
#ifdef __CUDA_ARCH__
  const uint4 v = *reinterpret_cast<const uint4*>(p);
  w[0] = v.x, w[1] = v.y, w[2] = v.z, w[3] = v.w;
#else
  std::memcpy(w, p, 16);
#endif
}

/// 32 bits from a 2-byte aligned address (two 16-bit loads on the device).
PONDER_HD std::uint32_t load_u32_a2(const unsigned char* p) {
  return load_u16(p) | (load_u16(p + 2) << 16);
}

PONDER_HD float bits_to_float(std::uint32_t bits) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(bits);
#else
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
#endif
}

/// IEEE half to float, bit-exact (subnormals, infinities; NaN payloads on the host).
PONDER_HD float half_to_float(std::uint32_t h) {
#ifdef __CUDA_ARCH__
  return __half2float(__ushort_as_half(static_cast<unsigned short>(h)));
#else
  const std::uint32_t sign = (h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
  if (exp == 0x1F) return bits_to_float(sign | 0x7F800000u | (mant << 13));  // inf, NaN
  if (exp != 0) return bits_to_float(sign | ((exp + 112) << 23) | (mant << 13));
  // Zero or subnormal: mant · 2^-24, exact in a float.
  const float magnitude = static_cast<float>(mant) * 5.9604644775390625e-8f;
  std::uint32_t bits;
  std::memcpy(&bits, &magnitude, 4);
  return bits_to_float(bits | sign);
#endif
}

PONDER_HD float bf16_to_float(std::uint32_t b) { return bits_to_float(b << 16); }

/// `v - offset` as a float for 0 ≤ v < 2^23, exact. On the device without an int→float
/// conversion (a slow unit): the bits 0x4B000000 | v are the float 2^23 + v.
PONDER_HD float small_int(std::uint32_t v, int offset) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(0x4B000000u | v) - static_cast<float>(8388608 + offset);
#else
  return static_cast<float>(static_cast<int>(v) - offset);
#endif
}

/// a * b rounded, then - c rounded: never fused into one FMA (the reference rounds twice).
PONDER_HD float mul_sub(float a, float b, float c) {
#ifdef __CUDA_ARCH__
  return __fsub_rn(__fmul_rn(a, b), c);
#else
  const float p = a * b;  // engine code is built with -ffp-contract=off (ISO C++ mode)
  return p - c;
#endif
}

PONDER_HD float mul(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

/// Q4_K / Q5_K: scale and min of sub-block j (0..7), 6 bits each, packed in 12 bytes: sub-blocks
/// 0..3 in the low 6 bits of bytes 0..3 (scales) and 4..7 (mins); sub-blocks 4..7 in the nibbles
/// of bytes 8..11 (scale low, min high) with their top 2 bits in the top bits of bytes 0..3 /
/// 4..7. llama.cpp's get_scale_min_k4.
PONDER_HD void scale_min_k4(int j, const unsigned char* q, std::uint32_t* sc, std::uint32_t* m) {
  if (j < 4) {
    *sc = q[j] & 63u;
    *m = q[j + 4] & 63u;
  } else {
    *sc = (q[j + 4] & 0xFu) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// ---- Groups -----------------------------------------------------------------------------------

/// Eight bytes from `p` as two words (little-endian: byte i of the eight is bits 8(i%4) of
/// word i/4). `kAlign` is the alignment of `p` on the device.
template <int kAlign>
PONDER_HD void load8(const unsigned char* p, std::uint32_t* lo, std::uint32_t* hi) {
  if constexpr (kAlign >= 4) {
    *lo = load_u32(p);
    *hi = load_u32(p + 4);
  } else {
    *lo = load_u32_a2(p);
    *hi = load_u32_a2(p + 4);
  }
}

PONDER_HD std::uint32_t byte_of(std::uint32_t lo, std::uint32_t hi, int i) {
  return ((i < 4 ? lo : hi) >> (8 * (i & 3))) & 0xFFu;
}

/// The group of elements e .. e + 7 (e a multiple of 8) of the run of blocks at `base`.
template <GgmlType kType>
PONDER_HD void load_group(const unsigned char* base, std::size_t e, Group& g) {
  using Tr = Traits<kType>;
  const unsigned char* b = base + (e / Tr::kElements) * Tr::kBytes;
  const unsigned off = static_cast<unsigned>(e % Tr::kElements);  // within the block
  g.scale = 1.0f;
  g.min = 0.0f;
  if constexpr (kType == GgmlType::f32) {
    if (aligned16(b)) {  // two 16-byte loads (K a multiple of 4)
      std::uint32_t w[8];
      load16(b, w);
      load16(b + 16, w + 4);
      PONDER_UNROLL
      for (int i = 0; i < 8; ++i) g.q[i] = bits_to_float(w[i]);
    } else {
      PONDER_UNROLL
      for (int i = 0; i < 8; ++i) g.q[i] = bits_to_float(load_u32(b + 4 * i));
    }
  } else if constexpr (kType == GgmlType::f16 || kType == GgmlType::bf16) {
    std::uint32_t h[8];
    if (aligned16(b)) {  // one 16-byte load (K a multiple of 8): no bank conflicts
      std::uint32_t w[4];
      load16(b, w);
      PONDER_UNROLL
      for (int i = 0; i < 4; ++i) h[2 * i] = w[i] & 0xFFFFu, h[2 * i + 1] = w[i] >> 16;
    } else {
      PONDER_UNROLL
      for (int i = 0; i < 8; ++i) h[i] = load_u16(b + 2 * i);
    }
    PONDER_UNROLL
    for (int i = 0; i < 8; ++i)
      g.q[i] = kType == GgmlType::f16 ? half_to_float(h[i]) : bf16_to_float(h[i]);
  } else if constexpr (kType == GgmlType::q8_0) {
    // f16 d; i8 qs[32]. value = qs[j] * d.
    g.scale = half_to_float(load_u16(b));
    std::uint32_t lo, hi;
    load8<2>(b + 2 + off, &lo, &hi);
    PONDER_UNROLL
    for (int i = 0; i < 8; ++i) g.q[i] = small_int(byte_of(lo, hi, i) ^ 0x80u, 128);  // int8
  } else if constexpr (kType == GgmlType::q4_0) {
    // f16 d; u8 qs[16]: low nibbles are elements 0..15, high nibbles 16..31. (q - 8) * d.
    g.scale = half_to_float(load_u16(b));
    std::uint32_t lo, hi;
    load8<2>(b + 2 + (off & 15u), &lo, &hi);
    const int shift = off >= 16 ? 4 : 0;
    PONDER_UNROLL
    for (int i = 0; i < 8; ++i) g.q[i] = small_int((byte_of(lo, hi, i) >> shift) & 0xFu, 8);
  } else if constexpr (kType == GgmlType::q4_k || kType == GgmlType::q5_k) {
    // f16 d; f16 dmin; u8 scales[12]; (Q5_K: u8 qh[32];) u8 qs[128]. Per 64 elements, 32 bytes
    // of qs: elements 0..31 in the low nibbles, 32..63 in the high ones, each 32 with its own
    // 6-bit scale and min (sub-block 2c and 2c + 1). Q5_K's fifth bit of element 64c + l is bit
    // 2c of qh[l], of element 64c + 32 + l bit 2c + 1. value = d*sc * q - dmin*m.
    const unsigned chunk = off / 64, high = (off / 32) & 1u, l0 = off % 32;
    std::uint32_t sc, m;
    scale_min_k4(static_cast<int>(2 * chunk + high), b + 4, &sc, &m);
    g.scale = mul(half_to_float(load_u16(b)), static_cast<float>(sc));
    g.min = mul(half_to_float(load_u16(b + 2)), static_cast<float>(m));
    constexpr unsigned qs_at = kType == GgmlType::q4_k ? 16 : 48;
    std::uint32_t lo, hi;
    load8<8>(b + qs_at + 32 * chunk + l0, &lo, &hi);
    const int shift = high ? 4 : 0;
    if constexpr (kType == GgmlType::q4_k) {
      PONDER_UNROLL
      for (int i = 0; i < 8; ++i) g.q[i] = small_int((byte_of(lo, hi, i) >> shift) & 0xFu, 0);
    } else {
      std::uint32_t hlo, hhi;
      load8<8>(b + 16 + l0, &hlo, &hhi);
      const int bit = static_cast<int>(2 * chunk + high);
      PONDER_UNROLL
      for (int i = 0; i < 8; ++i)
        g.q[i] = small_int(((byte_of(lo, hi, i) >> shift) & 0xFu) |
                               (((byte_of(hlo, hhi, i) >> bit) & 1u) << 4), 0);
    }
  } else if constexpr (kType == GgmlType::q6_k) {
    // u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d. Per 128 elements (half h): ql[64h + l] holds
    // the low nibbles of elements l (low) and l + 64 (high), ql[64h + 32 + l] those of l + 32 and
    // l + 96; qh[32h + l] the top 2 bits of l, l + 32, l + 64, l + 96 (bits 0-1, 2-3, 4-5, 6-7).
    // Element 128h + 32qd + l has scale scales[8h + l/16 + 2qd]. value = d*sc * (q - 32).
    const unsigned h = off / 128, qd = (off / 32) & 3u, l0 = off % 32;
    std::uint32_t lo, hi, hlo, hhi;
    load8<2>(b + 64 * h + 32 * (qd & 1u) + l0, &lo, &hi);
    load8<2>(b + 128 + 32 * h + l0, &hlo, &hhi);
    const int shift = (qd >> 1) ? 4 : 0, hshift = static_cast<int>(2 * qd);
    const auto sc = static_cast<std::int8_t>(b[192 + 8 * h + l0 / 16 + 2 * qd]);
    g.scale = mul(half_to_float(load_u16(b + 208)), static_cast<float>(sc));
    PONDER_UNROLL
    for (int i = 0; i < 8; ++i)
      g.q[i] = small_int(((byte_of(lo, hi, i) >> shift) & 0xFu) |
                             (((byte_of(hlo, hhi, i) >> hshift) & 3u) << 4), 32);
  } else {
    static_assert(kType == GgmlType::f32, "no decoder for this type");
  }
}

/// The values of elements e .. e + 7 (e a multiple of 8), bit-identical to ponder::dequantize.
template <GgmlType kType>
PONDER_HD void decode8(const unsigned char* base, std::size_t e, float* out) {
  Group g;
  load_group<kType>(base, e, g);
  PONDER_UNROLL
  for (int i = 0; i < kGroup; ++i) {
    if constexpr (Traits<kType>::kFloat) out[i] = g.q[i];
    else if constexpr (Traits<kType>::kHasMin) out[i] = mul_sub(g.scale, g.q[i], g.min);
    else out[i] = mul(g.scale, g.q[i]);
  }
}

/// The value of element e (any index), bit-identical to ponder::dequantize. For the tails of
/// F32 / F16 / BF16 runs whose length is not a multiple of 8.
template <GgmlType kType>
PONDER_HD float decode1(const unsigned char* base, std::size_t e) {
  if constexpr (kType == GgmlType::f32) {
    return bits_to_float(load_u32(base + 4 * e));
  } else if constexpr (kType == GgmlType::f16) {
    return half_to_float(load_u16(base + 2 * e));
  } else if constexpr (kType == GgmlType::bf16) {
    return bf16_to_float(load_u16(base + 2 * e));
  } else {
    float v[kGroup];
    decode8<kType>(base, e & ~static_cast<std::size_t>(kGroup - 1), v);
    return v[e % kGroup];
  }
}

}  // namespace ponder::blocks
