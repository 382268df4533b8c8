#include "engine/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace ponder {
namespace {

constexpr GgmlTypeInfo kTypes[] = {
    {GgmlType::f32, "f32", 1, 4},         {GgmlType::f16, "f16", 1, 2},
    {GgmlType::q4_0, "q4_0", 32, 18},     {GgmlType::q4_1, "q4_1", 32, 20},
    {GgmlType::q5_0, "q5_0", 32, 22},     {GgmlType::q5_1, "q5_1", 32, 24},
    {GgmlType::q8_0, "q8_0", 32, 34},     {GgmlType::q8_1, "q8_1", 32, 36},
    {GgmlType::q2_k, "q2_K", 256, 84},    {GgmlType::q3_k, "q3_K", 256, 110},
    {GgmlType::q4_k, "q4_K", 256, 144},   {GgmlType::q5_k, "q5_K", 256, 176},
    {GgmlType::q6_k, "q6_K", 256, 210},   {GgmlType::q8_k, "q8_K", 256, 292},
    {GgmlType::i8, "i8", 1, 1},           {GgmlType::i16, "i16", 1, 2},
    {GgmlType::i32, "i32", 1, 4},         {GgmlType::i64, "i64", 1, 8},
    {GgmlType::f64, "f64", 1, 8},         {GgmlType::bf16, "bf16", 1, 2},
};

std::uint16_t u16(const unsigned char* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
float half(const unsigned char* p) { return f16_to_f32(u16(p)); }

// Q4_K / Q5_K: eight 6-bit scales and eight 6-bit mins packed in 12 bytes.
void scale_min_k4(int j, const unsigned char* q, std::uint8_t* sc, std::uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<std::uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Q8_0: f16 d; i8 qs[32]. value = qs[j] * d.
void dequant_q8_0(const unsigned char* b, float* y) {
  const float d = half(b);
  const auto* qs = reinterpret_cast<const std::int8_t*>(b + 2);
  for (int j = 0; j < 32; ++j) y[j] = qs[j] * d;
}

// Q4_0: f16 d; u8 qs[16]: low nibbles are weights 0..15, high nibbles 16..31; (q - 8) * d.
void dequant_q4_0(const unsigned char* b, float* y) {
  const float d = half(b);
  const unsigned char* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = ((qs[j] & 0x0F) - 8) * d;
    y[j + 16] = ((qs[j] >> 4) - 8) * d;
  }
}

// Q4_K: f16 d; f16 dmin; u8 scales[12]; u8 qs[128]. Per 32 weights: d*sc*q - dmin*m.
void dequant_q4_k(const unsigned char* b, float* y) {
  const float d = half(b), min = half(b + 2);
  const unsigned char* scales = b + 4;
  const unsigned char* q = b + 16;
  for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
    std::uint8_t sc, m;
    scale_min_k4(is, scales, &sc, &m);
    const float d1 = d * sc, m1 = min * m;
    scale_min_k4(is + 1, scales, &sc, &m);
    const float d2 = d * sc, m2 = min * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
  }
}

// Q5_K: f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]. The fifth bit comes from qh.
void dequant_q5_k(const unsigned char* b, float* y) {
  const float d = half(b), min = half(b + 2);
  const unsigned char* scales = b + 4;
  const unsigned char* qh = b + 16;
  const unsigned char* ql = b + 48;
  unsigned u1 = 1, u2 = 2;
  for (int j = 0, is = 0; j < 256; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
    std::uint8_t sc, m;
    scale_min_k4(is, scales, &sc, &m);
    const float d1 = d * sc, m1 = min * m;
    scale_min_k4(is + 1, scales, &sc, &m);
    const float d2 = d * sc, m2 = min * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
  }
}

// Q6_K: u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d. Per 16 weights: d*sc*(q - 32).
void dequant_q6_k(const unsigned char* b, float* y) {
  const unsigned char* ql = b;
  const unsigned char* qh = b + 128;
  const auto* sc = reinterpret_cast<const std::int8_t*>(b + 192);
  const float d = half(b + 208);
  for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = static_cast<std::int8_t>((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = static_cast<std::int8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = static_cast<std::int8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = static_cast<std::int8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * sc[is + 0] * q1;
      y[l + 32] = d * sc[is + 2] * q2;
      y[l + 64] = d * sc[is + 4] * q3;
      y[l + 96] = d * sc[is + 6] * q4;
    }
  }
}

// ---- Quantizers (llama.cpp's quantize_row_*_ref) ----

void put_u16(unsigned char* p, std::uint16_t v) {
  p[0] = static_cast<unsigned char>(v & 0xFF);
  p[1] = static_cast<unsigned char>(v >> 8);
}

// Q8_0: d = max|x| / 127, qs[j] = round(x[j] / d) (half away from zero, as roundf).
void quant_q8_0(const float* x, unsigned char* b) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_u16(b, f32_to_f16(d));
  auto* qs = reinterpret_cast<std::int8_t*>(b + 2);
  for (int j = 0; j < 32; ++j) qs[j] = static_cast<std::int8_t>(std::roundf(x[j] * id));
}

