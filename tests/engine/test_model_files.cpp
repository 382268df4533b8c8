// safetensors, the model description from GGUF and snapshots, finding models, the memory
// estimate, and the streaming decoder.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/model_locator.h"
#include "engine/safetensors.h"
#include "engine/tokenizer.h"
#include "support/r1_vocab.h"
#include "support/temp_dir.h"
#include "support/test_model.h"

using namespace ponder;
using ponder::test::TempDir;
namespace fs = std::filesystem;

namespace {
const std::string kTestdata = std::string(PONDER_SHARED_DIR) + "/testdata/";

// A safetensors file from a header object and the data section.
std::string safetensors_bytes(const nlohmann::json& header, const std::string& data) {
  std::string h = header.dump();
  while ((h.size() + 8) % 8) h += ' ';
  std::string out(8, '\0');
  std::uint64_t n = h.size();
  std::memcpy(out.data(), &n, 8);
  return out + h + data;
}

std::string bf16_bytes(std::initializer_list<float> values) {
  std::string out;
  for (float v : values) {
    std::uint32_t bits;
    std::memcpy(&bits, &v, 4);
    auto b = static_cast<std::uint16_t>(bits >> 16);
    out.append(reinterpret_cast<const char*>(&b), 2);
  }
  return out;
}
}  // namespace

TEST_CASE("safetensors: tensors read in place with their shapes and types", "[model][safetensors]") {
  nlohmann::json h;
  h["__metadata__"] = {{"format", "pt"}};
  h["b"] = {{"dtype", "BF16"}, {"shape", {2, 2}}, {"data_offsets", {0, 8}}};
  h["a"] = {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {8, 12}}};
  float one = 1.0f;
  std::string data = bf16_bytes({1, 2, 3, -4}) + std::string(reinterpret_cast<const char*>(&one), 4);
  std::string bytes = safetensors_bytes(h, data);
  std::string error;
  auto f = safetensors::File::parse(bytes, "t.safetensors", &error);
  INFO(error);
  REQUIRE(f);
  REQUIRE(f->tensors().size() == 2);
  CHECK(f->tensors()[0].name == "a");  // sorted
  const auto* b = f->tensor("b");
  REQUIRE(b);
  CHECK(b->dtype == safetensors::DType::bf16);
  CHECK(b->shape == std::vector<std::uint64_t>{2, 2});
  CHECK(b->bytes == 8);
  CHECK(bf16_to_f32(static_cast<std::uint16_t>(b->data[6] | (b->data[7] << 8))) == -4.0f);
  CHECK(f->metadata().size() == 1);
  CHECK(f->tensor("c") == nullptr);
}

TEST_CASE("safetensors: malformed files get precise errors", "[model][safetensors][bad-input]") {
  auto bad = [](const std::string& bytes, const std::string& expect) {
    std::string error;
    auto f = safetensors::File::parse(bytes, "m.safetensors", &error);
    INFO("expected: " << expect << "\ngot: " << error);
    CHECK(!f);
    CHECK(error.rfind("m.safetensors: ", 0) == 0);
    CHECK(error.find(expect) != std::string::npos);
  };
  auto entry = [](const char* dtype, std::vector<std::uint64_t> shape, std::uint64_t b, std::uint64_t e) {
    return nlohmann::json{{"dtype", dtype}, {"shape", shape}, {"data_offsets", {b, e}}};
  };
  bad("", "shorter than");
  std::string huge(8, '\xff');
  bad(huge, "absurd");
  std::string claims(8, '\0');
  claims[0] = 100;
  bad(claims + "{}", "truncated");
  bad(safetensors_bytes(nlohmann::json::array(), ""), "not a JSON object");
  {
    std::string b = safetensors_bytes(nlohmann::json::object(), "");
    b[8] = '[';
    b[9] = 'x';
    bad(b, "not valid JSON");
  }
  bad(safetensors_bytes({{"w", entry("F32", {4}, 0, 16)}}, std::string(8, '\0')), "lies outside the data section");
  bad(safetensors_bytes({{"w", entry("F32", {4}, 0, 8)}}, std::string(8, '\0')), "shape and dtype need 16");
  bad(safetensors_bytes({{"w", entry("Q9", {4}, 0, 8)}}, std::string(8, '\0')), "unknown dtype 'Q9'");
  bad(safetensors_bytes({{"w", entry("F32", {1ull << 40, 1ull << 40}, 0, 8)}}, std::string(8, '\0')), "overflows");
  bad(safetensors_bytes({{"w", entry("F32", {2}, 0, 8)}, {"v", entry("F32", {2}, 4, 12)}}, std::string(12, '\0')),
      "overlap");
  bad(safetensors_bytes({{"w", {{"dtype", "F32"}, {"shape", {2}}}}}, std::string(8, '\0')), "data_offsets");
  bad(safetensors_bytes({{"w", {{"dtype", "F32"}, {"shape", {-2}}, {"data_offsets", {0, 8}}}}}, std::string(8, '\0')),
      "non-negative");

  // Every truncation of a valid file fails cleanly (or, cut inside the unused tail, reads).
  nlohmann::json h{{"w", entry("BF16", {2, 2}, 0, 8)}};
  std::string good = safetensors_bytes(h, bf16_bytes({1, 2, 3, 4}));
  for (std::size_t n = 0; n < good.size(); ++n) {
    std::string error;
    CHECK(!safetensors::File::parse(std::string_view(good).substr(0, n), "cut", &error));
    CHECK(!error.empty());
  }
  // Flipped bytes anywhere: an error or a file whose every tensor lies inside it.
  for (std::size_t i = 0; i < good.size(); ++i) {
    for (unsigned char x : {0x01, 0x80, 0xff}) {
      std::string b = good;
      b[i] = static_cast<char>(b[i] ^ x);
      std::string error;
      auto f = safetensors::File::parse(b, "flip", &error);
      if (!f) continue;
      for (const auto& t : f->tensors()) {
        CHECK(t.data >= reinterpret_cast<const unsigned char*>(b.data()));
        CHECK(t.data + t.bytes <= reinterpret_cast<const unsigned char*>(b.data()) + b.size());
      }
    }
  }
}

