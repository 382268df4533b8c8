#pragma once
// Byte-level BPE tokenizer for the R1 distills (Qwen2 vocabulary; Llama 3 vocabulary), built from
// a GGUF file's tokenizer.ggml.* keys.
//
// Encoding: added/special tokens are matched whole first; the text between them is normalised
// to NFC (utf8proc), split by the pre-tokenizer rule the file names (tokenizer.ggml.pre), mapped
// through GPT-2's byte-to-unicode table and merged by rank. Thread-safe after construction.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ponder {
namespace gguf {
class File;
}

/// The split rules of the supported vocabularies (the regexes of MODEL_FACTS.md).
enum class PreTokenizer {
  qwen2,   // ... |\p{N}| ...       (tokenizer.ggml.pre "qwen2", "deepseek-r1-qwen")
  llama3,  // ... |\p{N}{1,3}| ...  (tokenizer.ggml.pre "llama-bpe", "llama3")
};

class Tokenizer {
 public:
  /// Builds the tokenizer from GGUF metadata (tokenizer.ggml.model must be "gpt2"). Null with
  /// `error` set when keys are missing, inconsistent, or the pre-tokenizer is unknown.
  static std::unique_ptr<Tokenizer> from_gguf(const gguf::File& file, std::string* error);

  /// Builds the tokenizer from a Hugging Face `tokenizer.json` (model BPE, byte-level, the
  /// split regex of one of the supported rules). Null with `error` set otherwise.
  static std::unique_ptr<Tokenizer> from_json_file(const std::string& path, std::string* error);

  /// Token ids for `text`. Special tokens in the text are recognised when `special` is true.
  std::vector<std::int32_t> encode(std::string_view text, bool special = true) const;
  /// The bytes of the ids' tokens concatenated (special tokens as their text). Ids out of range
  /// are skipped.
  std::string decode(const std::vector<std::int32_t>& ids) const;
  /// The text of one token (bytes, possibly an incomplete UTF-8 sequence).
  std::string token_bytes(std::int32_t id) const;

  std::size_t vocab_size() const { return tokens_.size(); }
  PreTokenizer pre_tokenizer() const { return pre_; }
  /// The id of a token given in its stored form, or -1.
  std::int32_t find(std::string_view token) const;

  /// Splits `text` (already NFC) into pre-tokens by the rule `pre` (exposed for tests).
  static std::vector<std::string_view> split(std::string_view text, PreTokenizer pre);

 private:
  Tokenizer() = default;
  static std::unique_ptr<Tokenizer> from_json_checked(const std::string& path, std::string* error);
  void encode_piece(std::string_view piece, std::vector<std::int32_t>* out) const;

  /// Shared by both constructors: byte tokens, specials order, merge table.
  bool finish_setup(const std::vector<std::pair<std::string, std::string>>& merges, std::string* error);

  PreTokenizer pre_ = PreTokenizer::qwen2;
  bool nfc_ = true;            // normalise to NFC first
  bool ignore_merges_ = false;  // a piece that is a whole token is taken as is (Llama 3)
  std::vector<std::string> tokens_;                          // stored (byte-unicode) form
  std::unordered_map<std::string_view, std::int32_t> ids_;   // views tokens_
  std::unordered_map<std::uint64_t, std::uint32_t> merge_rank_;  // (left id << 32 | right id)
  std::vector<std::string> specials_;                        // matched whole, longest first
  std::vector<std::int32_t> special_ids_;
  std::vector<bool> is_special_;
  bool special_first_byte_[256] = {};                        // bytes a special token starts with
  std::int32_t byte_token_[256] = {};                        // id of each single byte's token
};

/// Turns ids into text as they are generated, one token at a time, without ever emitting a
/// broken UTF-8 sequence: the bytes of a character split across tokens are held back until the
/// token that completes it arrives. Invalid bytes (a sequence that can never complete) come out
/// as U+FFFD, as Hugging Face's decoder does.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  /// The text that token `id` completes (possibly empty).
  std::string push(std::int32_t id);
  /// The end of the stream: what is still held back (an incomplete sequence, as U+FFFD).
  std::string finish();

 private:
  const Tokenizer& tokenizer_;
  std::string held_;  // bytes of an unfinished UTF-8 sequence
};

}  // namespace ponder