// Q4_0: the weight of largest magnitude (first one on ties), with its sign, maps to -8:
// d = max / -8; q = min(15, trunc(x / d + 8.5)).
void quant_q4_0(const float* x, unsigned char* b) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 32; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  const float d = max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_u16(b, f32_to_f16(d));
  unsigned char* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    const int lo = std::min(15, static_cast<int>(static_cast<std::int8_t>(x[j] * id + 8.5f)));
    const int hi = std::min(15, static_cast<int>(static_cast<std::int8_t>(x[j + 16] * id + 8.5f)));
    qs[j] = static_cast<unsigned char>(lo | (hi << 4));
  }
}


// ---- K-quant helpers (llama.cpp's make_qkx2_quants / make_qx_quants) ----
// Every float operation below is written in the order ggml's reference code does it, so that
// the same inputs give the same blocks bit for bit. That also needs plain multiplies and adds:
// GCC fuses none in ISO mode (-std=c++20, no -ffp-contract=fast); a build that let it contract
// a*b+c into an FMA could round differently and pick other levels.

constexpr float kGroupMaxEps = 1e-15f;  // a group whose largest |x| is below this is all zero

// Round to the nearest integer, ties to even, by ggml's trick of adding 1.5 * 2^23 (valid for
// |v| < 2^22; beyond that it clamps, where ggml asserts).
int nearest_int(float v) {
  if (!(std::fabs(v) <= 4194303.0f)) return std::isnan(v) ? 0 : (v > 0 ? 4194303 : -4194303);
  const float shifted = v + 12582912.0f;
  std::int32_t bits;
  std::memcpy(&bits, &shifted, 4);
  return (bits & 0x007FFFFF) - 0x00400000;
}