TEST_CASE("a vocabulary-only GGUF is described, and refused as a model", "[model]") {
  const std::string path = kTestdata + "r1_qwen_vocab.gguf";
  std::string error;
  CHECK(!Model::open(path, &error));
  CHECK(error.find("has no tensors") != std::string::npos);

  Model::Options opt;
  opt.require_weights = false;
  auto m = Model::open(path, opt, &error);
  INFO(error);
  REQUIRE(m);
  CHECK(!m->has_weights());
  const ModelConfig& c = m->config();
  CHECK(c.arch == Arch::qwen2);
  CHECK(c.n_embd == 1536);
  CHECK(c.n_ff == 8960);
  CHECK(c.n_layer == 28);
  CHECK(c.n_head == 12);
  CHECK(c.n_head_kv == 2);
  CHECK(c.head_dim == 128);
  CHECK(c.rope.pairing == RopePairing::half);
  CHECK(c.qkv_bias);
  const SpecialTokens& t = m->tokens();
  CHECK(t.bos == 151646);
  CHECK(t.eos == 151643);
  CHECK(t.user == 151644);
  CHECK(t.assistant == 151645);
  CHECK(t.think_open == 151648);
  CHECK(t.think_close == 151649);
  CHECK(t.n_tokens == 151665);  // the rest are llama.cpp's [PAD] rows
  CHECK(std::find(t.end_of_generation.begin(), t.end_of_generation.end(), 151643) != t.end_of_generation.end());
  auto tok = m->load_tokenizer(&error);
  REQUIRE(tok);
  CHECK(tok->encode("Hello world") == std::vector<std::int32_t>{9707, 1879});
  // ... and the tokenizer alone, without describing the model.
  auto tok2 = load_tokenizer(path, &error);
  REQUIRE(tok2);
  CHECK(tok2->vocab_size() == tok->vocab_size());
}

