// The CUDA kernels of rope.cu and attention.cu run on the host under tests/engine/cuda_emu.h (every
// thread a fiber, shuffles and barriers emulated), against the same references as the GPU tests
// in tests/cuda: this checks their indexing, masking, tiling, online softmax, split-K combine and
// cache layout without a GPU (in CI too). What it cannot check: the real hardware's scheduling
// (races that fibers switched only at barriers cannot show), its math library, alignment faults.
// Small shapes only: the emulation is slow.
#include "cuda_emu.h"  // first: defines the CUDA built-ins the kernel headers use

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <tuple>
#include <utility>
#include <vector>

#include "engine/cpu/attention.h"
#include "engine/cpu/rms_norm.h"
#include "engine/quant.h"
#include "kernels/attention_kernels.cuh"
#include "kernels/rope_kernels.cuh"

using namespace ponder;

#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer and hand-made fiber stacks (ucontext) do not mix reliably: not run there.
TEST_CASE("cuda emulated: not run under AddressSanitizer", "[cuda_emulated]") { WARN("skipped: fibers under ASan"); }
#else
namespace {

std::mt19937_64& rng() {
  static std::mt19937_64 r(std::random_device{}());
  return r;
}
std::vector<float> randoms(std::size_t n, float scale) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng());
  return v;
}
double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}
int cache_type(GgmlType t) {
  return t == GgmlType::f32 ? 0 : t == GgmlType::f16 ? 1 : 2;
}

// ---- attention ----------------------------------------------------------------------------

struct Shape {
  std::uint32_t n_head, n_head_kv, head_dim;
};

template <int kType, int kD>
void run_attention(const cuda::attention_detail::AttnParams& p, bool decode, std::size_t T) {
  using namespace cuda::attention_detail;
  if (decode) {
    const dim3 grid = decode_grid(p.group, p.n_head_kv);
    emu::launch(grid, dim3(kThreads), smem_floats(kDecodeRows, int(p.head_dim)) * 4,
                attention_kernel<kType, kD, kDecodeRows, true>, p);
    emu::launch(dim3(p.n_head), dim3(kCombineThreads), 0, attention_combine_kernel,
                static_cast<const float*>(p.partials), p.out, int(p.head_dim), int(grid.z));
  } else {
    emu::launch(dim3(unsigned(prefill_row_tiles(T, p.group)), p.n_head_kv), dim3(kThreads),
                smem_floats(kPrefillRows, int(p.head_dim)) * 4, attention_kernel<kType, kD, kPrefillRows, false>, p);
  }
}

// As the launcher dispatches: 64 and 128 specialised, other head sizes at run time.
void dispatch_attention(int type, const cuda::attention_detail::AttnParams& p, bool decode, std::size_t T) {
  const int D = p.head_dim == 64 || p.head_dim == 128 ? int(p.head_dim) : 0;
#define PONDER_EMU_CASE(TYPE, DIM) \
  if (type == TYPE && D == DIM) return run_attention<TYPE, DIM>(p, decode, T);
  PONDER_EMU_CASE(0, 64) PONDER_EMU_CASE(0, 128) PONDER_EMU_CASE(0, 0)
  PONDER_EMU_CASE(1, 64) PONDER_EMU_CASE(1, 128) PONDER_EMU_CASE(1, 0)
  PONDER_EMU_CASE(2, 64) PONDER_EMU_CASE(2, 128) PONDER_EMU_CASE(2, 0)
#undef PONDER_EMU_CASE
  FAIL("no kernel");
}

// first_pos + T positions of random K/V in `type` plus a poisoned spare row; T random queries; the
// kernel's output (poisoned first) against cpu::attention on the same bytes.
void check_attention(Shape s, GgmlType type, std::uint32_t first_pos, std::size_t T, bool decode) {
  INFO((decode ? "decode" : "prefill") << " heads " << s.n_head << "/" << s.n_head_kv << " D " << s.head_dim
                                       << " type " << cache_type(type) << " first_pos " << first_pos << " T " << T);
  const std::uint32_t n = first_pos + static_cast<std::uint32_t>(T);
  const std::size_t kvd = std::size_t{s.n_head_kv} * s.head_dim, rb = row_bytes(type, kvd);
  std::vector<unsigned char> k((n + 1) * rb, 0xFF), v((n + 1) * rb, 0xFF);
  for (auto* cache : {&k, &v}) {
    const std::vector<float> x = randoms(std::size_t{n} * kvd, 1.0f);
    REQUIRE(quantize(type, x.data(), cache->data(), x.size(), nullptr));
  }
  const std::vector<float> q = randoms(T * s.n_head * s.head_dim, 2.5f);
  std::vector<float> ref(q.size()), ws;
  cpu::AttentionArgs ca;
  ca.q = q.data(), ca.out = ref.data(), ca.k = k.data(), ca.v = v.data(), ca.row_bytes = rb, ca.kv_type = type;
  ca.n_head = s.n_head, ca.n_head_kv = s.n_head_kv, ca.head_dim = s.head_dim, ca.first_pos = first_pos, ca.T = T;
  cpu::attention(ca, nullptr, &ws);

  std::vector<float> out(q.size(), NAN);
  std::vector<float> partials(std::size_t{s.n_head} * cuda::math::kMaxDecodeSplits * (s.head_dim + 2), NAN);
  const std::int32_t pos = static_cast<std::int32_t>(first_pos);
  cuda::attention_detail::AttnParams p{};
  p.q = q.data(), p.out = out.data(), p.k = k.data(), p.v = v.data(), p.row_bytes = rb;
  p.n_head = s.n_head, p.n_head_kv = s.n_head_kv, p.head_dim = s.head_dim, p.group = s.n_head / s.n_head_kv;
  p.T = static_cast<std::uint32_t>(T), p.d_pos = &pos, p.max_positions = n;
  p.scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  p.partials = partials.data();
  dispatch_attention(cache_type(type), p, decode, T);
  const double err = rel_error(out, ref);
  INFO("rel error " << err);
  CHECK(err < 2e-5);
}

