#pragma once
// How many tokens a piece of text costs in a prompt. The repo map and the prompt builder cut
// their output to a budget measured by one of these; the engine's tokenizer plugs in here.
#include <cstddef>
#include <string_view>

#include "engine/tokenizer.h"

namespace ponder::agent {

class TokenCounter {
 public:
  virtual ~TokenCounter() = default;
  /// Tokens `text` would take. Must be thread-safe.
  virtual std::size_t count(std::string_view text) const = 0;
};

/// An estimate from the byte count: source code averages about 3.6 bytes per token with the
/// Qwen and Llama 3 vocabularies; this rounds up so that budgets are rarely exceeded.
class ByteEstimateCounter final : public TokenCounter {
 public:
  std::size_t count(std::string_view text) const override { return (text.size() * 10 + 35) / 36; }
};

/// Exact counts: the model's own tokenizer (text only: special tokens are not recognised).
class TokenizerCounter final : public TokenCounter {
 public:
  explicit TokenizerCounter(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  std::size_t count(std::string_view text) const override { return tokenizer_.encode(text, false).size(); }

 private:
  const Tokenizer& tokenizer_;
};

}  // namespace ponder::agent