// Asymmetric quantization of n weights to 0..nmax: x ~ scale * L - min (the returned min is
// positive, the offset to subtract). Starts from the full range, then tries nstep + 1 other
// inverse scales around nmax / (max - min) (from rmin to rmin + nstep * rdelta levels away),
// fitting scale and min by weighted least squares to each rounding, and keeps the rounding of
// least weighted squared error. `aux` is scratch of n entries.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, std::uint8_t* L,
                       float* the_min, std::uint8_t* aux, float rmin, float rdelta, int nstep) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;  // the offset only ever moves values down
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.0f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<std::uint8_t>(std::max(0, std::min(nmax, l)));
    const float diff = scale * L[i] + min - x[i];
    best_error += weights[i] * (diff * diff);
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min))));
      aux[i] = static_cast<std::uint8_t>(l);
      const float w = weights[i];
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
      if (this_min > 0) {  // a positive offset is not allowed: fit the scale alone
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float error = 0;
      for (int i = 0; i < n; ++i) {
        const float diff = this_scale * aux[i] + this_min - x[i];
        error += weights[i] * (diff * diff);
      }
      if (error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = aux[i];
        best_error = error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// Symmetric quantization of n weights to -nmax..nmax-1 (stored in L as 0..2*nmax-1), weighting
// each by x^2: the value of largest magnitude maps to -nmax, then 18 nearby inverse scales are
// tried and the one whose least-squares scale explains most of sum(w x^2) wins.
float make_qx_quants(int n, int nmax, const float* x, std::int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  auto level = [nmax](float v) { return std::max(-nmax, std::min(nmax - 1, nearest_int(v))); };
  float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = level(iscale * x[i]);
    L[i] = static_cast<std::int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = level(iscale * x[i]);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<std::int8_t>(level(iscale * x[i]) + nmax);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Q4_K / Q5_K share the super-block head: f16 d; f16 dmin; 12 bytes holding eight 6-bit scales
// and eight 6-bit mins (sub-blocks 0..3 in the low 6 bits of bytes 0..3 / 4..7; sub-blocks 4..7
// in the nibbles of bytes 8..11, their top 2 bits in the top bits of bytes 0..3 / 4..7).
// Fills the head from the per-32 (scale, min) pairs, then requantizes the weights in L (0..nmax)
// with the scales as stored; a sub-block whose stored scale is 0 keeps L from the search.
void quant_k_head(const float* x, unsigned char* b, const float* scales, const float* mins,
                  std::uint8_t* L, int nmax) {
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  unsigned char* packed = b + 4;
  for (int j = 0; j < 8; ++j) {
    // As ggml: the level goes through uint8_t before the clamp to 63.
    const auto ls = std::min<std::uint8_t>(63, static_cast<std::uint8_t>(nearest_int(inv_scale * scales[j])));
    const auto lm = std::min<std::uint8_t>(63, static_cast<std::uint8_t>(nearest_int(inv_min * mins[j])));
    if (j < 4) {
      packed[j] = ls;
      packed[j + 4] = lm;
    } else {
      packed[j + 4] = static_cast<unsigned char>((ls & 0xF) | ((lm & 0xF) << 4));
      packed[j - 4] = static_cast<unsigned char>(packed[j - 4] | ((ls >> 4) << 6));
      packed[j] = static_cast<unsigned char>(packed[j] | ((lm >> 4) << 6));
    }
  }
  put_u16(b, f32_to_f16(max_scale / 63.0f));
  put_u16(b + 2, f32_to_f16(max_min / 63.0f));
  const float d_all = half(b), min_all = half(b + 2);
  for (int j = 0; j < 8; ++j) {
    std::uint8_t sc, m;
    scale_min_k4(j, packed, &sc, &m);
    const float d = d_all * sc;
    if (d == 0.0f) continue;
    const float dm = min_all * m;
    for (int i = 0; i < 32; ++i) {
      const int l = nearest_int((x[32 * j + i] + dm) / d);
      L[32 * j + i] = static_cast<std::uint8_t>(std::max(0, std::min(nmax, l)));
    }
  }
}

// Q4_K / Q5_K: each 32 weights get a (scale, min) from make_qkx2_quants, weighted by
// rms(x) + |x|; Q4_K searches 21 steps from -1 level by 0.1, Q5_K 16 steps from -0.5.
void quant_k_sub_blocks(const float* x, int nmax, float rmin, int nstep, std::uint8_t* L,
                        float* scales, float* mins) {
  float weights[32];
  std::uint8_t aux[32];
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = make_qkx2_quants(32, nmax, xs, weights, L + 32 * j, &mins[j], aux, rmin, 0.1f, nstep);
  }
}

// Q4_K: head (16 bytes); u8 qs[128]: per 64 weights, 32 bytes with weights 0..31 in the low
// nibbles and 32..63 in the high nibbles.
void quant_q4_k(const float* x, unsigned char* b) {
  std::uint8_t L[256];
  float scales[8], mins[8];
  quant_k_sub_blocks(x, 15, -1.0f, 20, L, scales, mins);
  quant_k_head(x, b, scales, mins, L, 15);
  unsigned char* q = b + 16;
  for (int j = 0; j < 256; j += 64, q += 32)
    for (int l = 0; l < 32; ++l) q[l] = static_cast<unsigned char>(L[j + l] | (L[j + l + 32] << 4));
}

// Q5_K: head (16 bytes); u8 qh[32]; u8 qs[128]. The low 4 bits are laid out as Q4_K's; the
// fifth bit of weight 64*k + l goes to bit 2k of qh[l], of weight 64*k + 32 + l to bit 2k+1.
void quant_q5_k(const float* x, unsigned char* b) {
  std::uint8_t L[256];
  float scales[8], mins[8];
  quant_k_sub_blocks(x, 31, -0.5f, 15, L, scales, mins);
  quant_k_head(x, b, scales, mins, L, 31);
  unsigned char* qh = b + 16;
  unsigned char* ql = b + 48;
  std::memset(qh, 0, 32);
  unsigned m1 = 1, m2 = 2;
  for (int n = 0; n < 256; n += 64, m1 <<= 2, m2 <<= 2, ql += 32) {
    for (int j = 0; j < 32; ++j) {
      int l1 = L[n + j], l2 = L[n + j + 32];
      if (l1 > 15) {
        l1 -= 16;
        qh[j] = static_cast<unsigned char>(qh[j] | m1);
      }
      if (l2 > 15) {
        l2 -= 16;
        qh[j] = static_cast<unsigned char>(qh[j] | m2);
      }
      ql[j] = static_cast<unsigned char>(l1 | (l2 << 4));
    }
  }
}

// Q6_K: u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d. Each 16 weights get a scale from
// make_qx_quants (levels -32..31); the scales are quantized to int8 against the one of largest
// magnitude (which maps to -128). Per 128 weights: ql holds the low nibbles (weights l and
// l + 64 share ql[l], weights l + 32 and l + 96 share ql[l + 32]); qh[l] holds the top 2 bits of
// weights l, l + 32, l + 64, l + 96 in bits 0-1, 2-3, 4-5, 6-7.
void quant_q6_k(const float* x, unsigned char* b) {
  std::int8_t L[256];
  float scales[16];
  float max_scale = 0, max_abs_scale = 0;
  for (int j = 0; j < 16; ++j) {
    scales[j] = make_qx_quants(16, 32, x + 16 * j, L + 16 * j);
    const float abs_scale = std::fabs(scales[j]);
    if (abs_scale > max_abs_scale) {
      max_abs_scale = abs_scale;
      max_scale = scales[j];
    }
  }
  if (max_abs_scale < kGroupMaxEps) {  // all zero
    std::memset(b, 0, 210);
    return;
  }
  const float iscale = -128.0f / max_scale;
  put_u16(b + 208, f32_to_f16(1 / iscale));
  auto* sc = reinterpret_cast<std::int8_t*>(b + 192);
  for (int j = 0; j < 16; ++j) sc[j] = static_cast<std::int8_t>(std::min(127, nearest_int(iscale * scales[j])));
  const float d_all = half(b + 208);
  for (int j = 0; j < 16; ++j) {
    const float d = d_all * sc[j];
    if (d == 0.0f) continue;  // keeps L from the search
    for (int i = 0; i < 16; ++i) {
      const int l = std::max(-32, std::min(31, nearest_int(x[16 * j + i] / d)));
      L[16 * j + i] = static_cast<std::int8_t>(l + 32);
    }
  }
  unsigned char* ql = b;
  unsigned char* qh = b + 128;
  for (int j = 0; j < 256; j += 128, ql += 64, qh += 32) {
    for (int l = 0; l < 32; ++l) {
      const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
      ql[l] = static_cast<unsigned char>((q1 & 0xF) | ((q3 & 0xF) << 4));
      ql[l + 32] = static_cast<unsigned char>((q2 & 0xF) | ((q4 & 0xF) << 4));
      qh[l] = static_cast<unsigned char>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
    }
  }
}

}  // namespace

const GgmlTypeInfo* ggml_type_info(std::uint32_t id) {
  for (const auto& t : kTypes)
    if (static_cast<std::uint32_t>(t.type) == id) return &t;
  return nullptr;
}

bool can_dequantize(GgmlType type) {
  switch (type) {
    case GgmlType::f32: case GgmlType::f16: case GgmlType::bf16: case GgmlType::q8_0:
    case GgmlType::q4_0: case GgmlType::q4_k: case GgmlType::q5_k: case GgmlType::q6_k:
      return true;
    default:
      return false;
  }
}

float f16_to_f32(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t{h & 0x8000u} << 16;
  std::uint32_t exp = (h >> 10) & 0x1F;
  std::uint32_t mant = h & 0x3FFu;
  std::uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;  // ±0
    } else {      // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      bits = sign | ((127 - 15 - e) << 23) | ((mant & 0x3FFu) << 13);
    }
  } else if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf / NaN
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// A conversion of `n` weights to or from `type` is possible: a type it handles, whole blocks.
static bool check_conversion(GgmlType type, bool handled, const char* what, std::size_t n, std::string* error) {
  const GgmlTypeInfo* info = ggml_type_info(static_cast<std::uint32_t>(type));
  if (!info || !handled) {
    if (error)
      *error = std::string("cannot ") + what + " " +
               (info ? std::string(info->name) : std::to_string(static_cast<std::uint32_t>(type)));
    return false;
  }
  if (n % info->block_elements != 0) {
    if (error)
      *error = std::to_string(n) + " weights is not a whole number of " + std::string(info->name) +
               " blocks of " + std::to_string(info->block_elements);
    return false;
  }
  return true;
}

