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

namespace ponder {

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

}  // namespace ponder
