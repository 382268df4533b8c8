#pragma once
// What `ponder bench` and the engine-only bench programs time on a backend: a prompt's prefill,
// then decode one token at a time. Token ids are arbitrary: speed does not depend on them.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/backend.h"

namespace ponder {

/// n token ids below `real` (the vocabulary's real tokens), spread; `salt` makes another sequence.
std::vector<std::int32_t> bench_tokens(std::size_t n, std::uint32_t real, std::size_t salt);

struct BenchTimes {
  double prefill_s = 0;  // the whole prompt in one eval
  double decode_s = 0;   // the n steps after it
};

/// Pages the weights in with an untimed first token (then truncated), times the prefill of
/// `prompt`, then `n` decode steps (each token the argmax of the last logits over the first
/// `real` rows), from an empty cache. The backend's context must hold prompt.size() + n
/// positions. False, with *error, when the backend fails.
bool time_prefill_decode(Backend& backend, const std::vector<std::int32_t>& prompt, std::size_t n,
                         std::uint32_t n_vocab, std::uint32_t real, BenchTimes* out, std::string* error);

}  // namespace ponder
