#include "engine/model.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "engine/gguf.h"
#include "engine/safetensors.h"
#include "engine/tokenizer.h"

namespace fs = std::filesystem;

namespace ponder {
namespace {

// Limits that no real model reaches; a header beyond them is malformed, and checking them first
// keeps a hostile file from making us allocate.
constexpr std::uint64_t kMaxLayers = 1024, kMaxHeads = 1024, kMaxHeadDim = 1024;
constexpr std::uint64_t kMaxWidth = 1u << 20, kMaxVocab = 1u << 24;

// Calls fn(internal name, slot) for every weight a model of `n_layer` layers can have.
void for_each_slot(ModelWeights& w, const std::function<void(const std::string&, Weight&)>& fn) {
  fn("token_embd.weight", w.tok_embd);
  for (std::size_t i = 0; i < w.layers.size(); ++i) {
    LayerWeights& l = w.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    fn(p + "attn_norm.weight", l.attn_norm);
    fn(p + "attn_q.weight", l.wq);
    fn(p + "attn_q.bias", l.bq);
    fn(p + "attn_k.weight", l.wk);
    fn(p + "attn_k.bias", l.bk);
    fn(p + "attn_v.weight", l.wv);
    fn(p + "attn_v.bias", l.bv);
    fn(p + "attn_q_norm.weight", l.q_norm);
    fn(p + "attn_k_norm.weight", l.k_norm);
    fn(p + "attn_output.weight", l.wo);
    fn(p + "ffn_norm.weight", l.ffn_norm);
    fn(p + "ffn_gate.weight", l.gate);
    fn(p + "ffn_up.weight", l.up);
    fn(p + "ffn_down.weight", l.down);
  }
  fn("output_norm.weight", w.output_norm);
  fn("output.weight", w.output);
  fn("rope_freqs.weight", w.rope_freqs);
}

// Hugging Face names to ours (llama.cpp's), per layer and for the rest.
const std::pair<std::string_view, std::string_view> kHfLayerNames[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},   {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.weight", "attn_k.weight"},   {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.weight", "attn_v.weight"},   {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"}, {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};
const std::pair<std::string_view, std::string_view> kHfNames[] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
};

// The internal name of a Hugging Face tensor, or empty for tensors ponder does not use.
std::string internal_name(std::string_view hf) {
  for (const auto& [from, to] : kHfNames)
    if (hf == from) return std::string(to);
  constexpr std::string_view kLayers = "model.layers.";
  if (hf.substr(0, kLayers.size()) != kLayers) return {};
  std::string_view rest = hf.substr(kLayers.size());
  std::size_t dot = rest.find('.');
  if (dot == 0 || dot == std::string_view::npos) return {};
  std::string_view index = rest.substr(0, dot), suffix = rest.substr(dot + 1);
  if (!std::all_of(index.begin(), index.end(), [](char c) { return c >= '0' && c <= '9'; }) || index.size() > 6)
    return {};
  for (const auto& [from, to] : kHfLayerNames)
    if (suffix == from) return "blk." + std::string(index) + "." + std::string(to);
  return {};
}

bool parse_arch(std::string_view s, Arch* a) {
  if (s == "qwen2") *a = Arch::qwen2;
  else if (s == "qwen3") *a = Arch::qwen3;
  else if (s == "llama") *a = Arch::llama;
  else return false;
  return true;
}

// llama_ftype values (general.file_type) to the names people know.
std::string ftype_name(std::uint64_t t) {
  switch (t) {
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K";
    case 11: return "Q3_K_S";
    case 12: return "Q3_K_M";
    case 13: return "Q3_K_L";
    case 14: return "Q4_K_S";
    case 15: return "Q4_K_M";
    case 16: return "Q5_K_S";
    case 17: return "Q5_K_M";
    case 18: return "Q6_K";
    case 32: return "BF16";
    default: return "type " + std::to_string(t);
  }
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool read_json_file(const fs::path& path, nlohmann::json* out, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = path.string() + ": cannot open";
    return false;
  }
  *out = nlohmann::json::parse(in, nullptr, false);
  if (out->is_discarded() || !out->is_object()) {
    *error = path.string() + ": not a valid JSON object";
    return false;
  }
  return true;
}

// Special tokens from a look-up of token text to id (-1 when absent).
void find_special_tokens(const std::function<std::int32_t(std::string_view)>& id_of, SpecialTokens* t) {
  auto set = [&](std::int32_t* slot, std::initializer_list<std::string_view> names) {
    for (auto n : names)
      if (*slot < 0) *slot = id_of(n);
  };
  set(&t->bos, {"<｜begin▁of▁sentence｜>", "<|begin_of_text|>"});
  set(&t->eos, {"<｜end▁of▁sentence｜>", "<|end_of_text|>", "<|endoftext|>"});
  set(&t->user, {"<｜User｜>"});
  set(&t->assistant, {"<｜Assistant｜>"});
  set(&t->think_open, {"<think>"});
  set(&t->think_close, {"</think>"});
  auto eog = [&](std::int32_t id) {
    if (id >= 0 && std::find(t->end_of_generation.begin(), t->end_of_generation.end(), id) ==
                       t->end_of_generation.end())
      t->end_of_generation.push_back(id);
  };
  eog(t->eos);
  for (auto n : {"<｜end▁of▁sentence｜>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|im_end|>", "<|endoftext|>"})
    eog(id_of(n));
}

Weight weight_of(const gguf::TensorInfo& t) {
  Weight w;
  w.type = t.type;
  w.n_dims = t.n_dims;
  for (int d = 0; d < 4; ++d) w.ne[d] = t.dims[d];
  w.data = t.data;
  w.bytes = t.bytes;
  w.source = t.name;
  return w;
}

std::string shape_text(const std::uint64_t* ne, std::uint32_t n) {
  std::string s = "[";
  for (std::uint32_t d = 0; d < n; ++d) s += (d ? ", " : "") + std::to_string(ne[d]);
  return s + "]";
}

}  // namespace

std::string_view arch_name(Arch a) {
  switch (a) {
    case Arch::qwen2: return "qwen2";
    case Arch::qwen3: return "qwen3";
    case Arch::llama: return "llama";
  }
  return "?";
}

std::string_view format_name(ModelFormat f) { return f == ModelFormat::gguf ? "gguf" : "snapshot"; }

Model::Model() = default;
Model::~Model() = default;

std::unique_ptr<Model> Model::open(const std::string& path, std::string* error) {
  return open(path, Options{}, error);
}

std::unique_ptr<Model> Model::open(const std::string& path, const Options& options, std::string* error) {
  std::unique_ptr<Model> m(new Model());
  std::error_code ec;
  bool ok;
  if (fs::is_directory(path, ec)) {
    ok = m->open_snapshot(path, options, error);
  } else if (!fs::exists(path, ec)) {
    if (error) *error = path + ": no such file or folder";
    return nullptr;
  } else {
    ok = m->open_gguf(path, options, error);
  }
  return ok ? std::move(m) : nullptr;
}

bool Model::open_gguf(const std::string& path, const Options& options, std::string* error) {
  format_ = ModelFormat::gguf;
  path_ = path;
  std::string why;
  gguf_ = gguf::File::open(path, &why);
  if (!gguf_) {
    if (why.find("not a GGUF file") != std::string::npos && path.size() > 12 &&
        path.compare(path.size() - 12, 12, ".safetensors") == 0)
      why = path + ": a safetensors file alone is not a model: give the snapshot folder that holds it "
                   "with its config.json";
    *error = why;
    return false;
  }
  const gguf::File& f = *gguf_;
  auto fail = [&](const std::string& what) {
    *error = path + ": " + what;
    return false;
  };
  std::string_view arch;
  if (!f.get_string("general.architecture", &arch)) return fail("no general.architecture");
  if (!parse_arch(arch, &config_.arch))
    return fail("architecture '" + std::string(arch) + "' is not supported (qwen2, qwen3 and llama are)");
  const std::string a(arch);
  std::string_view name;
  name_ = f.get_string("general.name", &name) ? std::string(name) : fs::path(path).stem().string();

  auto need = [&](const std::string& key, std::uint64_t max, std::uint32_t* out) {
    std::uint64_t v;
    if (!f.get_uint(key, &v)) return fail("no " + key);
    if (v == 0 || v > max) return fail(key + " = " + std::to_string(v) + " is out of range");
    *out = static_cast<std::uint32_t>(v);
    return true;
  };
  ModelConfig& c = config_;
  if (!need(a + ".embedding_length", kMaxWidth, &c.n_embd) || !need(a + ".feed_forward_length", kMaxWidth, &c.n_ff) ||
      !need(a + ".block_count", kMaxLayers, &c.n_layer) || !need(a + ".attention.head_count", kMaxHeads, &c.n_head))
    return false;
  c.n_head_kv = c.n_head;
  if (f.find(a + ".attention.head_count_kv") && !need(a + ".attention.head_count_kv", kMaxHeads, &c.n_head_kv))
    return false;
  c.head_dim = c.n_embd / c.n_head;
  if (f.find(a + ".attention.key_length") && !need(a + ".attention.key_length", kMaxHeadDim, &c.head_dim))
    return false;
  c.max_context = 4096;
  if (f.find(a + ".context_length") && !need(a + ".context_length", 1u << 30, &c.max_context)) return false;
  double v;
  if (f.get_float(a + ".attention.layer_norm_rms_epsilon", &v)) c.rms_eps = v;
  if (f.get_float(a + ".rope.freq_base", &v)) c.rope.theta = v;
  std::string_view scaling;
  if (f.get_string(a + ".rope.scaling.type", &scaling) && scaling != "none") {
    if (scaling == "linear") c.rope.scaling = RopeScaling::linear;
    else if (scaling == "yarn") c.rope.scaling = RopeScaling::yarn;
    else if (scaling == "llama3") c.rope.scaling = RopeScaling::llama3;
    else return fail("rope scaling '" + std::string(scaling) + "' is not supported");
    if (f.get_float(a + ".rope.scaling.factor", &v)) c.rope.factor = v;
    std::uint64_t orig;
    if (f.get_uint(a + ".rope.scaling.original_context_length", &orig)) c.rope.original_context = static_cast<std::uint32_t>(orig);
    // YaRN's optional parameters, under the keys convert_hf_to_gguf.py writes them to.
    if (f.get_float(a + ".rope.scaling.yarn_beta_fast", &v)) c.rope.beta_fast = v;
    if (f.get_float(a + ".rope.scaling.yarn_beta_slow", &v)) c.rope.beta_slow = v;
    if (f.get_float(a + ".rope.scaling.yarn_attn_factor", &v)) c.rope.attention_factor = v;
  }
  // llama.cpp's converter permutes Llama's Q and K rows so that adjacent pairs rotate together.
  c.rope.pairing = c.arch == Arch::llama ? RopePairing::adjacent : RopePairing::half;
  c.qkv_bias = c.arch == Arch::qwen2;
  c.qk_norm = c.arch == Arch::qwen3;

  std::uint64_t ft;
  if (f.get_uint("general.file_type", &ft)) file_type_ = ftype_name(ft);
  if (f.get_float("general.sampling.temp", &v)) generation_.temperature = v, generation_.from_file = true;
  if (f.get_float("general.sampling.top_p", &v)) generation_.top_p = v, generation_.from_file = true;
  std::uint64_t k;
  if (f.get_uint("general.sampling.top_k", &k)) generation_.top_k = static_cast<std::uint32_t>(k);

  // The vocabulary, for the special tokens and the real vocabulary size.
  const gguf::Value* tokens = f.find("tokenizer.ggml.tokens");
  const gguf::Value* types = f.find("tokenizer.ggml.token_type");
  if (tokens && tokens->element == gguf::ValueType::string) {
    const auto& s = tokens->strings;
    std::map<std::string_view, std::int32_t> wanted;
    for (std::size_t i = 0; i < s.size(); ++i)
      if (!s[i].empty() && s[i][0] == '<' && s[i].size() < 32) wanted.emplace(s[i], static_cast<std::int32_t>(i));
    std::uint64_t id;
    if (f.get_uint("tokenizer.ggml.bos_token_id", &id) && id < s.size()) tokens_.bos = static_cast<std::int32_t>(id);
    if (f.get_uint("tokenizer.ggml.eos_token_id", &id) && id < s.size()) tokens_.eos = static_cast<std::int32_t>(id);
    find_special_tokens([&](std::string_view t) { auto it = wanted.find(t); return it == wanted.end() ? -1 : it->second; }, &tokens_);
    if (f.get_uint("tokenizer.ggml.eot_token_id", &id) && id < s.size() &&
        std::find(tokens_.end_of_generation.begin(), tokens_.end_of_generation.end(), id) == tokens_.end_of_generation.end())
      tokens_.end_of_generation.push_back(static_cast<std::int32_t>(id));
    // Padding rows: llama.cpp writes them as "[PAD<id>]" with type 5 (unused) at the end.
    std::size_t n = s.size();
    while (n > 0 && types && types->integer_at(n - 1) == 5 && s[n - 1].substr(0, 4) == "[PAD") --n;
    tokens_.n_tokens = static_cast<std::uint32_t>(n);
  }

  if (f.tensors().empty()) {
    if (options.require_weights)
      return fail("has no tensors (a vocabulary-only file?): there are no weights to run");
    c.n_vocab = tokens_.n_tokens;
    return true;
  }
  has_weights_ = true;
  std::map<std::string, Weight, std::less<>> found;
  for (const auto& t : f.tensors()) found.emplace(std::string(t.name), weight_of(t));
  weights_.layers.resize(c.n_layer);
  for_each_slot(weights_, [&](const std::string& n, Weight& slot) {
    if (auto it = found.find(n); it != found.end()) slot = it->second;
  });
  // llama3 scaling in a GGUF is the rope_freqs tensor (per-frequency divisors).
  if (weights_.rope_freqs.present() && c.rope.scaling == RopeScaling::none) c.rope.scaling = RopeScaling::llama3;
  if (weights_.tok_embd.present()) c.n_vocab = static_cast<std::uint32_t>(std::min<std::uint64_t>(weights_.tok_embd.ne[1], kMaxVocab + 1));
  return check_weights(error);
}

bool Model::open_snapshot(const std::string& dir, const Options& options, std::string* error) {
  format_ = ModelFormat::snapshot;
  path_ = dir;
  const fs::path root(dir);
  // A Hugging Face cache path .../models--ORG--NAME/snapshots/<rev> names the model ORG/NAME.
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  name_ = p.filename().string();
  if (p.parent_path().filename() == "snapshots") {
    std::string repo = p.parent_path().parent_path().filename().string();
    if (repo.rfind("models--", 0) == 0) {
      repo = repo.substr(8);
      if (auto sep = repo.find("--"); sep != std::string::npos) repo.replace(sep, 2, "/");
      name_ = repo;
    }
  }
  auto fail = [&](const std::string& file, const std::string& what) {
    *error = (root / file).string() + ": " + what;
    return false;
  };
  nlohmann::json cfg;
  if (!fs::exists(root / "config.json")) return fail("config.json", "missing: a snapshot folder needs config.json");
  if (!read_json_file(root / "config.json", &cfg, error)) return false;
  try {
    std::string model_type = cfg.value("model_type", "");
    if (!parse_arch(model_type, &config_.arch))
      return fail("config.json", "model_type '" + model_type + "' is not supported (qwen2, qwen3 and llama are)");
    ModelConfig& c = config_;
    auto need = [&](const char* key, std::uint64_t max, std::uint32_t* out) {
      auto it = cfg.find(key);
      if (it == cfg.end() || !it->is_number_unsigned()) return fail("config.json", std::string("no ") + key);
      std::uint64_t v = it->get<std::uint64_t>();
      if (v == 0 || v > max) return fail("config.json", std::string(key) + " = " + std::to_string(v) + " is out of range");
      *out = static_cast<std::uint32_t>(v);
      return true;
    };
    if (!need("hidden_size", kMaxWidth, &c.n_embd) || !need("intermediate_size", kMaxWidth, &c.n_ff) ||
        !need("num_hidden_layers", kMaxLayers, &c.n_layer) || !need("num_attention_heads", kMaxHeads, &c.n_head) ||
        !need("vocab_size", kMaxVocab, &c.n_vocab))
      return false;
    c.n_head_kv = c.n_head;
    if (cfg.contains("num_key_value_heads") && !need("num_key_value_heads", kMaxHeads, &c.n_head_kv)) return false;
    c.head_dim = c.n_embd / c.n_head;
    if (cfg.contains("head_dim") && !cfg["head_dim"].is_null() && !need("head_dim", kMaxHeadDim, &c.head_dim)) return false;
    c.max_context = 4096;
    if (cfg.contains("max_position_embeddings") && !need("max_position_embeddings", 1u << 30, &c.max_context)) return false;
    c.rms_eps = cfg.value("rms_norm_eps", 1e-6);
    c.rope.theta = cfg.value("rope_theta", 10000.0);
    c.rope.pairing = RopePairing::half;
    c.tied_embeddings = cfg.value("tie_word_embeddings", false);
    c.qkv_bias = c.arch == Arch::qwen2;
    c.qk_norm = c.arch == Arch::qwen3;
    if (auto rs = cfg.find("rope_scaling"); rs != cfg.end() && rs->is_object()) {
      std::string type = rs->value("rope_type", rs->value("type", ""));
      if (type == "llama3") c.rope.scaling = RopeScaling::llama3;
      else if (type == "yarn") c.rope.scaling = RopeScaling::yarn;
      else if (type == "linear") c.rope.scaling = RopeScaling::linear;
      else if (type != "default" && !type.empty())
        return fail("config.json", "rope_scaling type '" + type + "' is not supported");
      c.rope.factor = rs->value("factor", 1.0);
      c.rope.low_freq_factor = rs->value("low_freq_factor", 1.0);
      c.rope.high_freq_factor = rs->value("high_freq_factor", 4.0);
      c.rope.original_context = rs->value("original_max_position_embeddings", 0u);
      // null or absent: the defaults (transformers reads them with `or`).
      auto number = [&](const char* key, double* out) {
        if (auto it = rs->find(key); it != rs->end() && !it->is_null()) *out = it->get<double>();
      };
      number("beta_fast", &c.rope.beta_fast);
      number("beta_slow", &c.rope.beta_slow);
      number("attention_factor", &c.rope.attention_factor);
    }
  } catch (const nlohmann::json::exception& e) {
    return fail("config.json", std::string("a value has the wrong type: ") + e.what());
  }

  // Generation defaults, when the folder has them.
  if (fs::exists(root / "generation_config.json")) {
    nlohmann::json gen;
    if (!read_json_file(root / "generation_config.json", &gen, error)) return false;
    if (auto t = gen.find("temperature"); t != gen.end() && t->is_number()) generation_.temperature = t->get<double>(), generation_.from_file = true;
    if (auto t = gen.find("top_p"); t != gen.end() && t->is_number()) generation_.top_p = t->get<double>(), generation_.from_file = true;
    if (auto t = gen.find("top_k"); t != gen.end() && t->is_number_unsigned()) generation_.top_k = t->get<std::uint32_t>();
  }

  // Special tokens from tokenizer.json's added tokens.
  if (!fs::exists(root / "tokenizer.json")) return fail("tokenizer.json", "missing: the snapshot has no tokenizer");
  {
    nlohmann::json tok;
    if (!read_json_file(root / "tokenizer.json", &tok, error)) return false;
    std::map<std::string, std::int32_t, std::less<>> added;
    std::uint64_t n = 0;
    if (auto v = tok.find("model"); v != tok.end() && v->is_object())
      if (auto vocab = v->find("vocab"); vocab != v->end() && vocab->is_object())
        for (const auto& [t, id] : vocab->items())
          if (id.is_number_unsigned()) n = std::max<std::uint64_t>(n, id.get<std::uint64_t>() + 1);
    if (auto a = tok.find("added_tokens"); a != tok.end() && a->is_array())
      for (const auto& e : *a)
        if (e.is_object() && e.contains("id") && e["id"].is_number_unsigned() && e.contains("content") && e["content"].is_string()) {
          auto id = e["id"].get<std::uint64_t>();
          if (id < kMaxVocab) added.emplace(e["content"].get<std::string>(), static_cast<std::int32_t>(id));
          n = std::max<std::uint64_t>(n, id + 1);
        }
    find_special_tokens([&](std::string_view t) { auto it = added.find(t); return it == added.end() ? -1 : it->second; }, &tokens_);
    tokens_.n_tokens = static_cast<std::uint32_t>(std::min<std::uint64_t>(n, config_.n_vocab));
  }

  // The weights: the shards the index names, else every *.safetensors in the folder.
  std::vector<std::string> files;
  std::map<std::string, std::string> index;  // tensor -> shard, from the index
  if (fs::exists(root / "model.safetensors.index.json")) {
    nlohmann::json idx;
    if (!read_json_file(root / "model.safetensors.index.json", &idx, error)) return false;
    auto wm = idx.find("weight_map");
    if (wm == idx.end() || !wm->is_object()) return fail("model.safetensors.index.json", "no weight_map");
    for (const auto& [t, file] : wm->items()) {
      if (!file.is_string()) return fail("model.safetensors.index.json", "weight_map['" + t + "'] is not a file name");
      const std::string s = file.get<std::string>();
      if (s.empty() || s.find('/') != std::string::npos || s == "..")
        return fail("model.safetensors.index.json", "weight_map['" + t + "'] = '" + s + "' is not a file in the folder");
      index.emplace(t, s);
      if (std::find(files.begin(), files.end(), s) == files.end()) files.push_back(s);
    }
  } else {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root, ec))
      if (e.path().extension() == ".safetensors") files.push_back(e.path().filename().string());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    if (options.require_weights) return fail("", "no *.safetensors files: there are no weights to run");
    return true;
  }
  std::map<std::string, Weight, std::less<>> found;
  std::map<GgmlType, std::uint64_t> type_bytes;
  for (const auto& file : files) {
    auto shard = safetensors::File::open((root / file).string(), error);
    if (!shard) return false;
    for (const auto& t : shard->tensors()) {
      std::string n = internal_name(t.name);
      if (n.empty()) continue;
      if (auto it = index.find(t.name); it != index.end() && it->second != file) continue;  // the index decides
      Weight w;
      switch (t.dtype) {
        case safetensors::DType::f32: w.type = GgmlType::f32; break;
        case safetensors::DType::f16: w.type = GgmlType::f16; break;
        case safetensors::DType::bf16: w.type = GgmlType::bf16; break;
        default: return fail(file, "tensor '" + t.name + "' is " + std::string(safetensors::dtype_name(t.dtype)) +
                                       ": only F32, F16 and BF16 weights are supported");
      }
      if (t.shape.empty() || t.shape.size() > 4) return fail(file, "tensor '" + t.name + "' has " + std::to_string(t.shape.size()) + " dimensions");
      w.n_dims = static_cast<std::uint32_t>(t.shape.size());
      for (std::size_t d = 0; d < t.shape.size(); ++d) w.ne[d] = t.shape[t.shape.size() - 1 - d];
      w.data = t.data;
      w.bytes = t.bytes;
      w.source = t.name;
      type_bytes[w.type] += w.bytes;
      if (!found.emplace(n, w).second) return fail(file, "tensor '" + t.name + "' appears in more than one file");
    }
    shards_.push_back(std::move(shard));
  }
  for (const auto& [t, file] : index)
    if (!internal_name(t).empty() && !found.count(internal_name(t)))
      return fail(file, "tensor '" + t + "' is listed in model.safetensors.index.json but not in the file");
  if (!type_bytes.empty()) {
    auto most = std::max_element(type_bytes.begin(), type_bytes.end(), [](auto& x, auto& y) { return x.second < y.second; });
    file_type_ = upper(ggml_type_info(static_cast<std::uint32_t>(most->first))->name);
  }
  has_weights_ = true;
  weights_.layers.resize(config_.n_layer);
  for_each_slot(weights_, [&](const std::string& n, Weight& slot) {
    if (auto it = found.find(n); it != found.end()) slot = it->second;
  });
  if (config_.tied_embeddings && !weights_.output.present()) weights_.output = weights_.tok_embd;
  return check_weights(error);
}

