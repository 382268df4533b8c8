#pragma once
// Test models made at test time: random weights under the real tensor names, seeded and
// reproducible, written as a GGUF file (laid out as llama.cpp's convert_hf_to_gguf.py and
// llama-quantize write them) or as a Hugging Face snapshot folder (BF16 safetensors, config.json,
// tokenizer.json, tokenizer_config.json, generation_config.json). Both formats hold the same
// weights: every value is a function of (seed, internal tensor name, element index), rounded to a
// bfloat16-representable float, so a BF16 snapshot and an F32 GGUF hold them exactly.
//
//   matrices and biases  ~N(0, 0.02)  (sum of four uniforms: the same bits on every platform)
//   norm weights         uniform in [0.9, 1.1]
//   rope_freqs.weight    llama3 factors as the converter computes them (llama GGUF only)
//
// Vocabulary: a real tokenizer.json (TestModelSpec::tokenizer_json), or the reduced one below.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/model.h"
#include "engine/quant.h"

namespace ponder::test {

struct TestModelSpec {
  ponder::Arch arch = ponder::Arch::qwen2;
  std::uint32_t n_embd = 256, n_ff = 512, n_layer = 2, n_head = 2, n_head_kv = 1, head_dim = 128;
  /// Rows of the embedding and the output; 0 = what the vocabulary needs (the reduced
  /// vocabulary's 768 rows, padding included; a real tokenizer.json's token count). Rows past
  /// the tokens are padding ("[PAD<id>]", token type 5 in a GGUF).
  std::uint32_t n_vocab = 0;
  /// A tokenizer.json to carry (its bytes are copied into a snapshot, its tokens into a GGUF);
  /// empty = the reduced vocabulary.
  std::string tokenizer_json;
  double rope_theta = 10000, rms_eps = 1e-6;
  bool llama3_scaling = false;  // factor 8, low 1, high 4, original 8192 (llama only)
  /// YaRN rope scaling when factor > 0: config.json's rope_scaling {"type": "yarn", ...} as Qwen's
  /// model cards write it, the GGUF's rope.scaling.* keys as convert_hf_to_gguf.py does.
  /// original_context, beta_fast, beta_slow and attention_factor are written only when nonzero
  /// (else the readers' defaults apply: max_context, 32, 1 and 0.1 ln(factor) + 1).
  struct Yarn {
    double factor = 0;
    std::uint32_t original_context = 0;
    double beta_fast = 0, beta_slow = 0, attention_factor = 0;
  } yarn;
  std::uint32_t max_context = 131072;
  std::uint64_t seed = 1;

