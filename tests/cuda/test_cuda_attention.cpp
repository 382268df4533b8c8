// attention_prefill and attention_decode (kernels/attention.cu) against engine/cpu/attention on the
// same cache bytes: every KV type, head_dim 64 and 128 (the specialised kernels) and 32/96/256 (the
// run-time head_dim path), GQA ratios 1, 6 and 7, prefill at first_pos 0 and > 0 with T = 1, 5, 64,
// 300, decode at lengths 1, 33, 1000, 5000, and a decode captured in a CUDA graph and replayed at
// another length (the length is read on the device).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "engine/cpu/attention.h"
#include "engine/cpu/thread_pool.h"
#include "engine/quant.h"
#include "kernels/ops.h"

using namespace ponder;
using ponder::test::DeviceBuffer;
using ponder::test::rel_error;

namespace {

// Both sides read the same cache bytes widened the same way, so the kernels differ from the CPU
// by float summation order and FMA only, whatever the type: F32 accumulation over up to 5000 keys
// lands near 1e-6. The per-type bounds are equal on purpose.
double tolerance(GgmlType type) {
  switch (type) {
    case GgmlType::f32: return 2e-5;
    case GgmlType::f16: return 2e-5;
    default: return 2e-5;  // q8_0
  }
}

cpu::ThreadPool& pool() {
  static cpu::ThreadPool p(8);
  return p;
}

struct Shape {
  std::uint32_t n_head, n_head_kv, head_dim;
};

// A cache of `positions` rows of random K and V stored in `type` (uploaded with a spare row past
// the end, poison, that no kernel may read into the result) and random queries.
struct Cache {
  Shape s;
  GgmlType type;
  std::uint32_t positions;
  std::size_t rb;
  std::vector<unsigned char> k, v;
  DeviceBuffer<unsigned char> dk, dv;

  Cache(Shape shape, GgmlType t, std::uint32_t n)
      : s(shape), type(t), positions(n), rb(row_bytes(t, std::size_t{shape.n_head_kv} * shape.head_dim)),
        k((n + 1) * rb), v((n + 1) * rb), dk((n + 1) * rb), dv((n + 1) * rb) {
    const std::size_t kvd = std::size_t{s.n_head_kv} * s.head_dim;
    auto& rng = test::fresh_rng();
    for (auto* cache : {&k, &v}) {
      const std::vector<float> x = test::random_floats(std::size_t{n} * kvd, 1.0f, rng);
      REQUIRE(quantize(type, x.data(), cache->data(), std::size_t{n} * kvd, nullptr));
      std::fill(cache->begin() + std::size_t{n} * rb, cache->end(), 0xFF);  // NaN/garbage row
    }
    dk.upload(k);
    dv.upload(v);
  }

  cpu::AttentionArgs cpu_args(const float* q, float* out, std::uint32_t first_pos, std::size_t T) const {
    cpu::AttentionArgs a;
    a.q = q, a.out = out, a.k = k.data(), a.v = v.data(), a.row_bytes = rb, a.kv_type = type;
    a.n_head = s.n_head, a.n_head_kv = s.n_head_kv, a.head_dim = s.head_dim, a.first_pos = first_pos, a.T = T;
    return a;
  }
  cuda::AttentionArgs gpu_args(const float* q, float* out, const std::int32_t* d_pos, std::size_t T) const {
    cuda::AttentionArgs a;
    a.q = q, a.out = out, a.k = dk.get(), a.v = dv.get(), a.row_bytes = rb, a.kv_type = type;
    a.n_head = s.n_head, a.n_head_kv = s.n_head_kv, a.head_dim = s.head_dim, a.T = T, a.d_pos = d_pos;
    a.max_positions = positions;
    return a;
  }
};

std::vector<float> cpu_attention(const Cache& c, const std::vector<float>& q, std::uint32_t first_pos, std::size_t T) {
  std::vector<float> out(q.size()), ws;
  cpu::attention(c.cpu_args(q.data(), out.data(), first_pos, T), &pool(), &ws);
  return out;
}

// Queries scaled so that the softmax is peaked somewhere and flat elsewhere (as test_attention).
std::vector<float> random_queries(const Shape& s, std::size_t T) {
  return test::random_floats(T * s.n_head * s.head_dim, 2.5f);
}

void check_prefill(Shape s, GgmlType type, std::uint32_t first_pos, std::size_t T) {
  INFO("prefill heads " << s.n_head << "/" << s.n_head_kv << " D " << s.head_dim << " type " << static_cast<int>(type)
                        << " first_pos " << first_pos << " T " << T);
  const Cache c(s, type, first_pos + static_cast<std::uint32_t>(T));
  const std::vector<float> q = random_queries(s, T);
  const std::vector<float> ref = cpu_attention(c, q, first_pos, T);
  DeviceBuffer<float> dq(q), dout(q.size());
  DeviceBuffer<std::int32_t> dpos(std::vector<std::int32_t>{static_cast<std::int32_t>(first_pos)});
  dout.poison();
  CUDA_OK(cuda::attention_prefill(c.gpu_args(dq.get(), dout.get(), dpos.get(), T), nullptr, &cuda_ok_error_));
  const double err = rel_error(dout.download(), ref);
  INFO("rel error " << err);
  CHECK(err < tolerance(type));
}

void check_decode(Shape s, GgmlType type, std::uint32_t length) {
  INFO("decode heads " << s.n_head << "/" << s.n_head_kv << " D " << s.head_dim << " type " << static_cast<int>(type)
                       << " length " << length);
  const Cache c(s, type, length);
  const std::vector<float> q = random_queries(s, 1);
  const std::vector<float> ref = cpu_attention(c, q, length - 1, 1);
  DeviceBuffer<float> dq(q), dout(q.size());
  DeviceBuffer<unsigned char> ws(cuda::attention_decode_workspace(s.n_head, s.head_dim));
  DeviceBuffer<std::int32_t> dpos(std::vector<std::int32_t>{static_cast<std::int32_t>(length - 1)});
  dout.poison();
  ws.poison();
  CUDA_OK(cuda::attention_decode(c.gpu_args(dq.get(), dout.get(), dpos.get(), 1), ws.get(), nullptr, &cuda_ok_error_));
  const double err = rel_error(dout.download(), ref);
  INFO("rel error " << err);
  CHECK(err < tolerance(type));
}

const GgmlType kTypes[] = {GgmlType::f32, GgmlType::f16, GgmlType::q8_0};

}  // namespace