// Every weight the architecture needs, with the shape it needs and a type ponder can read.
bool Model::check_weights(std::string* error) {
  const ModelConfig& c = config_;
  auto fail = [&](const std::string& what) {
    *error = path_ + ": " + what;
    return false;
  };
  if (c.n_head % c.n_head_kv != 0)
    return fail(std::to_string(c.n_head) + " heads do not divide into " + std::to_string(c.n_head_kv) + " kv heads");
  if (c.head_dim % 2 != 0) return fail("head size " + std::to_string(c.head_dim) + " is odd");
  if (c.n_vocab == 0 || c.n_vocab > kMaxVocab) return fail("the vocabulary size " + std::to_string(c.n_vocab) + " is out of range");
  const std::uint64_t q = std::uint64_t{c.n_head} * c.head_dim, kv = std::uint64_t{c.n_head_kv} * c.head_dim;

  std::string problem;
  auto expect = [&](const std::string& name, const Weight& w, bool required, std::vector<std::uint64_t> shape) {
    if (!problem.empty()) return;
    if (!w.present()) {
      if (required) problem = "tensor '" + name + "' is missing (" + std::string(arch_name(c.arch)) + " needs it)";
      return;
    }
    bool same = w.n_dims == shape.size();
    for (std::size_t d = 0; same && d < shape.size(); ++d) same = w.ne[d] == shape[d];
    if (!same) {
      problem = "tensor '" + std::string(w.source) + "' has shape " + shape_text(w.ne, w.n_dims) + "; " +
                std::string(arch_name(c.arch)) + " with these hyperparameters needs " +
                shape_text(shape.data(), static_cast<std::uint32_t>(shape.size()));
      return;
    }
    if (!can_dequantize(w.type))
      problem = "tensor '" + std::string(w.source) + "' is of type " +
                std::string(ggml_type_info(static_cast<std::uint32_t>(w.type))->name) +
                ", which ponder cannot compute with (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K)";
  };
  expect("token_embd.weight", weights_.tok_embd, true, {c.n_embd, c.n_vocab});
  expect("output_norm.weight", weights_.output_norm, true, {c.n_embd});
  if (!weights_.output.present() && weights_.tok_embd.present()) {
    config_.tied_embeddings = true;
    weights_.output = weights_.tok_embd;
  }
  expect("output.weight", weights_.output, true, {c.n_embd, c.n_vocab});
  expect("rope_freqs.weight", weights_.rope_freqs, false, {c.head_dim / 2});
  for (std::uint32_t i = 0; i < c.n_layer && problem.empty(); ++i) {
    const LayerWeights& l = weights_.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    expect(p + "attn_norm.weight", l.attn_norm, true, {c.n_embd});
    expect(p + "attn_q.weight", l.wq, true, {c.n_embd, q});
    expect(p + "attn_k.weight", l.wk, true, {c.n_embd, kv});
    expect(p + "attn_v.weight", l.wv, true, {c.n_embd, kv});
    expect(p + "attn_q.bias", l.bq, c.qkv_bias, {q});
    expect(p + "attn_k.bias", l.bk, c.qkv_bias, {kv});
    expect(p + "attn_v.bias", l.bv, c.qkv_bias, {kv});
    expect(p + "attn_q_norm.weight", l.q_norm, c.qk_norm, {c.head_dim});
    expect(p + "attn_k_norm.weight", l.k_norm, c.qk_norm, {c.head_dim});
    expect(p + "attn_output.weight", l.wo, true, {q, c.n_embd});
    expect(p + "ffn_norm.weight", l.ffn_norm, true, {c.n_embd});
    expect(p + "ffn_gate.weight", l.gate, true, {c.n_embd, c.n_ff});
    expect(p + "ffn_up.weight", l.up, true, {c.n_embd, c.n_ff});
    expect(p + "ffn_down.weight", l.down, true, {c.n_ff, c.n_embd});
  }
  if (!problem.empty()) return fail(problem);
  if (tokens_.n_tokens == 0 || tokens_.n_tokens > c.n_vocab) tokens_.n_tokens = c.n_vocab;

  weight_bytes_ = parameters_ = 0;
  for (const auto& [name, w] : named_weights()) {
    if (config_.tied_embeddings && w == &weights_.output) continue;
    weight_bytes_ += w->bytes;
    parameters_ += w->elements();
  }
  decode_weight_bytes_ = weight_bytes_;
  if (!config_.tied_embeddings && weights_.tok_embd.rows() > 0)
    decode_weight_bytes_ -= weights_.tok_embd.bytes - weights_.tok_embd.bytes / weights_.tok_embd.rows();
  if (file_type_.empty()) file_type_ = upper(ggml_type_info(static_cast<std::uint32_t>(weights_.layers.empty() ? weights_.tok_embd.type : weights_.layers[0].wq.type))->name);
  return true;
}

