#include "engine/chat.h"

namespace ponder {
namespace {
constexpr std::string_view kBos = "<｜begin▁of▁sentence｜>";
constexpr std::string_view kEos = "<｜end▁of▁sentence｜>";
constexpr std::string_view kUser = "<｜User｜>";
constexpr std::string_view kAssistant = "<｜Assistant｜>";
constexpr std::string_view kOpen = "<think>";
constexpr std::string_view kClose = "</think>";

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// Length of the longest suffix of `s` that is a proper prefix of `tag`.
std::size_t partial_suffix(std::string_view s, std::string_view tag) {
  for (std::size_t n = std::min(s.size(), tag.size() - 1); n > 0; --n)
    if (s.substr(s.size() - n) == tag.substr(0, n)) return n;
  return 0;
}
}  // namespace

std::vector<ChatPiece> r1_chat_pieces(const std::vector<ChatMessage>& messages, bool generation_prompt) {
  std::vector<ChatPiece> out{{kBos, true}};
  for (const ChatMessage& m : messages)
    if (m.role == ChatMessage::Role::system) out.push_back({m.content, false});
  for (const ChatMessage& m : messages) {
    switch (m.role) {
      case ChatMessage::Role::system:
        break;
      case ChatMessage::Role::user:
        out.push_back({kUser, true});
        out.push_back({m.content, false});
        break;
      case ChatMessage::Role::assistant: {
        std::string_view answer = m.content;
        std::size_t close = answer.rfind(kClose);
        if (close != std::string_view::npos) answer.remove_prefix(close + kClose.size());
        while (!answer.empty() && is_space(answer.front())) answer.remove_prefix(1);
        out.push_back({kAssistant, true});
        out.push_back({answer, false});
        out.push_back({kEos, true});
        break;
      }
    }
  }
  if (generation_prompt) {
    out.push_back({kAssistant, true});
    out.push_back({kOpen, true});
    out.push_back({"\n", false});
  }
  return out;
}

std::string render_r1_chat(const std::vector<ChatMessage>& messages, bool generation_prompt) {
  std::string out;
  for (const ChatPiece& p : r1_chat_pieces(messages, generation_prompt)) out += p.text;
  return out;
}

ReasoningSplitter::Delta ReasoningSplitter::feed(std::string_view text) {
  Delta d;
  pending_.append(text);
  for (;;) {
    if (state_ == State::start) {
      // Skip leading whitespace and an explicit <think>.
      std::size_t i = 0;
      while (i < pending_.size() && is_space(pending_[i])) ++i;
      std::string_view rest = std::string_view(pending_).substr(i);
      if (rest.size() < kOpen.size() && kOpen.substr(0, rest.size()) == rest) return d;  // undecided
      if (rest.substr(0, kOpen.size()) == kOpen) pending_.erase(0, i + kOpen.size());
      state_ = State::reasoning;
      continue;
    }
    if (state_ == State::reasoning) {
      std::size_t close = pending_.find(kClose);
      if (close != std::string::npos) {
        d.reasoning.append(pending_, 0, close);
        pending_.erase(0, close + kClose.size());
        saw_close_ = true;
        state_ = State::after_close;
        continue;
      }
      std::size_t keep = partial_suffix(pending_, kClose);
      d.reasoning.append(pending_, 0, pending_.size() - keep);
      pending_.erase(0, pending_.size() - keep);
      break;
    }
    if (state_ == State::after_close) {
      std::size_t i = 0;
      while (i < pending_.size() && is_space(pending_[i])) ++i;
      pending_.erase(0, i);
      if (pending_.empty()) break;
      state_ = State::answer;
      continue;
    }
    d.answer += pending_;  // answer
    pending_.clear();
    break;
  }
  reasoning_ += d.reasoning;
  answer_ += d.answer;
  return d;
}

ReasoningSplitter::Delta ReasoningSplitter::finish() {
  Delta d;
  if (state_ == State::start || state_ == State::reasoning) {
    d.reasoning = pending_;  // a partial tag at the very end is just text
    reasoning_ += pending_;
  } else if (state_ == State::answer) {
    d.answer = pending_;
    answer_ += pending_;
  }
  pending_.clear();
  if (!saw_close_) {
    // No </think>: what was streamed as reasoning is the answer.
    answer_ = reasoning_;
    while (!answer_.empty() && is_space(answer_.front())) answer_.erase(0, 1);
    reasoning_.clear();
  }
  state_ = State::answer;
  return d;
}

}  // namespace ponder