TEST_CASE("the memory estimate: KV cache and the largest context that fits", "[model][memory]") {
  ModelConfig c;  // R1-Distill-Qwen-1.5B
  c.n_embd = 1536, c.n_ff = 8960, c.n_layer = 28, c.n_head = 12, c.n_head_kv = 2, c.head_dim = 128;
  c.n_vocab = 151936, c.max_context = 131072;
  // 2 (K, V) x 28 layers x 2 kv heads x 128 x 2 bytes = 28 KiB per token; 3.76 GB at 128K (MODEL_FACTS).
  CHECK(kv_bytes_per_token(c, KvType::f16) == 28672);
  CHECK(kv_bytes_per_token(c, KvType::f32) == 57344);
  CHECK(kv_bytes_per_token(c, KvType::q8_0) == 28672 / 2 / 32 * 34);
  const std::uint64_t weights = 1'900'000'000;
  MemoryEstimate e = estimate_memory(c, weights, 131072);
  CHECK(e.kv_cache == 3'758'096'384ull);
  CHECK(e.weights == weights);
  CHECK(e.workspace > 0);
  CHECK(e.workspace < 256ull << 20);
  std::string message;
  CHECK(check_memory(c, e, e.total(), &message));
  CHECK(!check_memory(c, e, 4ull << 30, &message));
  CHECK(message.find("needs") != std::string::npos);
  CHECK(message.find("131072 tokens") != std::string::npos);
  CHECK(message.find("the largest context that fits is") != std::string::npos);
  std::uint32_t fits = largest_context(c, weights, 4ull << 30, KvType::f16);
  CHECK(fits % 256 == 0);
  CHECK(fits > 0);
  CHECK(estimate_memory(c, weights, fits).total() <= 4ull << 30);
  CHECK(estimate_memory(c, weights, fits + 256).total() > 4ull << 30);
  CHECK(!check_memory(c, e, 1ull << 30, &message));
  CHECK(message.find("not even the weights fit") != std::string::npos);
  CHECK(largest_context(c, weights, 1ull << 40) == 131072);  // capped by the model
  CHECK(available_memory() > 0);
}

TEST_CASE("the streaming decoder never splits a UTF-8 character", "[tokenizer][stream]") {
  std::string error;
  auto tok = load_tokenizer(kTestdata + "r1_qwen_vocab.gguf", &error);
  REQUIRE(tok);
  const std::string text = "naïve 日本語 👩‍💻 café — ok\n<think>x</think>";
  auto ids = tok->encode(text);
  // Some tokens of this text carry part of a character: the test means something.
  bool partial = false;
  for (auto id : ids) {
    std::string b = tok->token_bytes(id);
    StreamDecoder probe(*tok);
    if (probe.push(id) != b) partial = true;
  }
  CHECK(partial);
  StreamDecoder d(*tok);
  std::string out;
  for (auto id : ids) {
    std::string piece = d.push(id);
    // every piece is valid UTF-8 on its own
    std::size_t i = 0;
    while (i < piece.size()) {
      auto b = static_cast<unsigned char>(piece[i]);
      std::size_t n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
      REQUIRE(i + n <= piece.size());
      for (std::size_t k = 1; k < n; ++k) CHECK((static_cast<unsigned char>(piece[i + k]) & 0xC0) == 0x80);
      i += n;
    }
    out += piece;
  }
  out += d.finish();
  CHECK(out == text);

  // Bytes that never complete become U+FFFD; a sequence cut at the end too.
  std::int32_t e3 = tok->find("\xC3\xA3");  // GPT-2 byte-unicode form of byte 0xE3
  std::int32_t a = tok->find("a");
  REQUIRE(e3 >= 0);
  REQUIRE(a >= 0);
  StreamDecoder d2(*tok);
  CHECK(d2.push(e3).empty());
  CHECK(d2.push(a) == "\xEF\xBF\xBD" "a");
  CHECK(d2.push(e3).empty());
  CHECK(d2.finish() == "\xEF\xBF\xBD");
  CHECK(d2.finish().empty());
}

TEST_CASE("model specs resolve: paths, ollama:, hf:, and what was looked at", "[model][locator]") {
  TempDir dir;
  ModelSearchPaths paths;
  paths.ollama = {(dir.path() / "ollama").string()};
  paths.hf = {(dir.path() / "hf").string()};
  const std::string digest(64, 'a');
  dir.write("ollama/blobs/sha256-" + digest, "GGUF");
  nlohmann::json manifest = {
      {"schemaVersion", 2},
      {"layers",
       {{{"mediaType", "application/vnd.ollama.image.template"}, {"digest", "sha256:" + std::string(64, 'b')}},
        {{"mediaType", "application/vnd.ollama.image.model"}, {"digest", "sha256:" + digest}}}}};
  dir.write("ollama/manifests/registry.ollama.ai/library/deepseek-r1/7b", manifest.dump());
  dir.write("ollama/manifests/registry.ollama.ai/library/deepseek-r1/latest", manifest.dump());
  dir.write("ollama/manifests/hf.co/unsloth/DeepSeek-R1-Distill-Qwen-1.5B-GGUF/Q4_K_M", manifest.dump());
  dir.write("hf/models--deepseek-ai--DeepSeek-R1-Distill-Qwen-7B/refs/main", "0123abc\n");
  dir.write("hf/models--deepseek-ai--DeepSeek-R1-Distill-Qwen-7B/snapshots/0123abc/config.json", "{}");
  dir.write("hf/models--deepseek-ai--DeepSeek-R1-Distill-Qwen-7B/snapshots/fedcba9/config.json", "{}");
  dir.write("plain/model.gguf", "GGUF");
  dir.write("snap/config.json", "{}");
  dir.write("notsnap/readme", "");

  ModelRef ref;
  std::string error;
  CHECK(resolve_model("ollama:deepseek-r1:7b", paths, &ref, &error));
  CHECK(ref.path == (dir.path() / "ollama/blobs" / ("sha256-" + digest)).string());
  CHECK(ref.format == ModelFormat::gguf);
  CHECK(resolve_model("ollama:deepseek-r1", paths, &ref, &error));  // :latest
  CHECK(resolve_model("ollama:hf.co/unsloth/DeepSeek-R1-Distill-Qwen-1.5B-GGUF:Q4_K_M", paths, &ref, &error));
  CHECK(!resolve_model("ollama:deepseek-r1:70b", paths, &ref, &error));
  CHECK(error.find("library/deepseek-r1/70b") != std::string::npos);
  CHECK(error.find("ollama pull deepseek-r1:70b") != std::string::npos);
  CHECK(!resolve_model("ollama:../../etc:passwd", paths, &ref, &error));
  CHECK(error.find("not a model name") != std::string::npos);
  // A manifest whose blob is gone.
  nlohmann::json broken = manifest;
  broken["layers"][1]["digest"] = "sha256:" + std::string(64, 'c');
  dir.write("ollama/manifests/registry.ollama.ai/library/deepseek-r1/1.5b", broken.dump());
  CHECK(!resolve_model("ollama:deepseek-r1:1.5b", paths, &ref, &error));
  CHECK(error.find("is missing") != std::string::npos);

  CHECK(resolve_model("hf:deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", paths, &ref, &error));
  CHECK(ref.format == ModelFormat::snapshot);
  CHECK(fs::path(ref.path).filename() == "0123abc");  // refs/main decides
  CHECK(resolve_model("hf:deepseek-ai/DeepSeek-R1-Distill-Qwen-7B@fedcba9", paths, &ref, &error));
  CHECK(fs::path(ref.path).filename() == "fedcba9");
  CHECK(!resolve_model("hf:deepseek-ai/DeepSeek-R1-Distill-Llama-8B", paths, &ref, &error));
  CHECK(error.find("not in the Hugging Face cache") != std::string::npos);
  CHECK(!resolve_model("hf:nonsense", paths, &ref, &error));

  CHECK(resolve_model((dir.path() / "plain/model.gguf").string(), paths, &ref, &error));
  CHECK(ref.format == ModelFormat::gguf);
  CHECK(resolve_model((dir.path() / "snap").string(), paths, &ref, &error));
  CHECK(ref.format == ModelFormat::snapshot);
  CHECK(!resolve_model((dir.path() / "notsnap").string(), paths, &ref, &error));
  CHECK(error.find("no config.json") != std::string::npos);
  CHECK(!resolve_model((dir.path() / "nothing.gguf").string(), paths, &ref, &error));
  CHECK(error.find("no such file") != std::string::npos);

  // The order of DESIGN.md: --model, the editor, .ponder.json, $PONDER_MODEL.
  ModelChoice choice;
  choice.environment = "ollama:deepseek-r1:7b";
  choice.config_file = (dir.path() / "snap").string();
  CHECK(choose_model(choice, paths, 4096, 1ull << 40, &ref, &error));
  CHECK(ref.format == ModelFormat::snapshot);
  choice.lsp = "ollama:deepseek-r1:7b";
  CHECK(choose_model(choice, paths, 4096, 1ull << 40, &ref, &error));
  CHECK(ref.format == ModelFormat::gguf);
  choice.command_line = "hf:deepseek-ai/nope";
  CHECK(!choose_model(choice, paths, 4096, 1ull << 40, &ref, &error));
  CHECK(error.find("(the model named by --model)") != std::string::npos);

  // Nothing named and nothing found: a message that says what to do.
  ModelSearchPaths empty;
  empty.ollama = {(dir.path() / "none").string()};
  CHECK(!choose_model(ModelChoice{}, empty, 4096, 1ull << 40, &ref, &error));
  CHECK(error.find("no model found") != std::string::npos);
  CHECK(error.find("--model") != std::string::npos);
}

TEST_CASE(".ponder.json names the model", "[model][locator]") {
  TempDir dir;
  std::string model, error;
  CHECK(read_config_model(dir.str(), &model, &error));
  CHECK(model.empty());
  dir.write(".ponder.json", R"({"model": "ollama:deepseek-r1:14b", "context": 32768})");
  CHECK(read_config_model(dir.str(), &model, &error));
  CHECK(model == "ollama:deepseek-r1:14b");
  dir.write(".ponder.json", R"({"model": "models/r1.gguf"})");
  CHECK(read_config_model(dir.str(), &model, &error));
  CHECK(model == (dir.path() / "models/r1.gguf").string());
  dir.write(".ponder.json", R"({"model": 7})");
  CHECK(!read_config_model(dir.str(), &model, &error));
  CHECK(error.find("must be a string") != std::string::npos);
  dir.write(".ponder.json", "{ nope");
  CHECK(!read_config_model(dir.str(), &model, &error));
  CHECK(error.find(".ponder.json: not a valid JSON object") != std::string::npos);
}

TEST_CASE("search paths honour OLLAMA_MODELS and the Hugging Face variables", "[model][locator]") {
  ::setenv("OLLAMA_MODELS", "/srv/ollama", 1);
  ::setenv("HF_HUB_CACHE", "/srv/hf", 1);
  auto p = ModelSearchPaths::from_environment();
  ::unsetenv("OLLAMA_MODELS");
  ::unsetenv("HF_HUB_CACHE");
  REQUIRE(!p.ollama.empty());
  CHECK(p.ollama[0] == "/srv/ollama");
  CHECK(std::find(p.ollama.begin(), p.ollama.end(), "/usr/share/ollama/.ollama/models") != p.ollama.end());
  REQUIRE(!p.hf.empty());
  CHECK(p.hf[0] == "/srv/hf");
}

// --- with generated models ------------------------------------------------------------------


namespace {
using ponder::test::ReducedVocab;
using ponder::test::TestModelSpec;

const GgmlType kAllTypes[] = {GgmlType::f32, GgmlType::f16, GgmlType::bf16, GgmlType::q8_0,
                              GgmlType::q4_0, GgmlType::q4_k, GgmlType::q5_k, GgmlType::q6_k};

std::vector<float> values_of(const Weight& w) {
  std::vector<float> v(w.elements());
  std::string error;
  REQUIRE(dequantize(w.type, w.data, v.data(), v.size(), &error));
  return v;
}

// The description of any generated model matches its spec.
void check_description(const Model& m, const TestModelSpec& s) {
  const ModelConfig& c = m.config();
  CHECK(c.arch == s.arch);
  CHECK(c.n_embd == s.n_embd);
  CHECK(c.n_ff == s.n_ff);
  CHECK(c.n_layer == s.n_layer);
  CHECK(c.n_head == s.n_head);
  CHECK(c.n_head_kv == s.n_head_kv);
  CHECK(c.head_dim == s.head_dim);
  CHECK(c.n_vocab == ReducedVocab::n_rows);
  CHECK(c.max_context == s.max_context);
  CHECK(c.rope.theta == Approx(s.rope_theta));
  CHECK(c.rms_eps == Approx(s.rms_eps));
  CHECK(c.qkv_bias == (s.arch == Arch::qwen2));
  CHECK(c.qk_norm == (s.arch == Arch::qwen3));
  CHECK(c.rope.scaling == (s.llama3_scaling ? RopeScaling::llama3 : s.yarn.factor > 0 ? RopeScaling::yarn : RopeScaling::none));
  CHECK(!c.tied_embeddings);
  const SpecialTokens& t = m.tokens();
  CHECK(t.bos == ReducedVocab::bos);
  CHECK(t.eos == ReducedVocab::eos);
  CHECK(t.user == ReducedVocab::user);
  CHECK(t.assistant == ReducedVocab::assistant);
  CHECK(t.think_open == ReducedVocab::think_open);
  CHECK(t.think_close == ReducedVocab::think_close);
  CHECK(t.n_tokens == ReducedVocab::n_tokens);
  CHECK(m.generation().from_file);
  CHECK(m.generation().temperature == Approx(0.6));
  CHECK(m.generation().top_p == Approx(0.95));
  CHECK(m.has_weights());
  std::uint64_t bytes = 0;
  for (const auto& [name, w] : m.named_weights()) bytes += w->bytes;
  CHECK(m.weight_bytes() == bytes);
  // A decode step reads one row of the (untied) embedding table.
  const ponder::Weight& e = m.weights().tok_embd;
  CHECK(m.decode_weight_bytes() == bytes - e.bytes + e.bytes / e.rows());
  CHECK(m.weights().layers.size() == s.n_layer);
}
}  // namespace

TEST_CASE("generated GGUF models of every type and architecture are described", "[model][generated]") {
  TempDir dir;
  for (Arch arch : {Arch::qwen2, Arch::qwen3, Arch::llama}) {
    const TestModelSpec s = TestModelSpec::like_r1(arch);
    for (GgmlType type : kAllTypes) {
      const std::string name = std::string(arch_name(arch)) + "-" + std::string(ggml_type_info(static_cast<std::uint32_t>(type))->name);
      INFO(name);
      const std::string path = (dir.path() / (name + ".gguf")).string();
      std::string error;
      REQUIRE(ponder::test::write_gguf(s, type, path, &error));
      auto m = Model::open(path, &error);
      INFO(error);
      REQUIRE(m);
      CHECK(m->format() == ModelFormat::gguf);
      check_description(*m, s);
      CHECK(m->config().rope.pairing == (arch == Arch::llama ? RopePairing::adjacent : RopePairing::half));
      CHECK(m->weights().layers[1].wq.type == type);
      CHECK(m->weights().layers[1].attn_norm.type == GgmlType::f32);
      CHECK(m->weights().rope_freqs.present() == (arch == Arch::llama));
      auto tok = m->load_tokenizer(&error);
      REQUIRE(tok);
      CHECK(tok->encode("<think> the") == std::vector<std::int32_t>{ReducedVocab::think_open, 279});
    }
  }
  // Q4_K_M mixes types as llama-quantize does; the name says so.
  std::string error;
  const std::string path = (dir.path() / "km.gguf").string();
  REQUIRE(ponder::test::write_gguf(TestModelSpec::like_r1(Arch::qwen2), GgmlType::q4_k, path, &error, true));
  auto m = Model::open(path, &error);
  REQUIRE(m);
  CHECK(m->file_type() == "Q4_K_M");
  CHECK(m->weights().output.type == GgmlType::q6_k);
}

TEST_CASE("generated snapshots (one shard or several) are described", "[model][generated]") {
  TempDir dir;
  for (Arch arch : {Arch::qwen2, Arch::qwen3, Arch::llama}) {
    for (std::uint32_t shards : {1u, 3u}) {
      const TestModelSpec s = TestModelSpec::like_r1(arch);
      const std::string path = (dir.path() / (std::string(arch_name(arch)) + std::to_string(shards))).string();
      INFO(path);
      std::string error;
      REQUIRE(ponder::test::write_snapshot(s, path, shards, &error));
      auto m = Model::open(path, &error);
      INFO(error);
      REQUIRE(m);
      CHECK(m->format() == ModelFormat::snapshot);
      check_description(*m, s);
      CHECK(m->config().rope.pairing == RopePairing::half);
      CHECK(m->file_type() == "BF16");
      if (arch == Arch::llama) {
        CHECK(m->config().rope.factor == 8);
        CHECK(m->config().rope.low_freq_factor == 1);
        CHECK(m->config().rope.high_freq_factor == 4);
        CHECK(m->config().rope.original_context == 8192);
      }
      CHECK(m->weights().layers[0].wq.type == GgmlType::bf16);
      auto tok = m->load_tokenizer(&error);
      REQUIRE(tok);
      CHECK(tok->find("<think>") == ReducedVocab::think_open);
    }
  }
}

TEST_CASE("YaRN parameters are read from GGUF keys and from config.json's rope_scaling", "[model][generated]") {
  TempDir dir;
  struct Case {
    TestModelSpec::Yarn yarn;
    double beta_fast, beta_slow, attention_factor;  // what ModelConfig must hold
  };
  // Qwen2.5's recommended setting (the optional parameters absent: their defaults, the attention
  // factor 0 for "0.1 ln(factor) + 1"), then every parameter given.
  const Case cases[] = {{{4, 32768, 0, 0, 0}, 32, 1, 0}, {{8, 512, 16, 2, 1.25}, 16, 2, 1.25}};
  for (const Case& k : cases) {
    TestModelSpec s = TestModelSpec::like_r1(Arch::qwen3);
    s.yarn = k.yarn;
    const std::string g = (dir.path() / "m.gguf").string(), snap = (dir.path() / "snap").string();
    std::string error;
    REQUIRE(ponder::test::write_gguf(s, GgmlType::f32, g, &error));
    REQUIRE(ponder::test::write_snapshot(s, snap, 1, &error));
    for (const std::string& path : {g, snap}) {
      INFO(path << ", factor " << k.yarn.factor);
      auto m = Model::open(path, &error);
      INFO(error);
      REQUIRE(m);
      check_description(*m, s);
      const RopeConfig& r = m->config().rope;
      CHECK(r.factor == k.yarn.factor);
      CHECK(r.original_context == k.yarn.original_context);
      CHECK(r.beta_fast == k.beta_fast);
      CHECK(r.beta_slow == k.beta_slow);
      CHECK(r.attention_factor == k.attention_factor);
    }
  }
  // transformers' spelling ("rope_type"), with null for "the default".
  const std::string snap = (dir.path() / "snap").string();
  nlohmann::json config = nlohmann::json::parse(ponder::test::read_file(snap + "/config.json"));
  config["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 2.0}, {"original_max_position_embeddings", 4096},
                            {"beta_fast", nullptr}, {"beta_slow", 1.5}, {"attention_factor", nullptr}};
  dir.write("snap/config.json", config.dump());
  std::string error;
  auto m = Model::open(snap, &error);
  INFO(error);
  REQUIRE(m);
  const RopeConfig& r = m->config().rope;
  CHECK(r.scaling == RopeScaling::yarn);
  CHECK(r.factor == 2);
  CHECK(r.original_context == 4096);
  CHECK(r.beta_fast == 32);
  CHECK(r.beta_slow == 1.5);
  CHECK(r.attention_factor == 0);
}

TEST_CASE("GGUF and snapshot of the same model hold the same tensors", "[model][generated]") {
  TempDir dir;
  for (Arch arch : {Arch::qwen2, Arch::qwen3, Arch::llama}) {
    const TestModelSpec s = TestModelSpec::like_r1(arch);
    std::string error;
    const std::string snap_path = (dir.path() / (std::string(arch_name(arch)) + "-snap")).string();
    REQUIRE(ponder::test::write_snapshot(s, snap_path, 2, &error));
    auto snap = Model::open(snap_path, &error);
    REQUIRE(snap);
    for (GgmlType type : kAllTypes) {
      const std::string tname(ggml_type_info(static_cast<std::uint32_t>(type))->name);
      const std::string path = (dir.path() / (std::string(arch_name(arch)) + "-" + tname + ".gguf")).string();
      REQUIRE(ponder::test::write_gguf(s, type, path, &error));
      auto g = Model::open(path, &error);
      REQUIRE(g);
      // The largest relative RMS error quantization may cause; a transposed or mis-permuted
      // tensor is off by ~1.4.
      double tolerance = 0;
      switch (type) {
        case GgmlType::f32: case GgmlType::bf16: tolerance = 0; break;
        case GgmlType::f16: tolerance = 1e-3; break;
        case GgmlType::q8_0: tolerance = 0.01; break;
        case GgmlType::q6_k: tolerance = 0.03; break;
        case GgmlType::q5_k: tolerance = 0.05; break;
        default: tolerance = 0.12; break;
      }
      auto from_snapshot = snap->named_weights();
      auto from_gguf = g->named_weights();
      std::size_t compared = 0;
      for (const auto& [name, gw] : from_gguf) {
        INFO(arch_name(arch) << " " << tname << " " << name);
        if (name == "rope_freqs.weight") continue;  // GGUF only: llama3 scaling as a tensor
        auto it = std::find_if(from_snapshot.begin(), from_snapshot.end(), [&](auto& p) { return p.first == name; });
        REQUIRE(it != from_snapshot.end());
        const Weight& sw = *it->second;
        REQUIRE(gw->n_dims == sw.n_dims);
        for (int d = 0; d < 4; ++d) REQUIRE(gw->ne[d] == sw.ne[d]);
        std::vector<float> want = values_of(sw);
        // GGUF llama holds Q and K with their rows permuted for adjacent-pair RoPE.
        if (arch == Arch::llama && (name.find("attn_q.weight") != std::string::npos ||
                                    name.find("attn_k.weight") != std::string::npos)) {
          const std::uint32_t heads = name.find("attn_q") != std::string::npos ? s.n_head : s.n_head_kv;
          want = ponder::test::permute_qk_for_gguf(want, sw.ne[0], heads);
        }
        std::vector<float> got = values_of(*gw);
        double err = 0, norm = 0;
        for (std::size_t i = 0; i < want.size(); ++i) {
          err += (got[i] - want[i]) * double(got[i] - want[i]);
          norm += want[i] * double(want[i]);
        }
        const double rel = norm > 0 ? std::sqrt(err / norm) : std::sqrt(err);
        if (gw->type == GgmlType::f32 || gw->type == GgmlType::bf16) CHECK(got == want);
        else CHECK(rel <= tolerance);
        ++compared;
      }
      CHECK(compared == from_snapshot.size());
    }
  }
}

namespace {
// Overwrites the value bytes after a GGUF key (which must be unique in the file).
void patch_after(std::string* bytes, std::string_view key, std::size_t skip, const void* value, std::size_t n) {
  std::size_t at = bytes->find(key);
  REQUIRE(at != std::string::npos);
  std::memcpy(bytes->data() + at + key.size() + skip, value, n);
}
std::string expect_error(const TempDir& dir, const std::string& bytes) {
  const std::string path = dir.write("bad.gguf", bytes).string();
  std::string error;
  auto m = Model::open(path, &error);
  CHECK(!m);
  CHECK(error.rfind(path + ": ", 0) == 0);
  return error;
}
}  // namespace

TEST_CASE("models that do not fit their architecture get precise errors", "[model][generated][bad-input]") {
  TempDir dir;
  std::string error;
  const std::string good_path = (dir.path() / "good.gguf").string();
  REQUIRE(ponder::test::write_gguf(TestModelSpec::like_r1(Arch::qwen2), GgmlType::q8_0, good_path, &error));
  const std::string good = ponder::test::read_file(good_path);

  {  // more layers than tensors
    std::string b = good;
    std::uint32_t v = 3;
    patch_after(&b, "qwen2.block_count", 4, &v, 4);
    CHECK(expect_error(dir, b).find("tensor 'blk.2.attn_norm.weight' is missing (qwen2 needs it)") != std::string::npos);
  }
  {  // absurd counts are refused before anything is allocated
    std::string b = good;
    std::uint32_t v = 0x7fffffff;
    patch_after(&b, "qwen2.block_count", 4, &v, 4);
    CHECK(expect_error(dir, b).find("qwen2.block_count = 2147483647 is out of range") != std::string::npos);
  }
  {  // a width that the tensors do not have
    std::string b = good;
    std::uint32_t v = 512;
    patch_after(&b, "qwen2.embedding_length", 4, &v, 4);
    CHECK(expect_error(dir, b).find("has shape [256, 768]; qwen2 with these hyperparameters needs [512, 768]") !=
          std::string::npos);
  }
  {  // heads that do not divide
    std::string b = good;
    std::uint32_t v = 3;
    patch_after(&b, "qwen2.attention.head_count_kv", 4, &v, 4);
    CHECK(expect_error(dir, b).find("heads do not divide") != std::string::npos);
  }
  {  // an architecture ponder does not run
    std::string b = good;
    std::size_t at = b.find("qwen2", b.find("general.architecture"));
    b.replace(at, 5, "gemma");
    CHECK(expect_error(dir, b).find("architecture 'gemma' is not supported") != std::string::npos);
  }
  {  // a weight of a type ponder cannot multiply: Q8_0 (34 bytes / 32) relabelled Q5_1 (24 / 32)
    std::string b = good;
    std::string key = "blk.1.ffn_up.weight";
    std::uint32_t q5_1 = 7;
    patch_after(&b, key, 4 + 2 * 8, &q5_1, 4);
    CHECK(expect_error(dir, b).find("blk.1.ffn_up.weight' is of type q5_1, which ponder cannot compute with") !=
          std::string::npos);
  }
  {  // a missing bias (qwen2 needs it): rename the tensor
    std::string b = good;
    std::size_t at = b.find("blk.0.attn_k.bias");
    b.replace(at, 17, "blk.0.attn_k.xxxx");
    CHECK(expect_error(dir, b).find("'blk.0.attn_k.bias' is missing") != std::string::npos);
  }
  // Flipped bytes in the header's start and in the tensor directory (just before the data):
  // an error naming the file, or a model whose every weight lies inside the file.
  {
    auto parsed = gguf::File::parse(good, "good", &error);
    REQUIRE(parsed);
    const std::size_t data_start =
        static_cast<std::size_t>(parsed->tensors()[0].data - reinterpret_cast<const unsigned char*>(good.data()));
    std::vector<std::size_t> where;
    for (std::size_t i = 0; i < 96; ++i) where.push_back(i);
    for (std::size_t i = data_start > 2400 ? data_start - 2400 : 0; i < data_start; i += 3) where.push_back(i);
    const std::string path = (dir.path() / "flip.gguf").string();
    std::size_t opened = 0;
    for (std::size_t i : where) {
      std::string b = good;
      b[i] = static_cast<char>(b[i] ^ 0x5a);
      dir.write("flip.gguf", b);
      auto m = Model::open(path, &error);
      if (!m) {
        CHECK(error.rfind(path + ": ", 0) == 0);
        continue;
      }
      ++opened;  // a flip in a name or a value that still makes sense
      for (const auto& [name, w] : m->named_weights()) CHECK(w->bytes <= good.size());
    }
    CHECK(opened < where.size());
  }
  // Every truncation fails cleanly, with the file named.
  for (std::size_t n = 0; n < good.size(); n += (n < 8192 ? 61 : 4099)) {
    std::string cut = good.substr(0, n);
    const std::string path = dir.write("cut.gguf", cut).string();
    CHECK(!Model::open(path, &error));
    CHECK(error.rfind(path, 0) == 0);
  }

  // Snapshots: a config that does not match, a shard that is missing, a dtype ponder cannot use.
  const std::string snap = (dir.path() / "snap").string();
  REQUIRE(ponder::test::write_snapshot(TestModelSpec::like_r1(Arch::qwen3), snap, 2, &error));
  const std::string config = ponder::test::read_file(snap + "/config.json");
  auto cfg = nlohmann::json::parse(config);
  cfg["intermediate_size"] = 768;
  dir.write("snap/config.json", cfg.dump());
  CHECK(!Model::open(snap, &error));
  CHECK(error.find("model.layers.0.mlp.gate_proj.weight' has shape [256, 512]; qwen3 with these hyperparameters needs [256, 768]") !=
        std::string::npos);
  cfg["intermediate_size"] = 512;
  cfg["num_hidden_layers"] = -1;
  dir.write("snap/config.json", cfg.dump());
  CHECK(!Model::open(snap, &error));
  CHECK(error.find("config.json: no num_hidden_layers") != std::string::npos);
  cfg["num_hidden_layers"] = 2;
  cfg["model_type"] = "mistral";
  dir.write("snap/config.json", cfg.dump());
  CHECK(!Model::open(snap, &error));
  CHECK(error.find("model_type 'mistral' is not supported") != std::string::npos);
  dir.write("snap/config.json", "{\"model_type\": \"qwen3\", ");
  CHECK(!Model::open(snap, &error));
  CHECK(error.find("config.json: not a valid JSON object") != std::string::npos);
  dir.write("snap/config.json", config);
  REQUIRE(Model::open(snap, &error));
  fs::remove(fs::path(snap) / "model-00002-of-00002.safetensors");
  CHECK(!Model::open(snap, &error));
  CHECK(error.find("model-00002-of-00002.safetensors: ") != std::string::npos);
}

TEST_CASE("a model with the real R1-Qwen vocabulary: GGUF and tokenizer.json agree", "[model][generated][tokenizer]") {
  TempDir dir;
  std::string error;
  const std::string json = (dir.path() / "tokenizer.json").string();
  REQUIRE(ponder::test::write_r1_qwen_tokenizer_json(json, &error));
  TestModelSpec s;
  s.n_layer = 1;
  s.tokenizer_json = json;
  s.n_vocab = 151936;
  const std::string path = (dir.path() / "real-vocab.gguf").string();
  REQUIRE(ponder::test::write_gguf(s, GgmlType::q4_0, path, &error));
  auto m = Model::open(path, &error);
  INFO(error);
  REQUIRE(m);
  CHECK(m->config().n_vocab == 151936);
  CHECK(m->tokens().bos == 151646);
  CHECK(m->tokens().eos == 151643);
  CHECK(m->tokens().think_open == 151648);
  CHECK(m->tokens().think_close == 151649);
  CHECK(m->tokens().n_tokens == 151665);
  auto from_gguf = m->load_tokenizer(&error);
  auto from_json = Tokenizer::from_json_file(json, &error);
  REQUIRE(from_gguf);
  REQUIRE(from_json);
  for (const auto& v : ponder::test::load_tokenizer_vectors(kTestdata + "tokenizer_vectors/deepseek-r1-qwen")) {
    INFO(v.text);
    CHECK(from_gguf->encode(v.text) == v.ids);
    CHECK(from_json->encode(v.text) == v.ids);
  }
}

TEST_CASE("models in an Ollama store and the Hugging Face cache are found and chosen", "[model][generated][locator]") {
  TempDir dir;
  std::string error;
  ModelSearchPaths paths;
  paths.ollama = {(dir.path() / "ollama").string()};
  paths.hf = {(dir.path() / "hf").string()};
  // Two GGUF blobs (a bigger and a smaller model), tagged as Ollama's manifests do.
  TestModelSpec big = TestModelSpec::like_r1(Arch::qwen2), small = TestModelSpec::like_r1(Arch::qwen2);
  big.n_layer = 4;
  fs::create_directories(dir.path() / "ollama/blobs");
  const std::string big_digest(64, '1'), small_digest(64, '2');
  REQUIRE(ponder::test::write_gguf(big, GgmlType::q8_0, (dir.path() / "ollama/blobs" / ("sha256-" + big_digest)).string(), &error));
  REQUIRE(ponder::test::write_gguf(small, GgmlType::q4_k, (dir.path() / "ollama/blobs" / ("sha256-" + small_digest)).string(), &error, true));
  auto manifest = [](const std::string& digest) {
    return nlohmann::json{{"schemaVersion", 2},
                          {"mediaType", "application/vnd.docker.distribution.manifest.v2+json"},
                          {"layers",
                           {{{"mediaType", "application/vnd.ollama.image.model"}, {"digest", "sha256:" + digest}, {"size", 1}},
                            {{"mediaType", "application/vnd.ollama.image.params"}, {"digest", "sha256:" + std::string(64, '9')}}}}}
        .dump();
  };
  dir.write("ollama/manifests/registry.ollama.ai/library/deepseek-r1/14b", manifest(big_digest));
  dir.write("ollama/manifests/registry.ollama.ai/library/deepseek-r1/latest", manifest(small_digest));
  dir.write("ollama/manifests/registry.ollama.ai/library/deepseek-r1/7b", manifest(small_digest));
  dir.write("ollama/manifests/registry.ollama.ai/library/llama3/latest", manifest(small_digest));  // not R1
  dir.write("ollama/manifests/registry.ollama.ai/library/deepseek-r1/broken", "{");
  // A snapshot in the Hugging Face cache.
  const std::string snap = "hf/models--deepseek-ai--DeepSeek-R1-Distill-Llama-8B/snapshots/abc123";
  REQUIRE(ponder::test::write_snapshot(TestModelSpec::like_r1(Arch::llama), (dir.path() / snap).string(), 1, &error));
  dir.write("hf/models--deepseek-ai--DeepSeek-R1-Distill-Llama-8B/refs/main", "abc123");

  std::vector<std::string> problems;
  auto found = find_models(paths, &problems);
  REQUIRE(found.size() == 3);
  CHECK(found[0].name == "deepseek-r1:14b");  // largest first
  CHECK(found[0].type == "Q8_0");
  CHECK(found[0].arch == "qwen2");
  CHECK(found[0].ref.spec == "ollama:deepseek-r1:14b");
  CHECK(found[0].parameters > found[1].parameters);
  auto small_one = std::find_if(found.begin(), found.end(), [](auto& f) { return f.type == "Q4_K_M"; });
  REQUIRE(small_one != found.end());
  CHECK(small_one->name == "deepseek-r1:7b, deepseek-r1:latest");  // one blob, two tags
  auto llama = std::find_if(found.begin(), found.end(), [](auto& f) { return f.arch == "llama"; });
  REQUIRE(llama != found.end());
  CHECK(llama->ref.spec == "hf:deepseek-ai/DeepSeek-R1-Distill-Llama-8B");
  CHECK(llama->type == "BF16");
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("deepseek-r1/broken: not a valid Ollama manifest") != std::string::npos);

  // Nothing named: the largest that fits.
  ModelRef ref;
  REQUIRE(choose_model(ModelChoice{}, paths, 4096, 1ull << 40, &ref, &error));
  CHECK(ref.spec == "ollama:deepseek-r1:14b");
  const std::uint64_t big_need = estimate_memory(found[0].config, found[0].bytes, 4096).total();
  REQUIRE(choose_model(ModelChoice{}, paths, 4096, big_need - 1, &ref, &error));
  CHECK(ref.spec != "ollama:deepseek-r1:14b");
  CHECK(!choose_model(ModelChoice{}, paths, 4096, 1000, &ref, &error));
  CHECK(error.find("none of the 3 R1 distills found fits") != std::string::npos);

  // ollama: resolves to the blob, which opens as a model.
  REQUIRE(resolve_model("ollama:deepseek-r1:14b", paths, &ref, &error));
  auto m = Model::open(ref.path, &error);
  REQUIRE(m);
  CHECK(m->config().n_layer == 4);
}