std::vector<std::pair<std::string, const Weight*>> Model::named_weights() const {
  std::vector<std::pair<std::string, const Weight*>> out;
  for_each_slot(const_cast<ModelWeights&>(weights_), [&](const std::string& n, Weight& w) {
    if (w.present()) out.emplace_back(n, &w);
  });
  return out;
}

std::unique_ptr<Tokenizer> Model::load_tokenizer(std::string* error) const {
  if (format_ == ModelFormat::snapshot) return Tokenizer::from_json_file((fs::path(path_) / "tokenizer.json").string(), error);
  std::string why;
  auto t = Tokenizer::from_gguf(*gguf_, &why);
  if (!t && error) *error = path_ + ": " + why;
  return t;
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_path, std::string* error) {
  std::error_code ec;
  if (fs::is_directory(model_path, ec)) {
    const fs::path json = fs::path(model_path) / "tokenizer.json";
    if (!fs::exists(json, ec)) {
      if (error) *error = json.string() + ": missing: the snapshot has no tokenizer";
      return nullptr;
    }
    return Tokenizer::from_json_file(json.string(), error);
  }
  auto file = gguf::File::open(model_path, error);
  if (!file) return nullptr;
  std::string why;
  auto t = Tokenizer::from_gguf(*file, &why);
  if (!t && error) *error = model_path + ": " + why;
  return t;
}