bool dequantize(GgmlType type, const void* src, float* dst, std::size_t n, std::string* error) {
  if (!check_conversion(type, can_dequantize(type), "dequantize type", n, error)) return false;
  const GgmlTypeInfo* info = ggml_type_info(static_cast<std::uint32_t>(type));
  const auto* p = static_cast<const unsigned char*>(src);
  const std::size_t blocks = n / info->block_elements;
  switch (type) {
    case GgmlType::f32: std::memcpy(dst, p, n * 4); break;
    case GgmlType::f16: for (std::size_t i = 0; i < n; ++i) dst[i] = half(p + 2 * i); break;
    case GgmlType::bf16: for (std::size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(u16(p + 2 * i)); break;
    case GgmlType::q8_0: for (std::size_t b = 0; b < blocks; ++b) dequant_q8_0(p + 34 * b, dst + 32 * b); break;
    case GgmlType::q4_0: for (std::size_t b = 0; b < blocks; ++b) dequant_q4_0(p + 18 * b, dst + 32 * b); break;
    case GgmlType::q4_k: for (std::size_t b = 0; b < blocks; ++b) dequant_q4_k(p + 144 * b, dst + 256 * b); break;
    case GgmlType::q5_k: for (std::size_t b = 0; b < blocks; ++b) dequant_q5_k(p + 176 * b, dst + 256 * b); break;
    case GgmlType::q6_k: for (std::size_t b = 0; b < blocks; ++b) dequant_q6_k(p + 210 * b, dst + 256 * b); break;
    default: break;
  }
  return true;
}

// The same types both ways.
bool can_quantize(GgmlType type) { return can_dequantize(type); }

std::size_t row_bytes(GgmlType type, std::size_t n) {
  const GgmlTypeInfo* info = ggml_type_info(static_cast<std::uint32_t>(type));
  if (!info) return 0;
  return n / info->block_elements * info->block_bytes;
}

std::uint16_t f32_to_f16(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7FFFFFFFu;
  if (x > 0x7F800000u) {  // NaN: keep the top of the payload, and make sure it stays a NaN
    auto mant = static_cast<std::uint16_t>((x >> 13) & 0x3FFu);
    if (mant == 0) mant = 0x200;
    return static_cast<std::uint16_t>(sign | 0x7C00u | mant);
  }
  if (x >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // >= 65520: inf
  const std::uint32_t exp = x >> 23;
  if (exp < 113) {  // below 2^-14: a half subnormal, in units of 2^-24
    const std::uint32_t shift = 126 - exp;
    if (shift > 24) return sign;  // below 2^-25 (or exactly it: the tie goes to even 0)
    const std::uint32_t mant = (x & 0x7FFFFFu) | 0x800000u;
    std::uint32_t q = mant >> shift;
    const std::uint32_t rest = mant & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (q & 1))) ++q;  // may carry into the smallest normal
    return static_cast<std::uint16_t>(sign | q);
  }
  std::uint32_t h = ((exp - 112) << 10) | ((x >> 13) & 0x3FFu);
  const std::uint32_t rest = x & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) ++h;  // a carry moves into the exponent
  return static_cast<std::uint16_t>(sign | h);
}

