#pragma once
// The resident Engine: one model loaded once, serving generation requests from any thread
// (DESIGN.md, "engine/").
//
// Requests run one at a time, in the order they were submitted, on the Engine's own thread; each
// streams events to the callback it came with (called on that thread). A request is a token
// sequence — usually a chat rendered with the R1 template (chat_prompt()) — plus sampling
// settings, limits, stop conditions, a reasoning budget and optionally tokens to force.
//
// Prefix reuse: the backend's KV cache keeps the last request's tokens, so a request that starts
// with them prefills only what is new. When a request diverges from it, the cached sequence is
// first copied aside into a bounded store of prefixes (least recently used evicted first), and a
// later request that shares more with one of those gets it restored instead of recomputed — the
// LSP's prompts all start with the same workspace context.
//
// Channels: a prompt that ends inside `<think>` (the R1 generation prompt does) makes the output
// start as reasoning; the model's `</think>` token moves it to the answer. Neither tag appears in
// the text, nor does the whitespace right after `</think>`. Without a `</think>` token in the
// vocabulary everything is answer.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/chat.h"
#include "engine/model.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"

namespace ponder {

struct EngineOptions {
  BackendOptions backend;  // context (KV positions), KV type, threads
  /// Memory for prefixes kept aside for reuse (0 = no store; the live cache is still reused).
  std::uint64_t prefix_cache_bytes = std::uint64_t{1} << 30;
  /// Sequences shorter than this are not worth keeping aside.
  std::uint32_t min_prefix_tokens = 32;
  /// Makes the backend; unset: the CPU backend. (kernels/cuda.h's make_backend chooses between
  /// CUDA and the CPU; the engine does not depend on kernels/.)
  std::function<std::unique_ptr<Backend>(const Model&, const BackendOptions&, std::string*)> make_backend;
};

enum class Channel { reasoning, answer };
std::string_view channel_name(Channel c);

enum class StopReason {
  end_of_generation,  // the model ended its turn (an end-of-generation token)
  stop_token,         // one of the request's stop tokens
  stop_string,        // one of the request's stop strings appeared in the answer
  max_tokens,         // the request's token limit
  context_full,       // the KV cache has no room for another token
  cancelled,          // cancel() (or a callback that threw)
  error,              // the backend failed (GenerateEvent::error says why)
};
std::string_view stop_reason_name(StopReason r);

struct GenerateRequest {
  /// The prompt's tokens, BOS included when the model wants one (chat_prompt() puts it there).
  std::vector<std::int32_t> prompt;
  /// Sampling settings; unset: the model's generation defaults.
  std::optional<SamplingParams> sampling;
  /// Tokens to generate at most (forced ones and a forced `</think>` included); at least 1.
  std::uint32_t max_tokens = 512;
  /// Tokens that end the output besides the model's end-of-generation tokens (not emitted).
  std::vector<std::int32_t> stop_tokens;
  /// Strings that end the output when they appear in the answer; the text up to the first one
  /// is emitted, the string itself is not. (Not matched in the reasoning.)
  std::vector<std::string> stop_strings;
  /// Thinking tokens at most; when reached, `\n</think>\n\n` is forced and the answer follows.
  /// -1 = no limit.
  std::int64_t reasoning_budget = -1;
  /// Tokens to emit first instead of sampling them (the model still runs on each and reports its
  /// log-probability); sampling continues after them.
  std::vector<std::int32_t> forced;
  /// Report the log-probability of every token (forced tokens always have theirs).
  bool log_probs = false;
};

struct GenerateStats {
  std::uint32_t prompt_tokens = 0;
  std::uint32_t reused_tokens = 0;     // prompt tokens whose KV came from the cache
  std::uint32_t prefilled_tokens = 0;  // prompt tokens computed (prompt - reused)
  std::uint32_t generated_tokens = 0;  // tokens emitted (stop tokens not counted)
  std::uint32_t reasoning_tokens = 0;  // of those, in the reasoning
  double queued_s = 0;                 // from submit() until it started
  double time_to_first_token_s = 0;    // from submit() until the first token was chosen
  double prefill_s = 0;
  double cache_s = 0;                  // of prefill_s: the prefix cache's part (keeping the live
                                       // sequence's KV in the store, restoring a stored one)
  double decode_s = 0;
  double prefill_tokens_per_s = 0;     // prefilled_tokens / prefill_s
  double decode_tokens_per_s = 0;      // tokens evaluated after the prompt / decode_s
  std::uint64_t seed = 0;              // of the sampler (the random one picked for seed 0)
};

struct GenerateEvent {
  enum class Kind { token, done } kind = Kind::token;
  // kind == token: one emitted token and the text it makes certain (possibly empty: a character
  // split across tokens, text held back by a stop string, a tag). token -1: text released at
  // the end that belongs to no new token.
  std::int32_t token = -1;
  Channel channel = Channel::answer;
  std::string text;
  bool forced = false;
  double log_prob = 0;  // when the request asked, or forced; else 0
  // kind == done: why it stopped, the statistics, and for StopReason::error the message.
  StopReason reason = StopReason::max_tokens;
  GenerateStats stats;
  std::string error;
};

/// The R1 chat template over `messages`, ending in the generation prompt, as token ids: the
/// template's control tokens as such, the messages' text with special tokens not recognised.
std::vector<std::int32_t> encode_r1_chat(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages);

using RequestId = std::uint64_t;
using EventSink = std::function<void(const GenerateEvent&)>;

/// What generate() collects.
struct GenerateResult {
  std::vector<std::int32_t> tokens;
  std::vector<double> log_probs;  // one per token when asked (or all forced)
  std::string reasoning, answer;
  StopReason reason = StopReason::max_tokens;
  GenerateStats stats;
  std::string error;  // StopReason::error
};

class Engine {
 public:
  /// Takes the model (and its tokenizer when the caller has built it already; else builds it),
  /// makes the backend (options.make_backend, else the CPU's) and starts the Engine's thread. Null with `error` when the tokenizer
  /// or the backend cannot be made.
  static std::unique_ptr<Engine> create(std::unique_ptr<Model> model, const EngineOptions& options,
                                        std::string* error, std::unique_ptr<Tokenizer> tokenizer = nullptr);
  /// Cancels what is running and queued (their callbacks get `cancelled`) and stops the thread.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const Model& model() const { return *model_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  std::string_view backend_name() const { return backend_->name(); }
  std::uint32_t context() const { return backend_->context(); }