// --- memory -------------------------------------------------------------------------------

bool parse_kv_type(std::string_view name, KvType* kv) {
  if (name == "f16") *kv = KvType::f16;
  else if (name == "f32") *kv = KvType::f32;
  else if (name == "q8_0") *kv = KvType::q8_0;
  else return false;
  return true;
}

std::uint64_t kv_bytes_per_token(const ModelConfig& c, KvType kv) {
  const std::uint64_t elements = 2ull * c.n_layer * c.n_head_kv * c.head_dim;  // K and V
  switch (kv) {
    case KvType::f32: return elements * 4;
    case KvType::f16: return elements * 2;
    case KvType::q8_0: return elements / 32 * 34;
  }
  return elements * 2;
}

namespace {
// Activations for a prefill chunk of 512 tokens, the logits of one row, and some slack. Per token
// also the matmuls' copies of an activation row (at most n_ff long): packed as floats (4 bytes a
// value) and quantized to 8 bits (blocks of 32 and of 256: ~2.4 bytes a value).
std::uint64_t workspace_bytes(const ModelConfig& c) {
  constexpr std::uint64_t kChunk = 512;
  const std::uint64_t per_token = 4ull * (4ull * c.n_embd + 2ull * c.n_ff +
                                          (std::uint64_t{c.n_head} + 2ull * c.n_head_kv) * c.head_dim) +
                                  7ull * c.n_ff;
  return kChunk * per_token + 4ull * c.n_vocab + (64ull << 20);
}
}  // namespace

