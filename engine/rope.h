#pragma once
// RoPE's inverse frequencies with the model's scaling, computed once per model by every backend:
// Hugging Face's rope_utils for llama3, linear and YaRN; a GGUF's rope_freqs.weight holds the
// llama3 divisors precomputed by the converter. Position p rotates pair i by p * inv_freq[i], and
// cos and sin are multiplied by `scale` (YaRN's attention factor, else 1).
#include <string>
#include <vector>

#include "engine/model.h"

namespace ponder {

/// head_dim / 2 inverse frequencies in double precision. False with `error` for YaRN settings
/// that cannot be used.
bool rope_inverse_frequencies(const ModelConfig& config, const Weight& rope_freqs, std::vector<double>* inv_freq,
                              double* scale, std::string* error);

}  // namespace ponder