TEST_CASE("cuda attention: prefill matches cpu::attention", "[cuda][attention]") {
  for (GgmlType type : kTypes)
    for (std::uint32_t D : {64u, 128u})
      for (Shape s : {Shape{4, 4, D}, Shape{12, 2, D}, Shape{28, 4, D}})
        for (std::uint32_t first_pos : {0u, 333u})
          for (std::size_t T : {std::size_t{1}, std::size_t{5}, std::size_t{64}, std::size_t{300}})
            check_prefill(s, type, first_pos, T);
  // The run-time head_dim kernels (and a group of 16 over one KV head: two row tiles a query).
  for (GgmlType type : kTypes) {
    check_prefill({6, 2, 96}, type, 40, 37);
    check_prefill({4, 1, 256}, type, 0, 70);
    check_prefill({2, 2, 32}, type, 100, 9);
    check_prefill({16, 1, 128}, type, 7, 11);
  }
}

TEST_CASE("cuda attention: decode matches cpu::attention", "[cuda][attention]") {
  for (GgmlType type : kTypes)
    for (std::uint32_t D : {64u, 128u})
      for (Shape s : {Shape{4, 4, D}, Shape{12, 2, D}, Shape{28, 4, D}})
        for (std::uint32_t length : {1u, 33u, 1000u, 5000u}) check_decode(s, type, length);
  for (GgmlType type : kTypes) {
    check_decode({6, 2, 96}, type, 777);
    check_decode({4, 1, 256}, type, 2049);
    check_decode({2, 2, 32}, type, 65);
    check_decode({16, 1, 128}, type, 300);  // a group of 16: two blocks of 8 heads per split
  }
  // A long context: 128 splits (2 KV heads) of 10 tiles each.
  check_decode({12, 2, 128}, GgmlType::f16, 40000);
}

TEST_CASE("cuda attention: a captured decode replays at the length in device memory", "[cuda][attention]") {
  const Shape s{12, 2, 128};
  const Cache c(s, GgmlType::q8_0, 3000);
  const std::vector<float> q = random_queries(s, 1);
  DeviceBuffer<float> dq(q), dout(q.size());
  DeviceBuffer<unsigned char> ws(cuda::attention_decode_workspace(s.n_head, s.head_dim));
  DeviceBuffer<std::int32_t> dpos(std::vector<std::int32_t>{32});
  cudaStream_t stream = nullptr;
  CUDA_RT(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  CUDA_RT(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  std::string error;
  const bool launched = cuda::attention_decode(c.gpu_args(dq.get(), dout.get(), dpos.get(), 1), ws.get(), stream, &error);
  CUDA_RT(cudaStreamEndCapture(stream, &graph));
  INFO(error);
  REQUIRE(launched);
  CUDA_RT(cudaGraphInstantiate(&exec, graph, 0));
  for (std::uint32_t length : {33u, 1u, 3000u, 1234u}) {
    INFO("length " << length);
    dpos.upload(std::vector<std::int32_t>{static_cast<std::int32_t>(length - 1)});
    dout.poison();
    CUDA_RT(cudaDeviceSynchronize());  // the poison (legacy stream) before the non-blocking stream
    CUDA_RT(cudaGraphLaunch(exec, stream));
    CUDA_RT(cudaStreamSynchronize(stream));
    const double err = rel_error(dout.download(), cpu_attention(c, q, length - 1, 1));
    INFO("rel error " << err);
    CHECK(err < tolerance(GgmlType::q8_0));
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}