  /// The R1 chat template over `messages` (ending in `<｜Assistant｜><think>\n`), tokenized; the
  /// messages' text never forms control tokens (a file that contains `</think>` stays text).
  std::vector<std::int32_t> chat_prompt(const std::vector<ChatMessage>& messages) const;

  /// Queues a request; `sink` receives its events on the Engine's thread, ending with exactly
  /// one `done` event. 0 with `error` (and no events) for a malformed request: an empty prompt,
  /// a token outside the vocabulary, a prompt longer than the context, max_tokens 0, bad
  /// sampling settings, an empty stop string.
  RequestId submit(GenerateRequest request, EventSink sink, std::string* error);
  /// Stops a request: a queued one at once (its `done` event is sent from this call), a running
  /// one before its next step (prefill is interrupted between layers). False when the id is
  /// unknown or already finished.
  bool cancel(RequestId id);

  /// Submits and waits; false with `error` for a malformed request (see submit()). `observer`,
  /// when given, also receives every event (on the Engine's thread) as it comes.
  bool generate(GenerateRequest request, GenerateResult* result, std::string* error,
                const EventSink& observer = {});

  /// Prefixes kept aside for reuse, and their memory.
  std::size_t stored_prefixes() const;
  std::uint64_t stored_prefix_bytes() const;

 private:
  struct Job;
  struct Impl;
  Engine() = default;
  void run();
  void serve(Job& job);

  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ponder
