#include <catch2/catch.hpp>
#include <random>

#include "engine/chat.h"

using namespace ponder;
using Role = ChatMessage::Role;

TEST_CASE("the R1 chat template", "[chat]") {
  CHECK(render_r1_chat({{Role::user, "Explain x"}}) ==
        "<｜begin▁of▁sentence｜><｜User｜>Explain x<｜Assistant｜><think>\n");
  CHECK(render_r1_chat({{Role::system, "Be brief."}, {Role::user, "Hi"}}) ==
        "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Hi<｜Assistant｜><think>\n");
  // Earlier assistant turns keep only their answer.
  CHECK(render_r1_chat({{Role::user, "a"},
                        {Role::assistant, "thinking...\n</think>\n\nThe answer."},
                        {Role::user, "b"}}) ==
        "<｜begin▁of▁sentence｜><｜User｜>a<｜Assistant｜>The answer.<｜end▁of▁sentence｜>"
        "<｜User｜>b<｜Assistant｜><think>\n");
  CHECK(render_r1_chat({{Role::user, "a"}}, false) == "<｜begin▁of▁sentence｜><｜User｜>a");
}

namespace {
// Feeds `text` in pieces cut at the given sizes (cycled) and returns the splitter's final state.
ReasoningSplitter run(std::string_view text, std::vector<std::size_t> cuts, std::string* streamed_reasoning,
                      std::string* streamed_answer) {
  ReasoningSplitter s;
  std::size_t i = 0, c = 0;
  while (i < text.size()) {
    std::size_t n = std::min(cuts[c++ % cuts.size()], text.size() - i);
    auto d = s.feed(text.substr(i, n));
    *streamed_reasoning += d.reasoning;
    *streamed_answer += d.answer;
    i += n;
  }
  auto d = s.finish();
  *streamed_reasoning += d.reasoning;
  *streamed_answer += d.answer;
  return s;
}
}  // namespace

TEST_CASE("reasoning splitter: the usual shapes, any token boundaries", "[chat]") {
  struct Case {
    std::string text, reasoning, answer;
    bool closed;
  };
  const Case cases[] = {
      {"Let me think.\n</think>\n\nUse a mutex.", "Let me think.\n", "Use a mutex.", true},  // usual
      {"<think>\nHmm.\n</think>\n\nDone.", "\nHmm.\n", "Done.", true},                      // explicit <think>
      {"  <think>x</think>y", "x", "y", true},
      {"No tags at all.", "", "No tags at all.", false},                                  // neither tag
      {"Thinking forever with a <thi", "", "Thinking forever with a <thi", false},           // no close
      {"a </thin k> b </think> c", "a </thin k> b ", "c", true},                           // near-miss tag
      {"</think>only answer", "", "only answer", true},
      {"x</think>", "x", "", true},
  };
  std::mt19937 rng(1);
  for (const Case& c : cases) {
    INFO(c.text);
    for (int trial = 0; trial < 30; ++trial) {
      std::vector<std::size_t> cuts;
      for (int k = 0; k < 5; ++k) cuts.push_back(1 + rng() % 5);
      std::string sr, sa;
      ReasoningSplitter s = run(c.text, cuts, &sr, &sa);
      CHECK(s.reasoning() == c.reasoning);
      CHECK(s.answer() == c.answer);
      CHECK(s.closed() == c.closed);
      if (c.closed) {
        CHECK(sr == c.reasoning);  // streamed live, and never a piece of a tag
        CHECK(sa == c.answer);
      }
    }
  }
}
