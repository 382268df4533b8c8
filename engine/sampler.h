#pragma once
// Token sampling from a row of logits: penalties, greedy, top-k, temperature, top-p, min-p and a
// seeded draw, in the order Hugging Face's logits processors apply them:
//
//   penalties -> (temperature 0: argmax) -> top-k -> temperature -> softmax -> top-p -> min-p
//   -> renormalise -> draw
//
// Rows at or past the real vocabulary (`n_tokens`; Qwen's logits have padding rows from 151665
// up) are never sampled, nor is a NaN or infinite logit. When no real logit is finite, sample()
// returns 0 (the first real token).
//
// Orders and ties: top-k keeps exactly k tokens, ordered by (logit desc, id asc), so that top-k 1
// is greedy (whose ties go to the lowest id); top-p keeps the smallest prefix of the tokens
// ordered by (probability desc, id asc) whose mass is >= top_p (at least one token); min-p keeps
// the tokens whose probability is >= min_p times the largest.
//
// Precision: probabilities are float weights exp((l - l_max) / T) accumulated in double. A token
// whose weight is below e^-30 (9.4e-14 times the most likely token's) is never drawn: together such
// tokens hold less than 152K x 9.4e-14 = 1.4e-8 of the mass, under the float rounding of the
// weights themselves (2^-24 = 6e-8). Skipping them is what makes a peaked distribution cheap.
// (So top-k with k larger than the number of tokens above that floor keeps just those.)
//
// Determinism: the generator is xoshiro256** seeded through splitmix64, and the arithmetic is
// plain IEEE float/double without fused multiply-adds, so a seed gives the same tokens on every
// platform (the AVX2 weights pass, picked at run time, gives the same bits as the 4-lane one).
// Every call that does not take the greedy path consumes exactly one draw.
//
// Cost: no allocation per call (buffers are sized at construction); on 151936 rows with the R1
// defaults ~0.1 ms for a sharp distribution, ~0.6 ms for a flat one (bench/RESULTS.md).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ponder {

struct GenerationDefaults;  // engine/model.h

struct SamplingParams {
  float temperature = 0.6f;          // 0 = greedy
  float top_p = 0.95f;               // 1 = off
  std::uint32_t top_k = 0;           // 0 = off
  float min_p = 0.0f;                // 0 = off (keep tokens with p >= min_p * p_max)
  float repetition_penalty = 1.0f;   // 1 = off (CTRL-style: logit > 0 ? logit / r : logit * r,
                                     // once for each distinct token in the recent history)
  float presence_penalty = 0.0f;     // 0 = off (subtracted once for each distinct token there)
  std::uint32_t penalty_window = 64; // how many recent tokens the penalties look at (0 = all)
  std::uint64_t seed = 0;            // 0 = a random seed (Sampler::seed() reports it)

  /// The model's temperature / top_p / top_k (engine/model.h); everything else at its default.
  static SamplingParams from_defaults(const GenerationDefaults& d);

  /// Empty when the settings are usable, else what is wrong, e.g. "top_p must be in (0, 1]".
  /// temperature: finite, >= 0; top_p: (0, 1]; min_p: [0, 1]; repetition_penalty: finite, > 0;
  /// presence_penalty: finite.
  std::string validate() const;
};

class Sampler {
 public:
  /// n_tokens: the real vocabulary; logit rows with ids >= n_tokens are padding, never sampled.
  /// Throws std::invalid_argument when p.validate() is not empty.
  Sampler(const SamplingParams& p, std::uint32_t n_tokens);

  /// One token id in [0, min(n_rows, n_tokens)). history: the tokens so far (prompt and output,
  /// oldest first; ids outside the vocabulary are ignored), read by the penalties only.
  std::int32_t sample(const float* logits, std::size_t n_rows, const std::int32_t* history,
                      std::size_t n_history);

  /// log softmax(logits)[id] over the real vocabulary (the first min(n_rows, n_tokens) rows) in
  /// double precision, with no temperature or truncation: the log-probability of a forced token.
  /// Non-finite logits take no part; -infinity when id is out of range, its logit is not finite,
  /// or no logit is.
  static double log_prob(const float* logits, std::size_t n_rows, std::uint32_t n_tokens,
                         std::int32_t id);

  /// For tests and benchmarks: use the AVX2 weights pass where the CPU has it (the default) or
  /// the portable one; both give the same bits. Returns the previous setting. Not thread-safe.
  static bool use_avx2(bool on);

  /// The seed in use (the one given, or the random one picked for seed 0).
  std::uint64_t seed() const { return seed_; }
  const SamplingParams& params() const { return p_; }

  struct Pair {  // (value, token id), for the implementation
    float v;
    std::int32_t id;
  };

 private:
  // Histogram of the live weights by their float bits (exponent and 4 mantissa bits, so each
  // bucket spans a ratio of 2^(1/16)), for weights in [2^-44, 1].
  static constexpr int kBuckets = 44 * 16 + 1;

  double next_double();
  void histogram(std::size_t n_live, bool counts);
  // Into pairs_: (values[i], or the weight when values is null; i) for the live tokens whose
  // weight is in the bucket. Returns how many.
  std::size_t collect(std::size_t n_live, int bucket, const float* values);

  SamplingParams p_;
  std::uint32_t n_tokens_;
  bool greedy_ = false;
  float inv_temperature_ = 1.0f;
  std::uint64_t seed_ = 0;
  std::uint64_t rng_[4] = {0, 0, 0, 0};

  std::vector<float> penalised_;       // a copy of the logits when penalties apply
  std::vector<std::uint32_t> stamp_;   // per token: the call that last penalised it
  std::uint32_t epoch_ = 0;
  std::vector<float> w_;               // weights, valid in the live 4-lane groups only
  std::vector<std::uint32_t> live_;    // 4-lane groups holding a weight > 0
  std::vector<Pair> pairs_;            // one histogram bucket, for exact selection
  std::vector<double> group_sums_;     // kept mass per 16 live groups, for the draw
  std::array<double, kBuckets> mass_{};
  std::array<std::uint32_t, kBuckets> count_{};
};

}  // namespace ponder
