#pragma once
// One description of a model, from either file format: a GGUF file, or a Hugging Face snapshot
// folder (config.json, *.safetensors, tokenizer.json, tokenizer_config.json,
// generation_config.json).
//
// The description holds the architecture and its hyperparameters, the rope settings, the special
// token ids, the generation defaults, and the weights mapped to one set of internal names (the
// GGUF names: `token_embd.weight`, `blk.N.attn_q.weight`, ...). Weights stay in the mapping and
// in their stored type; a snapshot's [out, in] tensors appear with GGUF's dimension order
// (ne0 = the contiguous row). Everything is validated at open: missing tensors, shapes that do
// not fit the architecture, and types ponder cannot multiply are precise errors.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/quant.h"

namespace ponder {

class Tokenizer;
namespace gguf {
class File;
}
namespace safetensors {
class File;
}

enum class Arch { qwen2, qwen3, llama };
std::string_view arch_name(Arch a);

enum class ModelFormat { gguf, snapshot };
std::string_view format_name(ModelFormat f);

/// Which elements of a head RoPE rotates together.
enum class RopePairing {
  half,      // (i, i + d/2): "rotate half" / NeoX — Qwen everywhere, Llama in HF snapshots
  adjacent,  // (2i, 2i + 1): Llama in GGUF, whose converter permuted the rows of Q and K
};
enum class RopeScaling { none, linear, llama3, yarn };

struct RopeConfig {
  double theta = 10000;
  RopePairing pairing = RopePairing::half;
  RopeScaling scaling = RopeScaling::none;
  double factor = 1;                   // linear, llama3, yarn
  double low_freq_factor = 1;          // llama3
  double high_freq_factor = 4;         // llama3
  std::uint32_t original_context = 0;  // llama3, yarn: the length the model was trained at
                                       // (yarn: 0 = max_context, as transformers reads it)
  // yarn: pairs turning more than beta_fast times over the original context keep their
  // frequency, those turning fewer than beta_slow times are interpolated (divided by factor).
  double beta_fast = 32, beta_slow = 1;
  double attention_factor = 0;  // yarn: cos and sin are multiplied by it; 0 = 0.1 ln(factor) + 1
};

struct ModelConfig {
  Arch arch = Arch::qwen2;
  std::uint32_t n_vocab = 0;  // rows of the embedding and the output (padding rows included)
  std::uint32_t n_embd = 0, n_ff = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0;
  double rms_eps = 1e-6;
  RopeConfig rope;
  std::uint32_t max_context = 0;  // max_position_embeddings / <arch>.context_length
  bool qkv_bias = false;          // qwen2
  bool qk_norm = false;           // qwen3: RMSNorm over each head of q and k before RoPE
  bool tied_embeddings = false;   // output.weight absent: the embedding is the output
};

struct SpecialTokens {
  std::int32_t bos = -1, eos = -1;
  std::int32_t user = -1, assistant = -1;         // <｜User｜>, <｜Assistant｜>
  std::int32_t think_open = -1, think_close = -1;  // <think>, </think>
  std::vector<std::int32_t> end_of_generation;     // eos and any other token that ends a turn
  /// The real vocabulary: ids at or past it are padding rows of the embedding, never sampled.
  std::uint32_t n_tokens = 0;
};

struct GenerationDefaults {
  double temperature = 0.6;  // DeepSeek's advice when the files say nothing
  double top_p = 0.95;
  std::uint32_t top_k = 0;   // 0 = off
  bool from_file = false;    // read from generation_config.json / general.sampling.*
};

/// A weight in its stored type, read in place.
struct Weight {
  GgmlType type = GgmlType::f32;
  std::uint32_t n_dims = 0;
  std::uint64_t ne[4] = {1, 1, 1, 1};  // ne[0] = elements per row (contiguous)
  const unsigned char* data = nullptr;
  std::uint64_t bytes = 0;
  std::string_view source;  // its name in the file, for messages