MemoryEstimate estimate_memory(const ModelConfig& c, std::uint64_t weight_bytes, std::uint32_t context, KvType kv) {
  MemoryEstimate e;
  e.context = context;
  e.weights = weight_bytes;
  e.kv_cache = kv_bytes_per_token(c, kv) * context;
  e.workspace = workspace_bytes(c);
  return e;
}

std::uint32_t largest_context(const ModelConfig& c, std::uint64_t weight_bytes, std::uint64_t available, KvType kv) {
  const std::uint64_t fixed = weight_bytes + workspace_bytes(c);
  const std::uint64_t per = kv_bytes_per_token(c, kv);
  if (available <= fixed || per == 0) return 0;
  std::uint64_t n = (available - fixed) / per / 256 * 256;
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(n, c.max_context ? c.max_context : n));
}

bool check_memory(const ModelConfig& c, const MemoryEstimate& e, std::uint64_t available, std::string* message) {
  if (e.total() <= available) return true;
  std::string m = "needs " + format_bytes(e.total()) + " (weights " + format_bytes(e.weights) + " + KV cache " +
                  format_bytes(e.kv_cache) + " for " + std::to_string(e.context) + " tokens + workspace " +
                  format_bytes(e.workspace) + ") but only " + format_bytes(available) + " is available";
  // What would fit with the same KV type (recovered from the estimate's bytes per token).
  KvType kv = KvType::f16;
  if (e.context && e.kv_cache / e.context == kv_bytes_per_token(c, KvType::f32)) kv = KvType::f32;
  else if (e.context && e.kv_cache / e.context == kv_bytes_per_token(c, KvType::q8_0)) kv = KvType::q8_0;
  std::uint32_t fits = largest_context(c, e.weights, available, kv);
  if (fits >= 256) m += "; the largest context that fits is " + std::to_string(fits) + " tokens";
  else m += "; not even the weights fit: choose a smaller or more quantized model";
  if (message) *message = m;
  return false;
}

