// qkv_rope_store (kernels/rope.cu) against a host reference that follows engine/cpu/cpu_backend.cpp
// step by step (bias, per-head RMSNorm with engine/cpu/rms_norm, RoPE with cos/sin from the angle
// in double, the store through ponder::quantize): the rotated q, the K and V rows written at
// *d_pos + t in each cache type, and the rows around them left alone.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <tuple>
#include <utility>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "engine/cpu/rms_norm.h"
#include "engine/quant.h"
#include "kernels/ops.h"

using namespace ponder;
using ponder::test::DeviceBuffer;
using ponder::test::rel_error;

namespace {

struct RopeCase {
  std::uint32_t n_head, n_head_kv, head_dim;
  std::size_t T;
  std::uint32_t first_pos;
  GgmlType type;
  bool adjacent, bias, qk_norm;
  float rope_scale;
};

// Dequantized rows [p0, p0 + n) of a cache of `row_elems` per row.
std::vector<float> rows_f32(const std::vector<unsigned char>& cache, GgmlType type, std::size_t row_elems,
                            std::size_t p0, std::size_t n) {
  const std::size_t rb = row_bytes(type, row_elems);
  std::vector<float> out(n * row_elems);
  REQUIRE(dequantize(type, cache.data() + p0 * rb, out.data(), n * row_elems, nullptr));
  return out;
}

void run_case(const RopeCase& c) {
  auto& rng = test::fresh_rng();
  const std::uint32_t D = c.head_dim, H = c.n_head, Hkv = c.n_head_kv;
  const std::size_t qd = std::size_t{H} * D, kvd = std::size_t{Hkv} * D, T = c.T;
  INFO("heads " << H << "/" << Hkv << " D " << D << " T " << T << " first_pos " << c.first_pos << " type "
                << static_cast<int>(c.type) << " adjacent " << c.adjacent << " bias " << c.bias << " qk_norm "
                << c.qk_norm << " rope_scale " << c.rope_scale);

  std::vector<float> q = test::random_floats(T * qd, 1.5f, rng), k = test::random_floats(T * kvd, 1.5f, rng),
                     v = test::random_floats(T * kvd, 1.5f, rng);
  std::vector<float> bq = test::random_floats(qd, 0.5f, rng), bk = test::random_floats(kvd, 0.5f, rng),
                     bv = test::random_floats(kvd, 0.5f, rng);
  std::vector<float> qn = test::random_floats(D, 0.3f, rng), kn = test::random_floats(D, 0.3f, rng);
  for (float& x : qn) x += 1.0f;
  for (float& x : kn) x += 1.0f;
  // Inverse frequencies as the CPU backend computes them (theta^(-2i/D)), then a YaRN-like
  // ramp that divides the low frequencies.
  std::vector<double> inv_freq(D / 2);
  for (std::uint32_t i = 0; i < D / 2; ++i) {
    inv_freq[i] = std::pow(1000000.0, -2.0 * i / D);
    if (c.rope_scale != 1.0f && i > D / 4) inv_freq[i] /= 4.0;
  }
  const float eps = 1e-6f;

  // Host reference.
  std::vector<float> rq = q, rk = k, rv = v;
  const std::size_t positions = c.first_pos + T + 2;  // one spare row after the batch
  const std::size_t rb = row_bytes(c.type, kvd);
  std::vector<unsigned char> ref_k(positions * rb), ref_v(positions * rb);
  for (std::size_t t = 0; t < T; ++t) {
    float* qt = rq.data() + t * qd;
    float* kt = rk.data() + t * kvd;
    float* vt = rv.data() + t * kvd;
    if (c.bias) {
      for (std::size_t i = 0; i < qd; ++i) qt[i] += bq[i];
      for (std::size_t i = 0; i < kvd; ++i) kt[i] += bk[i], vt[i] += bv[i];
    }
    if (c.qk_norm) {
      cpu::rms_norm(qt, qn.data(), qt, H, D, eps);
      cpu::rms_norm(kt, kn.data(), kt, Hkv, D, eps);
    }
    const double pos = static_cast<double>(c.first_pos + t);
    std::vector<float> cs(D / 2), sn(D / 2);
    for (std::uint32_t i = 0; i < D / 2; ++i) {
      const double angle = pos * inv_freq[i];
      cs[i] = static_cast<float>(double(c.rope_scale) * std::cos(angle));
      sn[i] = static_cast<float>(double(c.rope_scale) * std::sin(angle));
    }
    for (auto [x, heads] : {std::pair{qt, H}, std::pair{kt, Hkv}})
      for (std::uint32_t h = 0; h < heads; ++h) {
        float* hv = x + std::size_t{h} * D;
        for (std::uint32_t i = 0; i < D / 2; ++i) {
          float* a = c.adjacent ? hv + 2 * i : hv + i;
          float* b = c.adjacent ? hv + 2 * i + 1 : hv + i + D / 2;
          const float x0 = *a, x1 = *b;
          *a = x0 * cs[i] - x1 * sn[i];
          *b = x1 * cs[i] + x0 * sn[i];
        }
      }
    REQUIRE(quantize(c.type, kt, ref_k.data() + (c.first_pos + t) * rb, kvd, nullptr));
    REQUIRE(quantize(c.type, vt, ref_v.data() + (c.first_pos + t) * rb, kvd, nullptr));
  }

  // Device.
  DeviceBuffer<float> dq(q), dk(k), dv(v), dbq(bq), dbk(bk), dbv(bv), dqn(qn), dkn(kn);
  DeviceBuffer<double> dfreq(inv_freq);
  DeviceBuffer<std::int32_t> dpos(std::vector<std::int32_t>{static_cast<std::int32_t>(c.first_pos)});
  DeviceBuffer<unsigned char> kc(positions * rb), vc(positions * rb);
  kc.poison();
  vc.poison();
  cuda::QkvArgs a;
  a.q = dq.get(), a.k = dk.get(), a.v = dv.get();
  if (c.bias) a.bq = dbq.get(), a.bk = dbk.get(), a.bv = dbv.get();
  if (c.qk_norm) a.q_norm = dqn.get(), a.k_norm = dkn.get();
  a.eps = eps;
  a.inv_freq = dfreq.get();
  a.rope_scale = c.rope_scale;
  a.adjacent_pairs = c.adjacent;
  a.n_head = H, a.n_head_kv = Hkv, a.head_dim = D, a.T = T;
  a.d_pos = dpos.get();
  a.k_cache = kc.get(), a.v_cache = vc.get(), a.row_bytes = rb, a.kv_type = c.type;
  CUDA_OK(cuda::qkv_rope_store(a, nullptr, &cuda_ok_error_));
  const std::vector<float> gq = dq.download();
  const std::vector<unsigned char> gk = kc.download(), gv = vc.download();

  // q: the same float operations in the same order; only the last bit of a cos/sin may differ
  // (rope_scale passes through a float, device sincos vs libm) — nearly always bit-equal.
  const double q_err = rel_error(gq, rq);
  INFO("q rel error " << q_err);
  CHECK(q_err < 1e-6);
  // The cache rows: F32 as q; F16 may round a value 1 ulp apart the other way (2^-11 relative on
  // the few that do); Q8_0 may move a level by one where x / d sits on .5 ± an ulp.
  const double tol = c.type == GgmlType::f32 ? 1e-6 : c.type == GgmlType::f16 ? 1e-4 : 2e-3;
  for (auto [got, ref, name] : {std::tuple{&gk, &ref_k, "K"}, std::tuple{&gv, &ref_v, "V"}}) {
    const std::vector<float> g = rows_f32(*got, c.type, kvd, c.first_pos, T);
    const std::vector<float> r = rows_f32(*ref, c.type, kvd, c.first_pos, T);
    const double err = rel_error(g, r);
    std::size_t same = 0;
    for (std::size_t i = 0; i < T * rb; ++i) same += (*got)[c.first_pos * rb + i] == (*ref)[c.first_pos * rb + i];
    INFO(name << " cache rel error " << err << ", bytes equal " << same << " / " << T * rb);
    CHECK(err < tol);
    // Rows outside [first_pos, first_pos + T) untouched (still poison).
    for (std::size_t i = 0; i < rb; ++i) {
      if (c.first_pos > 0) REQUIRE((*got)[(c.first_pos - 1) * rb + i] == 0xFF);
      REQUIRE((*got)[(c.first_pos + T) * rb + i] == 0xFF);
    }
  }
}

}  // namespace

