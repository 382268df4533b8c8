// Models to the reference forward pass and back: see reference_bridge.h.
#include "support/reference_bridge.h"

#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/quant.h"
#include "support/temp_dir.h"

namespace ponder::test {
namespace {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

bool fail(std::string* error, const std::string& what) {
  if (error) *error = what;
  return false;
}

// The Hugging Face name of an internal (GGUF) name; empty for rope_freqs.weight and unknown names.
std::string hf_name(const std::string& name) {
  if (name == "token_embd.weight") return "model.embed_tokens.weight";
  if (name == "output_norm.weight") return "model.norm.weight";
  if (name == "output.weight") return "lm_head.weight";
  static const std::pair<const char*, const char*> kLayer[] = {
      {"attn_norm.weight", "input_layernorm.weight"},
      {"attn_q.weight", "self_attn.q_proj.weight"},
      {"attn_q.bias", "self_attn.q_proj.bias"},
      {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_k.bias", "self_attn.k_proj.bias"},
      {"attn_v.weight", "self_attn.v_proj.weight"},
      {"attn_v.bias", "self_attn.v_proj.bias"},
      {"attn_q_norm.weight", "self_attn.q_norm.weight"},
      {"attn_k_norm.weight", "self_attn.k_norm.weight"},
      {"attn_output.weight", "self_attn.o_proj.weight"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"},
  };
  if (name.rfind("blk.", 0) != 0) return "";
  const std::size_t dot = name.find('.', 4);
  if (dot == std::string::npos) return "";
  const std::string layer = name.substr(4, dot - 4), rest = name.substr(dot + 1);
  for (const auto& [ours, theirs] : kLayer)
    if (rest == ours) return "model.layers." + layer + "." + theirs;
  return "";
}

// GGUF row h·d + 2i + j of a llama Q/K weight holds HF row h·d + j·d/2 + i.
std::vector<float> unpermute_rows(const std::vector<float>& gguf, std::uint64_t cols, std::uint64_t n_heads) {
  const std::uint64_t rows = gguf.size() / cols, d = rows / n_heads;
  std::vector<float> hf(gguf.size());
  for (std::uint64_t h = 0; h < n_heads; ++h)
    for (std::uint64_t i = 0; i < d / 2; ++i)
      for (std::uint64_t j = 0; j < 2; ++j)
        std::memcpy(&hf[(h * d + j * (d / 2) + i) * cols], &gguf[(h * d + 2 * i + j) * cols], cols * sizeof(float));
  return hf;
}

// The shortest decimal that reads back as the same float32 (a GGUF's f32 metadata as the
// config.json value it came from).
double shortest_float_decimal(double v) {
  const float f = static_cast<float>(v);
  for (int digits = 1; digits <= 9; ++digits) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*g", digits, static_cast<double>(f));
    double back = std::strtod(buf, nullptr);
    if (static_cast<float>(back) == f) return back;
  }
  return v;
}

bool read_doubles(const fs::path& p, std::vector<double>* out, std::string* error) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return fail(error, p.string() + ": cannot open");
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::size_t>(in.tellg());
  if (size % 8) return fail(error, p.string() + ": " + std::to_string(size) + " bytes is not a whole number of float64");
  in.seekg(0);
  out->resize(size / 8);
  in.read(reinterpret_cast<char*>(out->data()), static_cast<std::streamsize>(size));
  if (!in) return fail(error, p.string() + ": read failed");
  return true;  // little-endian, as this machine
}

}  // namespace

std::vector<double> llama3_rope_factors(double theta, std::uint32_t head_dim, const Llama3RopeParams& p) {
  const double low_wavelen = p.original_context / p.low_freq_factor;
  const double high_wavelen = p.original_context / p.high_freq_factor;
  std::vector<double> out;
  for (std::uint32_t i = 0; i < head_dim; i += 2) {
    const float freq = 1.0f / std::pow(static_cast<float>(theta), static_cast<float>(i) / static_cast<float>(head_dim));
    const double wavelen = 2 * M_PI / static_cast<double>(freq);
    if (wavelen < high_wavelen) {
      out.push_back(1);
    } else if (wavelen > low_wavelen) {
      out.push_back(p.factor);
    } else {
      const double smooth = (p.original_context / wavelen - p.low_freq_factor) / (p.high_freq_factor - p.low_freq_factor);
      out.push_back(1 / ((1 - smooth) / p.factor + smooth));
    }
  }
  return out;
}

bool write_f32_snapshot(const Model& m, const std::string& dir, std::string* error, const Llama3RopeParams* gguf_llama3) {
  const ModelConfig& c = m.config();
  const bool gguf = m.format() == ModelFormat::gguf;
  if (!m.has_weights()) return fail(error, m.path() + ": has no weights");

  // config.json, as transformers writes one.
  ordered_json cfg;
  const char* arch = c.arch == Arch::qwen2 ? "Qwen2ForCausalLM" : c.arch == Arch::qwen3 ? "Qwen3ForCausalLM" : "LlamaForCausalLM";
  cfg["architectures"] = ordered_json::array({arch});
  cfg["model_type"] = std::string(arch_name(c.arch));
  cfg["hidden_act"] = "silu";
  cfg["hidden_size"] = c.n_embd;
  cfg["intermediate_size"] = c.n_ff;
  cfg["num_hidden_layers"] = c.n_layer;
  cfg["num_attention_heads"] = c.n_head;
  cfg["num_key_value_heads"] = c.n_head_kv;
  cfg["head_dim"] = c.head_dim;
  cfg["max_position_embeddings"] = c.max_context;
  cfg["rms_norm_eps"] = gguf ? shortest_float_decimal(c.rms_eps) : c.rms_eps;
  cfg["rope_theta"] = gguf ? shortest_float_decimal(c.rope.theta) : c.rope.theta;
  cfg["tie_word_embeddings"] = c.tied_embeddings;
  cfg["vocab_size"] = c.n_vocab;
  cfg["torch_dtype"] = "float32";
  if (c.arch != Arch::qwen2) cfg["attention_bias"] = false;
  if (c.arch == Arch::qwen2 && !c.qkv_bias) return fail(error, m.path() + ": a qwen2 model without q/k/v biases");

  const Weight& rope_freqs = m.weights().rope_freqs;
  switch (c.rope.scaling) {
    case RopeScaling::none:
      cfg["rope_scaling"] = nullptr;
      break;
    case RopeScaling::linear:
      cfg["rope_scaling"] = {{"rope_type", "linear"}, {"factor", c.rope.factor}};
      break;
    case RopeScaling::llama3: {
      Llama3RopeParams p;
      if (rope_freqs.present()) {
        // A GGUF: the parameters are the caller's, checked against the stored factors.
        if (gguf_llama3) p = *gguf_llama3;
        std::vector<float> stored(rope_freqs.elements());
        std::string e;
        if (!dequantize(rope_freqs.type, rope_freqs.data, stored.data(), stored.size(), &e))
          return fail(error, m.path() + ": rope_freqs.weight: " + e);
        const std::vector<double> want = llama3_rope_factors(c.rope.theta, c.head_dim, p);
        if (want.size() != stored.size())
          return fail(error, m.path() + ": rope_freqs.weight has " + std::to_string(stored.size()) + " values, not " +
                                 std::to_string(want.size()));
        for (std::size_t i = 0; i < want.size(); ++i)
          if (std::fabs(stored[i] - want[i]) > 1e-5 * std::fabs(want[i]))
            return fail(error, m.path() + ": rope_freqs.weight[" + std::to_string(i) + "] = " + std::to_string(stored[i]) +
                                   " but llama3 scaling (factor " + std::to_string(p.factor) + ", low " +
                                   std::to_string(p.low_freq_factor) + ", high " + std::to_string(p.high_freq_factor) +
                                   ", original " + std::to_string(p.original_context) + ") gives " + std::to_string(want[i]));
      } else {
        p.factor = c.rope.factor;
        p.low_freq_factor = c.rope.low_freq_factor;
        p.high_freq_factor = c.rope.high_freq_factor;
        p.original_context = c.rope.original_context;
      }
      cfg["rope_scaling"] = {{"rope_type", "llama3"},
                             {"factor", p.factor},
                             {"low_freq_factor", p.low_freq_factor},
                             {"high_freq_factor", p.high_freq_factor},
                             {"original_max_position_embeddings", p.original_context}};
      break;
    }
    case RopeScaling::yarn:
      // An attention factor of 0 is ModelConfig's "the default" (0.1 ln(factor) + 1): left out.
      cfg["rope_scaling"] = {{"rope_type", "yarn"},
                             {"factor", c.rope.factor},
                             {"beta_fast", c.rope.beta_fast},
                             {"beta_slow", c.rope.beta_slow}};
      if (c.rope.original_context) cfg["rope_scaling"]["original_max_position_embeddings"] = c.rope.original_context;
      if (c.rope.attention_factor > 0) cfg["rope_scaling"]["attention_factor"] = c.rope.attention_factor;
      break;
  }

  // The tensors: HF names and shapes, F32 in the order of named_weights().
  struct Entry {
    std::string name;
    const Weight* w;
    std::uint32_t unpermute_heads = 0;
  };
  std::vector<Entry> entries;
  for (const auto& [name, w] : m.named_weights()) {
    if (!w->present() || name == "rope_freqs.weight") continue;
    if (name == "output.weight" && c.tied_embeddings) continue;
    std::string hf = hf_name(name);
    if (hf.empty()) return fail(error, m.path() + ": no Hugging Face name for tensor '" + name + "'");
    Entry e{hf, w, 0};
    if (gguf && c.rope.pairing == RopePairing::adjacent) {
      const bool k = name.find(".attn_k.") != std::string::npos;
      if (name.find(".attn_q.") != std::string::npos || k) e.unpermute_heads = k ? c.n_head_kv : c.n_head;
    }
    entries.push_back(std::move(e));
  }
  ordered_json header = ordered_json::object();
  header["__metadata__"] = {{"format", "pt"}};
  std::uint64_t offset = 0;
  for (const Entry& e : entries) {
    const std::uint64_t bytes = e.w->elements() * 4;
    ordered_json shape = e.w->n_dims == 1 ? ordered_json::array({e.w->ne[0]}) : ordered_json::array({e.w->rows(), e.w->ne[0]});
    header[e.name] = {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail(error, dir + ": " + ec.message());
  {
    std::ofstream out(fs::path(dir) / "config.json", std::ios::binary);
    out << cfg.dump(2) << "\n";
    if (!out) return fail(error, dir + "/config.json: write failed");
  }
  const fs::path st = fs::path(dir) / "model.safetensors";
  std::ofstream out(st, std::ios::binary);
  const std::uint64_t n = header_text.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(header_text.data(), static_cast<std::streamsize>(n));
  for (const Entry& e : entries) {
    std::vector<float> values(e.w->elements());
    std::string err;
    if (!dequantize(e.w->type, e.w->data, values.data(), values.size(), &err))
      return fail(error, m.path() + ": " + std::string(e.w->source) + ": " + err);
    if (e.unpermute_heads) values = unpermute_rows(values, e.w->ne[0], e.unpermute_heads);
    out.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size() * 4));
  }
  out.close();
  if (!out) return fail(error, st.string() + ": write failed");
  return true;
}

bool run_reference(const std::string& snapshot_dir, const std::vector<std::int32_t>& ids, ReferenceResult* out,
                   std::string* error, int greedy) {
  ReferenceOptions options;
  options.greedy = greedy;
  return run_reference(snapshot_dir, ids, options, out, error);
}

bool run_reference(const std::string& snapshot_dir, const std::vector<std::int32_t>& ids, const ReferenceOptions& options,
                   ReferenceResult* out, std::string* error) {
  std::vector<ReferenceResult> results;
  if (!run_reference_batch({ReferenceJob{snapshot_dir, ids, options}}, &results, error)) return false;
  *out = std::move(results[0]);
  return true;
}

bool run_reference_batch(const std::vector<ReferenceJob>& jobs, std::vector<ReferenceResult>* out, std::string* error) {
  out->assign(jobs.size(), ReferenceResult{});
  if (jobs.empty()) return true;
  TempDir tmp;
  const fs::path jobs_path = tmp.path() / "jobs.txt", log_path = tmp.path() / "stderr.txt";
  auto file = [&](std::size_t i, const char* what) { return tmp.path() / (std::to_string(i) + what); };
  std::string lines;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const ReferenceJob& job = jobs[i];
    if (job.ids.empty()) return fail(error, "run_reference: job " + std::to_string(i) + " has no token ids");
    std::ifstream in(fs::path(job.snapshot_dir) / "config.json", std::ios::binary);
    nlohmann::json cfg = nlohmann::json::parse(in, nullptr, false);
    if (cfg.is_discarded() || !cfg.contains("vocab_size") || !cfg["vocab_size"].is_number_unsigned())
      return fail(error, job.snapshot_dir + "/config.json: missing, unreadable or without vocab_size");
    (*out)[i].n_vocab = cfg["vocab_size"].get<std::size_t>();
    {
      std::ofstream f(file(i, ".ids"));
      for (std::int32_t id : job.ids) f << id << "\n";
    }
    std::string line = shell_quote(job.snapshot_dir) + " --ids " + shell_quote(file(i, ".ids").string()) + " --logits " +
                       shell_quote(file(i, ".f64").string());
    if (job.options.last_only) line += " --last-only";
    if (job.options.block > 0) line += " --block " + std::to_string(job.options.block);
    if (job.options.greedy > 0)
      line += " --greedy " + std::to_string(job.options.greedy) + " --greedy-vocab " + std::to_string(job.options.greedy_vocab) +
              " --greedy-out " + shell_quote(file(i, ".greedy").string()) +
              " --greedy-logits " + shell_quote(file(i, ".greedy.f64").string());
    lines += line + "\n";
  }
  {
    std::ofstream f(jobs_path, std::ios::binary);
    f << lines;
  }
  const char* python = std::getenv("PONDER_PYTHON");
  const std::string script = std::string(PONDER_REFERENCE_DIR) + "/forward.py";
  const std::string cmd = shell_quote(python && *python ? python : "/usr/bin/python3") + " " + shell_quote(script) +
                          " --batch " + shell_quote(jobs_path.string()) + " 2>" + shell_quote(log_path.string());
  const auto t0 = std::chrono::steady_clock::now();
  const int status = std::system(cmd.c_str());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string log = read_file(log_path);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return fail(error, "forward.py failed (status " + std::to_string(status) + "):\n" + log);

  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const ReferenceJob& job = jobs[i];
    ReferenceResult& r = (*out)[i];
    r.seconds = seconds;
    r.log = log;
    r.n_rows = job.options.last_only ? 1 : job.ids.size();
    const std::size_t n_vocab = r.n_vocab;
    if (!read_doubles(file(i, ".f64"), &r.logits, error)) return false;
    if (r.logits.size() != r.n_rows * n_vocab)
      return fail(error, "forward.py wrote " + std::to_string(r.logits.size()) + " logits, not " + std::to_string(r.n_rows) +
                             " x " + std::to_string(n_vocab));
    if (job.options.greedy > 0) {
      std::ifstream g(file(i, ".greedy"));
      for (std::int32_t id; g >> id;) r.greedy.push_back(id);
      if (r.greedy.size() != static_cast<std::size_t>(job.options.greedy))
        return fail(error, "forward.py wrote " + std::to_string(r.greedy.size()) + " greedy ids, not " +
                               std::to_string(job.options.greedy));
      if (!read_doubles(file(i, ".greedy.f64"), &r.greedy_logits, error)) return false;
      if (r.greedy_logits.size() != r.greedy.size() * n_vocab)
        return fail(error, "forward.py wrote " + std::to_string(r.greedy_logits.size()) + " greedy logits, not " +
                               std::to_string(r.greedy.size()) + " x " + std::to_string(n_vocab));
    }
  }
  return true;
}

double relative_l2(const double* got, const double* want, std::size_t n) {
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = got[i] - want[i];
    diff += d * d;
    norm += want[i] * want[i];
  }
  if (norm == 0) return diff == 0 ? 0 : INFINITY;
  return std::sqrt(diff / norm);
}

double relative_l2(const float* got, const double* want, std::size_t n) {
  std::vector<double> g(got, got + n);
  return relative_l2(g.data(), want, n);
}

double relative_max(const double* got, const double* want, std::size_t n) {
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < n; ++i) {
    diff = std::max(diff, std::fabs(got[i] - want[i]));
    scale = std::max(scale, std::fabs(want[i]));
  }
  if (scale == 0) return diff == 0 ? 0 : INFINITY;
  return diff / scale;
}

}  // namespace ponder::test