std::uint64_t available_memory() {
  std::uint64_t avail = 0;
  if (std::FILE* f = std::fopen("/proc/meminfo", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f)) {
      unsigned long long kb;
      if (std::sscanf(line, "MemAvailable: %llu kB", &kb) == 1) avail = kb * 1024;
    }
    std::fclose(f);
  }
  // A cgroup (v2) limit caps it: a container sees the host's MemAvailable.
  auto read_u64 = [](const char* path, std::uint64_t* out) {
    std::FILE* f = std::fopen(path, "r");
    if (!f) return false;
    unsigned long long v;
    bool ok = std::fscanf(f, "%llu", &v) == 1;
    std::fclose(f);
    if (ok) *out = v;
    return ok;
  };
  std::uint64_t limit, used;
  if (read_u64("/sys/fs/cgroup/memory.max", &limit) && read_u64("/sys/fs/cgroup/memory.current", &used) && limit > used)
    avail = avail ? std::min(avail, limit - used) : limit - used;
  return avail;
}

std::string format_bytes(std::uint64_t bytes) {
  char buf[32];
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024) std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1024.0 * 1024 * 1024));
  else if (b >= 1024.0 * 1024) std::snprintf(buf, sizeof buf, "%.1f MiB", b / (1024.0 * 1024));
  else if (b >= 1024.0) std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  else std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  return buf;
}

}  // namespace ponder