std::uint16_t f32_to_bf16(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) {  // NaN: keep the top of the payload, stay a NaN
    auto h = static_cast<std::uint16_t>(x >> 16);
    if ((h & 0x7Fu) == 0) h |= 0x40u;
    return h;
  }
  // Round to nearest even; a carry out of the largest finite value gives infinity.
  return static_cast<std::uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

bool quantize(GgmlType type, const float* src, void* dst, std::size_t n, std::string* error) {
  if (!check_conversion(type, can_quantize(type), "quantize to type", n, error)) return false;
  const GgmlTypeInfo* info = ggml_type_info(static_cast<std::uint32_t>(type));
  auto* p = static_cast<unsigned char*>(dst);
  const std::size_t blocks = n / info->block_elements;
  switch (type) {
    case GgmlType::f32: std::memcpy(p, src, n * 4); break;
    case GgmlType::f16: for (std::size_t i = 0; i < n; ++i) put_u16(p + 2 * i, f32_to_f16(src[i])); break;
    case GgmlType::bf16: for (std::size_t i = 0; i < n; ++i) put_u16(p + 2 * i, f32_to_bf16(src[i])); break;
    case GgmlType::q8_0: for (std::size_t b = 0; b < blocks; ++b) quant_q8_0(src + 32 * b, p + 34 * b); break;
    case GgmlType::q4_0: for (std::size_t b = 0; b < blocks; ++b) quant_q4_0(src + 32 * b, p + 18 * b); break;
    case GgmlType::q4_k: for (std::size_t b = 0; b < blocks; ++b) quant_q4_k(src + 256 * b, p + 144 * b); break;
    case GgmlType::q5_k: for (std::size_t b = 0; b < blocks; ++b) quant_q5_k(src + 256 * b, p + 176 * b); break;
    case GgmlType::q6_k: for (std::size_t b = 0; b < blocks; ++b) quant_q6_k(src + 256 * b, p + 210 * b); break;
    default: break;
  }
  return true;
}

}  // namespace ponder