  bool present() const { return data != nullptr; }
  std::uint64_t rows() const { return ne[1] * ne[2] * ne[3]; }
  std::uint64_t elements() const { return ne[0] * rows(); }
};

struct LayerWeights {
  Weight attn_norm, wq, wk, wv, bq, bk, bv, q_norm, k_norm, wo;
  Weight ffn_norm, gate, up, down;
};

struct ModelWeights {
  Weight tok_embd, output_norm, output;
  Weight rope_freqs;  // GGUF llama3 scaling as per-frequency divisors (optional)
  std::vector<LayerWeights> layers;
};

class Model {
 public:
  struct Options {
    /// False: describe a file that has no weights (a vocabulary-only GGUF) instead of refusing.
    bool require_weights = true;
  };
  /// `path` is a GGUF file or a snapshot folder. Null with `error` naming the file and the
  /// problem.
  static std::unique_ptr<Model> open(const std::string& path, std::string* error);
  static std::unique_ptr<Model> open(const std::string& path, const Options& options, std::string* error);
  ~Model();

  ModelFormat format() const { return format_; }
  const std::string& path() const { return path_; }
  /// general.name, or the snapshot folder's model name.
  const std::string& name() const { return name_; }
  /// What the weights are stored as: "Q4_K_M", "BF16", ... (from general.file_type, else the
  /// most common weight type).
  const std::string& file_type() const { return file_type_; }
  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const SpecialTokens& tokens() const { return tokens_; }
  const GenerationDefaults& generation() const { return generation_; }
  bool has_weights() const { return has_weights_; }
  /// Bytes of all weights (what the backend must hold).
  std::uint64_t weight_bytes() const { return weight_bytes_; }
  /// Bytes of weights one decode step reads: every weight once, except the token embedding
  /// table, of which one row is read (unless it is also the output matrix).
  std::uint64_t decode_weight_bytes() const { return decode_weight_bytes_; }
  /// Parameters (elements of all weights).
  std::uint64_t parameters() const { return parameters_; }

  /// Every weight by its internal (GGUF) name, in a stable order.
  std::vector<std::pair<std::string, const Weight*>> named_weights() const;

  /// The model's tokenizer (GGUF metadata, or the snapshot's tokenizer.json).
  std::unique_ptr<Tokenizer> load_tokenizer(std::string* error) const;

 private:
  Model();
  bool open_gguf(const std::string& path, const Options& options, std::string* error);
  bool open_snapshot(const std::string& dir, const Options& options, std::string* error);
  bool check_weights(std::string* error);

  ModelFormat format_ = ModelFormat::gguf;
  std::string path_, name_, file_type_;
  ModelConfig config_;
  ModelWeights weights_;
  SpecialTokens tokens_;
  GenerationDefaults generation_;
  bool has_weights_ = false;
  std::uint64_t weight_bytes_ = 0, parameters_ = 0, decode_weight_bytes_ = 0;
  std::unique_ptr<gguf::File> gguf_;
  std::vector<std::unique_ptr<safetensors::File>> shards_;
};

/// The tokenizer of a model without loading its weights: a GGUF file (its metadata) or a
/// snapshot folder (its tokenizer.json).
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_path, std::string* error);

/// Memory needed to run a model with a given context, before anything is loaded.
enum class KvType { f16, f32, q8_0 };
struct MemoryEstimate {
  std::uint32_t context = 0;
  std::uint64_t weights = 0;    // bytes
  std::uint64_t kv_cache = 0;   // K and V, every layer, `context` positions
  std::uint64_t workspace = 0;  // activations, logits, scratch
  std::uint64_t total() const { return weights + kv_cache + workspace; }
};
MemoryEstimate estimate_memory(const ModelConfig& config, std::uint64_t weight_bytes,
                               std::uint32_t context, KvType kv = KvType::f16);
/// The KV cache type named "f16", "f32" or "q8_0" (as on the command line); false for another name.
bool parse_kv_type(std::string_view name, KvType* kv);
/// Bytes of KV cache per position.
std::uint64_t kv_bytes_per_token(const ModelConfig& config, KvType kv);
/// The largest context (a multiple of 256, at most the model's max_context) whose estimate fits
/// in `available` bytes; 0 when not even the weights fit.
std::uint32_t largest_context(const ModelConfig& config, std::uint64_t weight_bytes,
                              std::uint64_t available, KvType kv = KvType::f16);
/// True when `estimate` fits in `available`; otherwise false with a message that says what is
/// needed, what is available and the largest context that would fit.
bool check_memory(const ModelConfig& config, const MemoryEstimate& estimate, std::uint64_t available,
                  std::string* message);
/// Memory this process may use now: MemAvailable from /proc/meminfo, capped by a cgroup limit.
std::uint64_t available_memory();

std::string format_bytes(std::uint64_t bytes);  // "4.36 GiB"

}  // namespace ponder