// ---- rope / store -------------------------------------------------------------------------

struct RopeCase {
  std::uint32_t n_head, n_head_kv, head_dim;
  std::size_t T;
  std::uint32_t first_pos;
  GgmlType type;
  bool adjacent, bias, qk_norm;
  float rope_scale;
};

void check_rope(const RopeCase& c) {
  const std::uint32_t D = c.head_dim, H = c.n_head, Hkv = c.n_head_kv;
  const std::size_t qd = std::size_t{H} * D, kvd = std::size_t{Hkv} * D, T = c.T;
  INFO("rope heads " << H << "/" << Hkv << " D " << D << " T " << T << " first_pos " << c.first_pos << " type "
                     << cache_type(c.type) << " adjacent " << c.adjacent << " bias " << c.bias << " qk_norm "
                     << c.qk_norm << " rope_scale " << c.rope_scale);
  std::vector<float> q = randoms(T * qd, 1.5f), k = randoms(T * kvd, 1.5f), v = randoms(T * kvd, 1.5f);
  const std::vector<float> bq = randoms(qd, 0.5f), bk = randoms(kvd, 0.5f), bv = randoms(kvd, 0.5f);
  std::vector<float> qn = randoms(D, 0.3f), kn = randoms(D, 0.3f);
  for (float& x : qn) x += 1.0f;
  for (float& x : kn) x += 1.0f;
  std::vector<double> inv_freq(D / 2);
  for (std::uint32_t i = 0; i < D / 2; ++i) inv_freq[i] = std::pow(1000000.0, -2.0 * i / D) / (i > D / 4 ? 4.0 : 1.0);
  const float eps = 1e-6f;

  // The reference: engine/cpu/cpu_backend.cpp's steps.
  std::vector<float> rq = q, rk = k, rv = v;
  const std::size_t positions = c.first_pos + T + 1, rb = row_bytes(c.type, kvd);
  std::vector<unsigned char> ref_k(positions * rb, 0xFF), ref_v(positions * rb, 0xFF);
  for (std::size_t t = 0; t < T; ++t) {
    float *qt = rq.data() + t * qd, *kt = rk.data() + t * kvd, *vt = rv.data() + t * kvd;
    if (c.bias) {
      for (std::size_t i = 0; i < qd; ++i) qt[i] += bq[i];
      for (std::size_t i = 0; i < kvd; ++i) kt[i] += bk[i], vt[i] += bv[i];
    }
    if (c.qk_norm) {
      cpu::rms_norm(qt, qn.data(), qt, H, D, eps);
      cpu::rms_norm(kt, kn.data(), kt, Hkv, D, eps);
    }
    std::vector<float> cs(D / 2), sn(D / 2);
    for (std::uint32_t i = 0; i < D / 2; ++i) {
      const double angle = static_cast<double>(c.first_pos + t) * inv_freq[i];
      cs[i] = static_cast<float>(double(c.rope_scale) * std::cos(angle));
      sn[i] = static_cast<float>(double(c.rope_scale) * std::sin(angle));
    }
    for (auto [x, heads] : {std::pair{qt, H}, std::pair{kt, Hkv}})
      for (std::uint32_t h = 0; h < heads; ++h)
        for (std::uint32_t i = 0; i < D / 2; ++i) {
          float* a = x + std::size_t{h} * D + (c.adjacent ? 2 * i : i);
          float* b = x + std::size_t{h} * D + (c.adjacent ? 2 * i + 1 : i + D / 2);
          const float x0 = *a, x1 = *b;
          *a = x0 * cs[i] - x1 * sn[i];
          *b = x1 * cs[i] + x0 * sn[i];
        }
    REQUIRE(quantize(c.type, kt, ref_k.data() + (c.first_pos + t) * rb, kvd, nullptr));
    REQUIRE(quantize(c.type, vt, ref_v.data() + (c.first_pos + t) * rb, kvd, nullptr));
  }

  std::vector<unsigned char> kc(positions * rb, 0xFF), vc(positions * rb, 0xFF);
  const std::int32_t pos = static_cast<std::int32_t>(c.first_pos);
  using namespace cuda::rope_detail;
  RopeParams p{};
  p.q = q.data(), p.k = k.data(), p.v = v.data();
  if (c.bias) p.bq = bq.data(), p.bk = bk.data(), p.bv = bv.data();
  if (c.qk_norm) p.q_norm = qn.data(), p.k_norm = kn.data();
  p.eps = eps, p.inv_freq = inv_freq.data(), p.rope_scale = c.rope_scale, p.adjacent = c.adjacent;
  p.n_head = H, p.n_head_kv = Hkv, p.head_dim = D;
  p.slots = static_cast<std::uint32_t>(T * (H + 2 * Hkv));
  p.d_pos = &pos, p.k_cache = kc.data(), p.v_cache = vc.data(), p.row_bytes = rb;
  const dim3 grid((p.slots + kWarps - 1) / kWarps), block(32 * kWarps);
  switch (cache_type(c.type)) {
    case 0: emu::launch(grid, block, 0, qkv_rope_store_kernel<kCacheF32>, p); break;
    case 1: emu::launch(grid, block, 0, qkv_rope_store_kernel<kCacheF16>, p); break;
    default: emu::launch(grid, block, 0, qkv_rope_store_kernel<kCacheQ8>, p); break;
  }
  // Host arithmetic on both sides, the same operations: equal but for RMSNorm's double sum order.
  const double q_err = rel_error(q, rq);
  INFO("q rel error " << q_err);
  CHECK(q_err < 1e-6);
  for (auto [got, ref] : {std::pair{&kc, &ref_k}, std::pair{&vc, &ref_v}}) {
    std::size_t differing = 0;
    for (std::size_t i = 0; i < got->size(); ++i) differing += (*got)[i] != (*ref)[i];  // poison included
    std::vector<float> g(T * kvd), r(T * kvd);
    REQUIRE(dequantize(c.type, got->data() + c.first_pos * rb, g.data(), g.size(), nullptr));
    REQUIRE(dequantize(c.type, ref->data() + c.first_pos * rb, r.data(), r.size(), nullptr));
    INFO("bytes differing " << differing << " of " << got->size() << ", rel error " << rel_error(g, r));
    CHECK(rel_error(g, r) < (c.qk_norm ? 1e-3 : 1e-12));
    if (!c.qk_norm) CHECK(differing == 0);  // without the norm: bit for bit, rows around untouched
  }
}

}  // namespace

