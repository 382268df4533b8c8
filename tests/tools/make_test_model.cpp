// make_test_model: writes a test model (random weights, real tensor names) as a GGUF file or a
// Hugging Face snapshot folder, for benchmarks and by hand. See tests/support/test_model.h.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "support/test_model.h"

namespace {

constexpr const char* kHelp = R"(usage: make_test_model --arch qwen2|qwen3|llama --out PATH [options]

Writes a model with random weights (seeded, reproducible) under the real tensor names.

  --arch A          qwen2, qwen3 or llama (llama: rope_theta 5e5, rms_eps 1e-5, llama3 rope
                    scaling, as the R1 Llama distills)
  --shape S         tiny (default: 256/512/2 layers/2 heads/1 kv head/head_dim 128) or
                    r1-qwen-1.5b (1536/8960/28/12/2/128, 151936 embedding rows),
                    r1-qwen-7b (3584/18944/28/28/4/128, 152064 rows) or
                    r1-qwen-32b (5120/27648/64/40/8/128, 152064 rows)
  --no-data         GGUF: leave the tensor data a hole (zeros, no disk): the shape only, for
                    backends that make random weights themselves (bench/gpu)
  --layers N        number of layers (overrides the shape's)
  --type T          f32, f16, bf16, q8_0, q4_0, q4_K, q5_K, q6_K, q4_K_M, q5_K_M (GGUF; default
                    f32); a snapshot is always bf16
  --format F        gguf (default) or snapshot
  --shards N        safetensors files of a snapshot (default 1)
  --vocab V         reduced (default: 647 tokens, 768 rows) or the path of a tokenizer.json
  --seed N          seed of the weights (default 1)
  --out PATH        the .gguf file, or the snapshot folder
  --help            this text
)";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "make_test_model: %s\n(make_test_model --help for the options)\n", message.c_str());
  return 2;
}

bool parse_uint(std::string_view text, std::uint64_t max, std::uint64_t* out) {
  if (text.empty() || text.size() > 20) return false;
  std::uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    std::uint64_t next = v * 10 + static_cast<std::uint64_t>(c - '0');
    if (next / 10 != v) return false;
    v = next;
  }
  if (v > max) return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using ponder::GgmlType;
  std::string arch, shape = "tiny", type = "f32", format = "gguf", vocab = "reduced", out;
  std::uint64_t layers = 0, shards = 1, seed = 1;
  bool have_layers = false, have_shards = false, have_type = false, no_data = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kHelp, stdout);
      return 0;
    }
    if (a == "--no-data") {
      no_data = true;
      continue;
    }
    if (a.substr(0, 2) != "--") return usage_error("unexpected argument '" + std::string(a) + "'");
    if (i + 1 >= argc) return usage_error(std::string(a) + " needs a value");
    std::string value = argv[++i];
    if (a == "--arch") arch = value;
    else if (a == "--shape") shape = value;
    else if (a == "--type") type = value, have_type = true;
    else if (a == "--format") format = value;
    else if (a == "--vocab") vocab = value;
    else if (a == "--out") out = value;
    else if (a == "--layers") {
      if (!parse_uint(value, 1u << 16, &layers) || layers == 0) return usage_error("--layers wants a positive number, not '" + value + "'");
      have_layers = true;
    } else if (a == "--shards") {
      if (!parse_uint(value, 99999, &shards) || shards == 0) return usage_error("--shards wants a positive number, not '" + value + "'");
      have_shards = true;
    } else if (a == "--seed") {
      if (!parse_uint(value, UINT64_MAX, &seed)) return usage_error("--seed wants a number, not '" + value + "'");
    } else {
      return usage_error("unknown option " + std::string(a));
    }
  }
  if (arch.empty()) return usage_error("--arch is required");
  if (out.empty()) return usage_error("--out is required");

  ponder::test::TestModelSpec spec;
  if (shape == "r1-qwen-1.5b") spec = ponder::test::TestModelSpec::r1_qwen_1_5b();
  else if (shape == "r1-qwen-7b") spec = ponder::test::TestModelSpec::r1_qwen_7b();
  else if (shape == "r1-qwen-32b") spec = ponder::test::TestModelSpec::r1_qwen_32b();
  else if (shape != "tiny") return usage_error("unknown --shape '" + shape + "' (tiny, r1-qwen-1.5b, r1-qwen-7b or r1-qwen-32b)");
  if (arch == "qwen2") spec.arch = ponder::Arch::qwen2;
  else if (arch == "qwen3") spec.arch = ponder::Arch::qwen3;
  else if (arch == "llama") {
    spec.arch = ponder::Arch::llama;
    spec.rope_theta = 500000;
    spec.rms_eps = 1e-5;
    spec.llama3_scaling = true;
  } else {
    return usage_error("unknown --arch '" + arch + "' (qwen2, qwen3 or llama)");
  }
  if (have_layers) spec.n_layer = static_cast<std::uint32_t>(layers);
  spec.seed = seed;
  if (vocab != "reduced") spec.tokenizer_json = vocab;

  std::string error;
  if (format == "snapshot") {
    if (have_type && type != "bf16") return usage_error("a snapshot holds bf16 weights (--type " + type + " is for GGUF)");
    if (no_data) return usage_error("--no-data is for --format gguf");
    if (!ponder::test::write_snapshot(spec, out, static_cast<std::uint32_t>(shards), &error)) {
      std::fprintf(stderr, "make_test_model: %s\n", error.c_str());
      return 1;
    }
  } else if (format == "gguf") {
    if (have_shards) return usage_error("--shards is for --format snapshot");
    struct Named {
      const char* name;
      GgmlType type;
      bool k_m;
    };
    const Named types[] = {{"f32", GgmlType::f32, false},   {"f16", GgmlType::f16, false},
                           {"bf16", GgmlType::bf16, false}, {"q8_0", GgmlType::q8_0, false},
                           {"q4_0", GgmlType::q4_0, false}, {"q4_K", GgmlType::q4_k, false},
                           {"q5_K", GgmlType::q5_k, false}, {"q6_K", GgmlType::q6_k, false},
                           {"q4_K_M", GgmlType::q4_k, true}, {"q5_K_M", GgmlType::q5_k, true}};
    const Named* chosen = nullptr;
    for (const Named& n : types)
      if (type == n.name) chosen = &n;
    if (!chosen) return usage_error("unknown --type '" + type + "' (f32, f16, bf16, q8_0, q4_0, q4_K, q5_K, q6_K, q4_K_M, q5_K_M)");
    if (!ponder::test::write_gguf(spec, chosen->type, out, &error, chosen->k_m, !no_data)) {
      std::fprintf(stderr, "make_test_model: %s\n", error.c_str());
      return 1;
    }
  } else {
    return usage_error("unknown --format '" + format + "' (gguf or snapshot)");
  }

  std::error_code ec;
  std::uintmax_t bytes = 0;
  if (std::filesystem::is_directory(out, ec)) {
    for (const auto& e : std::filesystem::directory_iterator(out, ec))
      if (e.is_regular_file(ec)) bytes += e.file_size(ec);
  } else {
    bytes = std::filesystem::file_size(out, ec);
  }
  std::size_t tensors = 0;
  for (const auto& t : ponder::test::test_tensors(spec)) tensors += format == "gguf" || !t.hf_name.empty();
  std::printf("wrote %s (%s, %s, %zu tensors, %.1f MiB)\n", out.c_str(), arch.c_str(),
              format == "gguf" ? type.c_str() : "bf16 snapshot", tensors, static_cast<double>(bytes) / (1024.0 * 1024.0));
  return 0;
}
