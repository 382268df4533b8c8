#pragma once
// The DeepSeek-R1 chat template, rendered without a template engine, and the streaming splitter
// that separates the model's reasoning from its answer (MODEL_FACTS.md, "Chat template").
#include <string>
#include <string_view>
#include <vector>

namespace ponder {

struct ChatMessage {
  enum class Role { system, user, assistant } role;
  std::string content;
};

/// A piece of the rendered template: one of its control tokens, or message text (which must be
/// tokenized with special tokens *not* recognised, so that text cannot forge control tokens).
struct ChatPiece {
  std::string_view text;  // views the messages or static storage
  bool control;
};
/// The template as pieces, in order (render_r1_chat is their concatenation).
std::vector<ChatPiece> r1_chat_pieces(const std::vector<ChatMessage>& messages, bool generation_prompt = true);

/// `<｜begin▁of▁sentence｜>` + system text (no separator) + for each turn `<｜User｜>text` or
/// `<｜Assistant｜>answer<｜end▁of▁sentence｜>` (an assistant turn keeps only what follows its
/// last `</think>`), then, with `generation_prompt`, `<｜Assistant｜><think>\n`.
std::string render_r1_chat(const std::vector<ChatMessage>& messages, bool generation_prompt = true);

/// Splits generated text into reasoning and answer as it streams in, token by token.
///
/// The template already emits `<think>\n`, so output starts inside the reasoning; an explicit
/// `<think>` at the start is dropped. `</think>` ends the reasoning (whitespace after it is not
/// part of the answer), also when it arrives split across tokens: text that could be the start
/// of a tag is held back until it is decided. When the output ends without `</think>`, the model
/// skipped (or never finished) its reasoning: finish() reports everything as the answer and
/// `closed()` stays false, so a caller that streamed it as reasoning can re-file it.
class ReasoningSplitter {
 public:
  struct Delta {
    std::string reasoning;  // new reasoning text
    std::string answer;     // new answer text
  };
  /// Feeds the next piece of decoded text; returns what is now certain.
  Delta feed(std::string_view text);
  /// The end of the output: releases what was held back.
  Delta finish();

  bool in_answer() const { return state_ == State::answer; }
  bool closed() const { return saw_close_; }
  /// Everything so far (after finish(): the final split).
  const std::string& reasoning() const { return reasoning_; }
  const std::string& answer() const { return answer_; }

 private:
  enum class State { start, reasoning, after_close, answer };
  State state_ = State::start;
  bool saw_close_ = false;
  std::string pending_;  // held back: might be (part of) a tag or whitespace after `</think>`
  std::string reasoning_, answer_;
};

}  // namespace ponder
