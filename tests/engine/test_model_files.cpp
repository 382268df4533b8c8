// safetensors, the model description from GGUF and snapshots, finding models, the memory
// estimate, and the streaming decoder.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/model_locator.h"
#include "engine/safetensors.h"
#include "engine/tokenizer.h"
#include "support/temp_dir.h"

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