TEST_CASE("cuda emulated: qkv_rope_store kernel against the CPU backend's steps", "[cuda_emulated]") {
  check_rope({4, 2, 64, 3, 0, GgmlType::f32, false, true, false, 1.0f});
  check_rope({4, 2, 64, 3, 11, GgmlType::f16, true, false, true, 1.1386294f});
  check_rope({12, 2, 128, 2, 5000, GgmlType::q8_0, false, true, true, 1.0f});
  check_rope({6, 2, 128, 1, 7, GgmlType::q8_0, true, true, false, 1.1386294f});
  check_rope({2, 1, 96, 2, 3, GgmlType::f16, false, false, false, 1.0f});
  check_rope({2, 2, 256, 1, 1, GgmlType::q8_0, true, false, true, 1.0f});
}

TEST_CASE("cuda emulated: attention prefill kernel against cpu::attention", "[cuda_emulated]") {
  for (GgmlType type : {GgmlType::f32, GgmlType::f16, GgmlType::q8_0}) {
    check_attention({12, 2, 64}, type, 0, 5, false);   // group 6: tiles straddle queries
    check_attention({7, 1, 128}, type, 40, 3, false);  // group 7, first_pos > 0
    check_attention({2, 2, 128}, type, 33, 1, false);  // MHA, one query, keys past one tile
    check_attention({2, 1, 96}, type, 3, 9, false);    // run-time head_dim
  }
  // Row tiles that straddle key tiles: rows that see none of a tile's keys skip its dots.
  check_attention({2, 1, 64}, GgmlType::f32, 0, 70, false);
  check_attention({1, 1, 128}, GgmlType::q8_0, 10, 40, false);
  check_attention({1, 1, 256}, GgmlType::f16, 30, 3, false);
  check_attention({16, 1, 32}, GgmlType::q8_0, 2, 2, false);
}

TEST_CASE("cuda emulated: attention decode kernels against cpu::attention", "[cuda_emulated]") {
  for (GgmlType type : {GgmlType::f32, GgmlType::f16, GgmlType::q8_0}) {
    check_attention({12, 2, 64}, type, 0, 1, true);     // length 1: one split, 127 neutral
    check_attention({7, 1, 128}, type, 32, 1, true);    // length 33
    check_attention({4, 4, 128}, type, 1099, 1, true);  // 1100 keys: 64 splits of 1 tile, some empty
    check_attention({8, 8, 64}, type, 2100, 1, true);   // 32 splits of 3 tiles, the last part
    check_attention({2, 1, 96}, type, 70, 1, true);
  }
  check_attention({10, 1, 64}, GgmlType::f16, 200, 1, true);  // group 10: two row tiles of 8
  check_attention({16, 8, 128}, GgmlType::f16, 99, 1, true);  // group 2: 6 idle rows per block
}
#endif