  /// The real R1-Distill-Qwen-1.5B shape (1536/8960/28/12/2/128, 151936 rows), for benchmarks.
  static TestModelSpec r1_qwen_1_5b();
  /// The R1-Distill-Qwen-7B shape (3584/18944/28/28/4/128, 152064 rows) and the 32B one
  /// (5120/27648/64/40/8/128, theta 1e6, eps 1e-5), for GPU benchmarks (written without data).
  static TestModelSpec r1_qwen_7b();
  static TestModelSpec r1_qwen_32b();
  /// The tiny shape with the hyperparameters of that architecture's R1 distills: llama with rope
  /// theta 5e5, eps 1e-5 and llama3 scaling; qwen3 with theta 1e6; qwen2 as the defaults.
  static TestModelSpec like_r1(ponder::Arch arch);
};

/// The reduced vocabulary: ids 0..639 are the first 640 tokens of Qwen2.5's vocabulary (the 256
/// byte tokens and the tokens of its first 384 merges, so " the" is 279 as in the real one),
/// then R1's added tokens, then padding rows up to 768 (embedding rows; "[PAD<id>]" in a GGUF).
struct ReducedVocab {
  static constexpr std::uint32_t n_merges = 384;
  static constexpr std::int32_t eos = 640;          // <｜end▁of▁sentence｜>
  static constexpr std::int32_t user = 641;         // <｜User｜>
  static constexpr std::int32_t assistant = 642;    // <｜Assistant｜>
  static constexpr std::int32_t bos = 643;          // <｜begin▁of▁sentence｜>
  static constexpr std::int32_t eot = 644;          // <|EOT|>
  static constexpr std::int32_t think_open = 645;   // <think>
  static constexpr std::int32_t think_close = 646;  // </think>
  static constexpr std::uint32_t n_tokens = 647;
  static constexpr std::uint32_t n_rows = 768;
};

/// One weight of a test model.
struct TestTensor {
  std::string name;                     // internal (GGUF) name: "blk.0.attn_q.weight"
  std::string hf_name;                  // snapshot name; empty for rope_freqs.weight (GGUF only)
  std::vector<std::uint64_t> hf_shape;  // [out, in] for matrices, [n] for vectors
};

/// False with `error` set when the spec cannot be written (n_embd or n_ff not a multiple of 256,
/// heads that do not divide, llama3 scaling on a Qwen architecture, ...).
bool check_spec(const TestModelSpec& spec, std::string* error);

/// The model's weights in the GGUF file's order (empty for an invalid spec). rope_freqs.weight is
/// listed for llama with llama3_scaling; write_snapshot skips it. Reads a given tokenizer.json
/// only when n_vocab is 0 (as reference_weight does).
std::vector<TestTensor> test_tensors(const TestModelSpec& spec);

/// Writes a GGUF file. 2-D weights are stored as `weight_type` (F32, F16, BF16, Q8_0, Q4_0, Q4_K,
/// Q5_K, Q6_K: whatever ponder::quantize writes), norms, biases and rope_freqs as F32.
/// With `k_m` (weight_type Q4_K or Q5_K) the types follow llama-quantize's Q4_K_M / Q5_K_M:
/// output.weight, and attn_v / ffn_down in the layers use_more_bits picks, are Q6_K.
/// For llama the rows of Q and K are permuted as the converter does.
/// With `with_data` false the tensor data is left a hole (zeros that take no disk): the shape of a
/// large model for a backend that makes its weights itself (CudaBackendOptions::random_weights).
bool write_gguf(const TestModelSpec& spec, ponder::GgmlType weight_type, const std::string& path,
                std::string* error, bool k_m = false, bool with_data = true);

/// Writes a snapshot folder `dir` (created if needed): BF16 safetensors in `shards` files
/// (model.safetensors, or model-0000i-of-0000n.safetensors + model.safetensors.index.json).
bool write_snapshot(const TestModelSpec& spec, const std::string& dir, std::uint32_t shards,
                    std::string* error);

/// Writes the reduced vocabulary's tokenizer.json.
bool write_reduced_tokenizer_json(const std::string& path, std::string* error);

/// The values tensor `internal_gguf_name` holds, in Hugging Face layout ([out, in] row-major; a
/// llama GGUF holds Q and K with permuted rows). Empty (and `hf_shape` empty) for a name the
/// model does not have. For rope_freqs.weight: the llama3 factors.
std::vector<float> reference_weight(const TestModelSpec& spec, std::string_view internal_gguf_name,
                                    std::vector<std::uint64_t>* hf_shape = nullptr);

/// The converter's row permutation of a llama Q or K weight ([rows, cols] row-major, rows =
/// n_heads * head_dim): per head, HF rows [0, d/2) and [d/2, d) become interleaved pairs.
std::vector<float> permute_qk_for_gguf(const std::vector<float>& hf, std::uint64_t cols,
                                       std::uint32_t n_heads);

/// general.file_type (llama_ftype) of a file written with `weight_type` (and `k_m`); -1 if none.
int llama_ftype(ponder::GgmlType weight_type, bool k_m = false);

/// n token ids below `vocab`, spread by a fixed generator from `seed` (the tests' prompts).
inline std::vector<std::int32_t> random_ids(std::size_t n, std::uint32_t vocab, std::uint64_t seed) {
  std::vector<std::int32_t> ids(n);
  std::uint64_t x = seed;
  for (auto& id : ids) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    id = static_cast<std::int32_t>((x >> 33) % vocab);
  }
  return ids;
}

}  // namespace ponder::test
