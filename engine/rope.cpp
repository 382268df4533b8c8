// RoPE's frequencies with the model's scaling (engine/rope.h).
#include "engine/rope.h"

#include <algorithm>
#include <cmath>

#include "engine/quant.h"

namespace ponder {
namespace {

// YaRN as transformers' _compute_yarn_parameters applies it to the unscaled frequencies `inv`:
// the pairs that turn more than beta_fast times over the original context keep their frequency
// (extrapolation), those that turn fewer than beta_slow times are divided by the factor
// (interpolation), and a linear ramp over the pair index blends the two in between. The ramp's
// ends are where a pair turns exactly beta times (find_correction_dim), rounded outward to whole
// indices and clamped to [0, head_dim - 1] as find_correction_range does. The attention factor
// (which multiplies cos and sin) defaults to 0.1 ln(factor) + 1. As in current transformers the
// factor is the configured one (some releases used max_position_embeddings / original context
// instead, which is 1 for a config such as Qwen2.5's, whose max_position_embeddings is the
// original 32768).
bool yarn_frequencies(const ModelConfig& c, std::vector<double>* inv, double* scale, std::string* error) {
  const RopeConfig& r = c.rope;
  const double d = c.head_dim;
  const double original = r.original_context ? r.original_context : c.max_context;
  if (!(r.factor > 0) || !(r.beta_fast > 0) || !(r.beta_slow > 0) || !(r.attention_factor >= 0) || !(r.theta > 1)) {
    *error = "YaRN rope scaling with factor " + std::to_string(r.factor) + ", beta_fast " + std::to_string(r.beta_fast) +
             ", beta_slow " + std::to_string(r.beta_slow) + ", attention factor " + std::to_string(r.attention_factor) +
             " and theta " + std::to_string(r.theta) + ": they must be positive (the attention factor may be 0: " +
             "the default) and theta above 1";
    return false;
  }
  // The (fractional) pair index whose frequency turns `rotations` times over the original context.
  auto correction_dim = [&](double rotations) {
    return d * std::log(original / (rotations * 2 * M_PI)) / (2 * std::log(r.theta));
  };
  const double low = std::max(std::floor(correction_dim(r.beta_fast)), 0.0);
  double high = std::min(std::ceil(correction_dim(r.beta_slow)), d - 1);
  if (low == high) high += 0.001;  // transformers' guard against a zero-width ramp
  for (std::size_t i = 0; i < inv->size(); ++i) {
    const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);  // 1: interpolated
    (*inv)[i] = (*inv)[i] / r.factor * ramp + (*inv)[i] * (1 - ramp);
  }
  *scale = r.attention_factor > 0 ? r.attention_factor : r.factor <= 1 ? 1.0 : 0.1 * std::log(r.factor) + 1;
  return true;
}

}  // namespace

bool rope_inverse_frequencies(const ModelConfig& c, const Weight& rope_freqs, std::vector<double>* out,
                              double* scale, std::string* error) {
  const std::uint32_t half = c.head_dim / 2;
  out->resize(half);
  *scale = 1;
  for (std::uint32_t i = 0; i < half; ++i)
    (*out)[i] = std::pow(c.rope.theta, -2.0 * i / c.head_dim);
  if (rope_freqs.present()) {
    std::vector<float> div(rope_freqs.elements());
    dequantize(rope_freqs.type, rope_freqs.data, div.data(), div.size(), nullptr);
    for (std::uint32_t i = 0; i < half; ++i) (*out)[i] /= div[i];
    return true;
  }
  const RopeConfig& r = c.rope;
  switch (r.scaling) {
    case RopeScaling::none: return true;
    case RopeScaling::linear:
      for (double& f : *out) f /= r.factor;
      return true;
    case RopeScaling::llama3: {
      const double low_wavelen = r.original_context / r.low_freq_factor;
      const double high_wavelen = r.original_context / r.high_freq_factor;
      for (double& f : *out) {
        const double wavelen = 2 * M_PI / f;
        if (wavelen < high_wavelen) continue;  // high frequencies: unchanged
        if (wavelen > low_wavelen) {
          f /= r.factor;  // low frequencies: scaled
        } else {          // in between: interpolated
          const double smooth = (r.original_context / wavelen - r.low_freq_factor) /
                                (r.high_freq_factor - r.low_freq_factor);
          f = (1 - smooth) * f / r.factor + smooth * f;
        }
      }
      return true;
    }
    case RopeScaling::yarn:
      return yarn_frequencies(c, out, scale, error);
  }
  return true;
}

}  // namespace ponder
