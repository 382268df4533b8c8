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

bool dequantize(GgmlType type, const void* src, float* dst, std::size_t n, std::string* error) {
  const GgmlTypeInfo* info = ggml_type_info(static_cast<std::uint32_t>(type));
  if (!info || !can_dequantize(type)) {
    if (error)
      *error = "cannot dequantize type " + (info ? std::string(info->name)
                                                 : std::to_string(static_cast<std::uint32_t>(type)));
    return false;
  }
  if (n % info->block_elements != 0) {
    if (error)
      *error = std::to_string(n) + " weights is not a whole number of " + std::string(info->name) +
               " blocks of " + std::to_string(info->block_elements);
    return false;
  }
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

bool can_quantize(GgmlType type) {
  switch (type) {
    case GgmlType::f32: case GgmlType::f16: case GgmlType::bf16: case GgmlType::q8_0:
    case GgmlType::q4_0: case GgmlType::q4_k: case GgmlType::q5_k: case GgmlType::q6_k:
      return true;
    default:
      return false;
  }
}

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
  const GgmlTypeInfo* info = ggml_type_info(static_cast<std::uint32_t>(type));
  if (!info || !can_quantize(type)) {
    if (error)
      *error = "cannot quantize to type " + (info ? std::string(info->name)
                                                  : std::to_string(static_cast<std::uint32_t>(type)));
    return false;
  }
  if (n % info->block_elements != 0) {
    if (error)
      *error = std::to_string(n) + " weights is not a whole number of " + std::string(info->name) +
               " blocks of " + std::to_string(info->block_elements);
    return false;
  }
  auto* p = static_cast<unsigned char*>(dst);
  const std::size_t blocks = n / info->block_elements;
  switch (type) {
    case GgmlType::f32: std::memcpy(p, src, n * 4); break;
    case GgmlType::f16: for (std::size_t i = 0; i < n; ++i) put_u16(p + 2 * i, f32_to_f16(src[i])); break;
    case GgmlType::bf16: for (std::size_t i = 0; i < n; ++i) put_u16(p + 2 * i, f32_to_bf16(src[i])); break;
    case GgmlType::q8_0: for (std::size_t b = 0; b < blocks; ++b) quant_q8_0(src + 32 * b, p + 34 * b); break;
    case GgmlType::q4_0: for (std::size_t b = 0; b < blocks; ++b) quant_q4_0(src + 32 * b, p + 18 * b); break;
    default:
      if (error) *error = "quantizing to " + std::string(info->name) + " is not written yet";
      return false;
  }
  return true;
}

}  // namespace ponder
