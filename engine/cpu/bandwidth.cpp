// Read bandwidth: AVX2 loads where the CPU has them, two streams per thread.
#include "engine/cpu/bandwidth.h"

#include "engine/cpu/matmul.h"
#include "engine/cpu/matmul_internal.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace ponder::cpu {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Two sequential streams (the two halves of the chunk), two 32-byte loads from each per
// iteration: on the 2-core VM this read 5-10% faster than one stream of the whole chunk
// (31-33 against 29.5-30.5 GB/s on two threads, best of 5, three rounds), and the matmul kernels
// read their rows in two (or four) streams per thread too. Software prefetch as stream_prefetch()
// (matmul.h) says, as decode does. 2 KiB ahead into L1 (StreamPrefetch::l1): slower on that (AMD)
// VM; on a 2-core Xeon VM 22.3 -> 23.7 and 21.2 -> 22.5 GB/s (medians of 12 alternated passes
// over 1 GiB; 4 streams a thread, or 1 or 4 KiB ahead, no better). Each line also 8 KiB ahead
// into L2 (l1_l2; kPrefetchL2Ahead, matmul_internal.h): on that Xeon VM, 1 MiB chunks of a 1 GiB
// buffer as below, medians of 20 alternated passes, 25.1 -> 27.6 GB/s (16 or 32 KiB ahead: 27.2
// and 27.1; 16 KiB ahead into L2 without the L1 prefetch: 25.5).
template <StreamPrefetch Prefetch>
__attribute__((target("avx2"))) std::uint64_t read_avx2(const unsigned char* p, std::size_t n) {
  const unsigned char* q = p + n / 2;
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  for (std::size_t i = 0; i + 64 <= n / 2; i += 64) {
    if constexpr (Prefetch != StreamPrefetch::none) {
      _mm_prefetch(reinterpret_cast<const char*>(p + i) + detail::kPrefetchAhead, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(q + i) + detail::kPrefetchAhead, _MM_HINT_T0);
    }
    if constexpr (Prefetch == StreamPrefetch::l1_l2) {
      _mm_prefetch(reinterpret_cast<const char*>(p + i) + detail::kPrefetchL2Ahead, _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(q + i) + detail::kPrefetchL2Ahead, _MM_HINT_T1);
    }
    a = _mm256_xor_si256(a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    b = _mm256_xor_si256(b, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    c = _mm256_xor_si256(c, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + i)));
    d = _mm256_xor_si256(d, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + i + 32)));
  }
  const __m256i s = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
  return static_cast<std::uint64_t>(_mm256_extract_epi64(s, 0) ^ _mm256_extract_epi64(s, 3));
}

std::uint64_t read_plain(const unsigned char* p, std::size_t n) {
  std::uint64_t a = 0, b = 0, c = 0, d = 0, v[4];
  for (std::size_t i = 0; i + 32 <= n; i += 32) {
    std::memcpy(v, p + i, 32);
    a ^= v[0];
    b ^= v[1];
    c ^= v[2];
    d ^= v[3];
  }
  return a ^ b ^ c ^ d;
}

}  // namespace

double read_spans(ThreadPool& pool, const ReadSpan* spans, std::size_t n_spans) {
  constexpr std::size_t kChunk = 1 << 20;
  // The chunks of every span, in order (a span's last one shorter); fixed before the clock starts.
  std::vector<ReadSpan> chunks;
  std::size_t bytes = 0;
  for (std::size_t s = 0; s < n_spans; ++s)
    for (std::size_t off = 0; off < spans[s].bytes; off += kChunk) {
      const std::size_t n = std::min(kChunk, spans[s].bytes - off) / 128 * 128;  // what the loop reads
      if (n == 0) continue;
      chunks.push_back({spans[s].data + off, n});
      bytes += n;
    }
  if (bytes == 0) return 0;
  const bool avx2 = __builtin_cpu_supports("avx2");
  const StreamPrefetch prefetch = stream_prefetch();
  std::vector<std::uint64_t> sink(pool.size() * 8);
  const auto t0 = Clock::now();
  pool.parallel_for(chunks.size(), [&](std::size_t i, unsigned thread) {
    const ReadSpan& c = chunks[i];
    sink[thread * 8] ^= !avx2 ? read_plain(c.data, c.bytes) : with_stream_prefetch(prefetch, [&](auto level) {
      return read_avx2<level()>(c.data, c.bytes);
    });
  });
  const double gb_per_s = double(bytes) / seconds_since(t0) / 1e9;
  std::uint64_t s = 0;
  for (auto v : sink) s ^= v;
  if (s == 42) std::printf(" ");
  return gb_per_s;
}

ReadBuffer::ReadBuffer(std::size_t bytes) : bytes_(std::max<std::size_t>(bytes >> 20, 1) << 20) {
  constexpr std::size_t kPage = std::size_t{2} << 20;
  const std::size_t allocated = (bytes_ + kPage - 1) / kPage * kPage;  // aligned_alloc: a multiple
  data_ = static_cast<unsigned char*>(std::aligned_alloc(kPage, allocated));
  if (data_ == nullptr) throw std::bad_alloc();
#if defined(__linux__)
  madvise(data_, allocated, MADV_HUGEPAGE);  // a hint: 4 KiB pages where it is refused
#endif
  std::memset(data_, 1, bytes_);
}

ReadBuffer::~ReadBuffer() { std::free(data_); }

double read_bandwidth(ThreadPool& pool, int passes, std::size_t bytes) {
  const ReadBuffer buffer(bytes);
  const ReadSpan whole = buffer.span();
  double best = 0;
  for (int p = 0; p < passes; ++p) best = std::max(best, read_spans(pool, &whole, 1));
  return best;
}

}  // namespace ponder::cpu
