#pragma once
// The bridge from any model ponder opens to the reference forward pass (tests/reference/forward.py,
// PyTorch in float64, run with /usr/bin/python3): write the model's weights, dequantized by the
// scalar reference dequantizer, as an F32 Hugging Face snapshot; run the reference on it; read its
// logits back. This is how the reference runs "on the dequantized weights" of every GGUF type.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/model.h"

namespace ponder::test {

/// llama3 RoPE scaling parameters (Hugging Face's rope_scaling). The defaults are Llama 3.1's,
/// which the R1 Llama distills use.
struct Llama3RopeParams {
  double factor = 8, low_freq_factor = 1, high_freq_factor = 4;
  std::uint32_t original_context = 8192;
};

/// The factors llama.cpp's converter stores as rope_freqs.weight for these parameters (one per
/// pair of a head: 1 for short wavelengths, `factor` for long ones, smoothed between), computed
/// from the float32 frequencies as the converter does.
std::vector<double> llama3_rope_factors(double theta, std::uint32_t head_dim, const Llama3RopeParams& p);

/// Writes `dir` (created if needed) as a Hugging Face snapshot of `m`: config.json (from
/// m.config(): architectures, model_type, sizes, head_dim, rms_norm_eps, rope_theta,
/// rope_scaling, tie_word_embeddings, vocab_size, biases) and model.safetensors holding every
/// weight dequantized to F32 under its Hugging Face name and in Hugging Face layout. For a llama
/// GGUF the rows of Q and K are un-permuted back to Hugging Face order (the converter
/// interleaved each head's two halves). A GGUF stores llama3 scaling only as rope_freqs.weight:
/// its parameters come from `gguf_llama3` (null: Llama 3.1's), and are checked to reproduce
/// rope_freqs.weight (to 1e-5 relative) before they are written. YaRN is written with its factor,
/// original context, beta_fast, beta_slow and attention factor (left out when it is the default). From a GGUF, rms_norm_eps and
/// rope_theta (float32 there) are written as the shortest decimal that is the same float32,
/// which gives back the config.json value the converter read (1e-06, not 9.99999997e-07).
/// No tokenizer files are written: the reference takes token ids.
bool write_f32_snapshot(const ponder::Model& m, const std::string& dir, std::string* error,
                        const Llama3RopeParams* gguf_llama3 = nullptr);

struct ReferenceResult {
  std::size_t n_vocab = 0;             // rows of the output (padding rows included)
  std::size_t n_rows = 0;              // logit rows: the prompt's length, or 1 with last_only
  std::vector<double> logits;          // n_rows x n_vocab, row-major
  std::vector<std::int32_t> greedy;    // the greedily generated ids
  std::vector<double> greedy_logits;   // greedy.size() x n_vocab: row i is what greedy[i] was
                                       // taken from (row 0 = the prompt's last row)
  double seconds = 0;                  // wall time of the whole run (python start included)
  std::string log;                     // forward.py's stderr (its timings)

  const double* row(std::size_t r) const { return logits.data() + r * n_vocab; }
};

struct ReferenceOptions {
  int greedy = 0;          // tokens to continue greedily after the prompt
  int greedy_vocab = 0;    // greedy picks among ids below this only (0: every row). An engine
                           // never samples padding rows: pass the real vocabulary's size
                           // (Model::tokens().n_tokens) to compare greedy sequences with one.
  bool last_only = false;  // compute only the prompt's last row of logits (with a real
                           // vocabulary, T x 151936 float64 is 10 GB at 8,192 tokens)
  int block = 0;           // queries per attention block in forward.py (0: its default)
};

/// Runs forward.py (PONDER_REFERENCE_DIR/forward.py, with $PONDER_PYTHON or /usr/bin/python3)
/// on `snapshot_dir` with the token ids `ids`, and reads back its logits and greedy ids.
/// False with `error` (forward.py's stderr included) when it cannot run or fails.
bool run_reference(const std::string& snapshot_dir, const std::vector<std::int32_t>& ids,
                   ReferenceResult* out, std::string* error, int greedy = 0);
bool run_reference(const std::string& snapshot_dir, const std::vector<std::int32_t>& ids,
                   const ReferenceOptions& options, ReferenceResult* out, std::string* error);

/// Many runs in one forward.py process (its --batch: python and torch start once, each snapshot
/// is loaded once); `out` gets one result per job, in order. `seconds` of each result is the
/// whole batch's wall time.
struct ReferenceJob {
  std::string snapshot_dir;
  std::vector<std::int32_t> ids;
  ReferenceOptions options;
};
bool run_reference_batch(const std::vector<ReferenceJob>& jobs, std::vector<ReferenceResult>* out, std::string* error);

/// ||got - want||₂ / ||want||₂ over n values (the "relative L2 error"); 0 when both are
/// zero, infinity when only `want` is.
double relative_l2(const double* got, const double* want, std::size_t n);
double relative_l2(const float* got, const double* want, std::size_t n);
/// max |got - want| / max |want| over n values.
double relative_max(const double* got, const double* want, std::size_t n);

}  // namespace ponder::test