TEST_CASE("cuda rope: qkv_rope_store matches the CPU backend's formulas", "[cuda][rope]") {
  auto& rng = test::fresh_rng();
  const GgmlType types[] = {GgmlType::f32, GgmlType::f16, GgmlType::q8_0};
  struct Heads {
    std::uint32_t h, kv;
  };
  const Heads heads[] = {{4, 4}, {12, 2}, {28, 4}};
  int n = 0;
  for (GgmlType type : types)
    for (std::uint32_t D : {64u, 128u})
      for (const Heads& hd : heads)
        for (std::size_t T : {std::size_t{1}, std::size_t{5}, std::size_t{64}})
          for (bool adjacent : {false, true}) {
            // Biases (Qwen2), q/k norms (Qwen3) and YaRN's scale take turns, both ways each.
            const int combo = n++ % 4;
            const std::uint32_t first_pos =
                (n % 2) ? 0u : std::uniform_int_distribution<std::uint32_t>(1, 5000)(rng);
            run_case({hd.h, hd.kv, D, T, first_pos, type, adjacent, combo == 1 || combo == 3, combo >= 2,
                      (n % 3 == 0) ? 1.1386294f : 1.0f});
          }
  // Head sizes the specialised paths of attention do not cover, read at run time here too.
  run_case({8, 2, 96, 3, 17, GgmlType::q8_0, false, true, true, 1.0f});
  run_case({4, 1, 256, 2, 5, GgmlType::f16, true, false, true, 1.1386294f});
  run_case({2, 2, 32, 7, 0, GgmlType::q8_0, true, true, false, 1.0f});
}
