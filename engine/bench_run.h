#pragma once
// What `ponder bench` and the engine-only bench programs time on a backend: a prompt's prefill,
// then decode one token at a time, after the prompt and from an empty cache. Token ids are
// arbitrary: speed does not depend on them.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/cpu/bandwidth.h"

namespace ponder {

class Model;

/// n token ids below `real` (the vocabulary's real tokens), spread; `salt` makes another sequence.
std::vector<std::int32_t> bench_tokens(std::size_t n, std::uint32_t real, std::size_t salt);

struct BenchTimes {
  double prefill_s = 0;  // the whole prompt in one eval
  double decode_s = 0;   // the n steps after it
  /// With windows: the decode time of each window (their sum is decode_s).
  std::vector<double> window_s;
};

/// Pages the weights in with an untimed first token (then truncated), times the prefill of
/// `prompt`, then `n` decode steps after it (llama-bench's "tg n @ d prompt.size()"; each token
/// the argmax of the last logits over the first `real` rows), from an empty cache. The backend's
/// context must hold prompt.size() + n positions. With `window` > 0 the steps are timed in
/// windows of that many (the last may be shorter), and `between`, if given, runs untimed before
/// the first window and after each. False, with *error, when the backend fails.
bool time_prefill_decode(Backend& backend, const std::vector<std::int32_t>& prompt, std::size_t n,
                         std::uint32_t n_vocab, std::uint32_t real, BenchTimes* out, std::string* error,
                         std::size_t window = 0, const std::function<void()>& between = {});

/// llama-bench's "tg n": the cache emptied, then `n` decode steps from token `first`, at
/// positions 0 .. n - 1, timed as time_prefill_decode times its steps (out->prefill_s is left 0).
bool time_decode(Backend& backend, std::int32_t first, std::size_t n, std::uint32_t n_vocab, std::uint32_t real,
                 BenchTimes* out, std::string* error, std::size_t window = 0,
                 const std::function<void()>& between = {});

/// What decode reads of the weights (all but the embedding table; a tied output is the table's
/// bytes under the output's name), in address order, adjacent ones joined, cut at `budget` bytes:
/// where the bandwidth beside the decode windows is read. Empty where decode reads under 256 MiB:
/// a pass over less takes a few milliseconds and lies partly within a large CPU's caches (256
/// MiB: 8 times the 2-core VM's L3).
std::vector<cpu::ReadSpan> decode_read_spans(const Model& model, std::size_t budget);

/// Which reading stands for the bandwidth during a window timed between two readings.
enum class WindowReading {
  mean,    // the mean of the two: what `ponder bench` uses
  higher,  // the higher of the two (its choice before; kept to compare)
};

/// The bandwidth beside timed windows: window w between readings[w] and readings[w + 1]
/// (readings.size() == window_s.size() + 1), each window's reading as `how` says, weighted by
/// the window's time; so that work over the limit this gives is the work done over what the
/// windows' readings allow in the same time. 0 when there are no windows or the readings are not
/// one more than the windows.
///
/// Why the mean: on the 2-core VM, whose read bandwidth moves between ~33 and ~66 GB/s from
/// minute to minute, windows that do nothing but the reading's own read of the same weights
/// (bench_limit) scored 0.97-0.99 against the higher reading of each pair and 0.99-1.01 against
/// the mean; the higher of two noisy readings is biased high by their noise.
double window_bandwidth(const std::vector<double>& window_s, const std::vector<double>& readings,
                        WindowReading how = WindowReading::mean);

}  // namespace ponder
