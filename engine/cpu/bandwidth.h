#pragma once
// The machine's memory read bandwidth, measured on the spot: the physical limit decode speed is
// compared with (decode at batch 1 reads every weight once per token).
#include <cstddef>

#include "engine/cpu/thread_pool.h"

namespace ponder::cpu {

/// Best-of-`passes` read bandwidth in GB/s (1e9 bytes) of `pool`'s threads streaming a
/// ReadBuffer of `bytes` (default 1 GiB, far beyond the caches), each thread its share in 1 MiB
/// chunks, each read as two sequential streams (its halves).
double read_bandwidth(ThreadPool& pool, int passes, std::size_t bytes = std::size_t{1} << 30);

/// Memory that is already there (mapped weights, say), in pieces.
struct ReadSpan {
  const unsigned char* data;
  std::size_t bytes;
};

/// What read_bandwidth reads: `bytes` rounded down to whole MiB (at least one), written once, in
/// 2 MiB pages where the kernel gives them, as the mapped weights are (engine/mapped_file.h).
class ReadBuffer {
 public:
  explicit ReadBuffer(std::size_t bytes);
  ~ReadBuffer();
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;
  ReadSpan span() const { return {data_, bytes_}; }

 private:
  unsigned char* data_;
  std::size_t bytes_;
};

/// One timed pass of `pool`'s threads over the spans, read as read_bandwidth reads its buffer (1
/// MiB chunks, each as two streams, whole 128-byte steps): GB/s; 0 when that is nothing. Spans
/// far beyond the caches measure memory.
double read_spans(ThreadPool& pool, const ReadSpan* spans, std::size_t n_spans);

}  // namespace ponder::cpu
