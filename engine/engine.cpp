// The resident Engine: a request queue served by one thread over one backend, with prefix reuse.
#include "engine/engine.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <list>
#include <mutex>
#include <thread>

#include "engine/log.h"

namespace ponder {
namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::size_t common_prefix(const std::vector<std::int32_t>& a, const std::vector<std::int32_t>& b) {
  const std::size_t n = std::min(a.size(), b.size());
  return static_cast<std::size_t>(std::mismatch(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(n), b.begin()).first -
                                  a.begin());
}

bool contains(const std::vector<std::int32_t>& v, std::int32_t id) {
  return std::find(v.begin(), v.end(), id) != v.end();
}

// Holds back answer text that could be the start of a stop string, and finds the first one.
class StopMatcher {
 public:
  explicit StopMatcher(const std::vector<std::string>& stops) : stops_(stops) {}

  /// Appends `text`; returns what is certain not to be part of a stop string. After a match,
  /// matched() is true and the text before it has been returned.
  std::string feed(std::string_view text) {
    pending_ += text;
    std::size_t first = std::string::npos;
    for (const std::string& s : stops_) first = std::min(first, pending_.find(s));
    if (first != std::string::npos) {
      matched_ = true;
      std::string out = pending_.substr(0, first);
      pending_.clear();
      return out;
    }
    // Keep the longest tail that is a proper prefix of some stop string.
    std::size_t hold = 0;
    for (const std::string& s : stops_)
      for (std::size_t k = std::min(s.size() - 1, pending_.size()); k > hold; --k)
        if (pending_.compare(pending_.size() - k, k, s, 0, k) == 0) {
          hold = k;
          break;
        }
    std::string out = pending_.substr(0, pending_.size() - hold);
    pending_.erase(0, pending_.size() - hold);
    return out;
  }
  /// The end of the output: what was held back.
  std::string finish() { return std::exchange(pending_, {}); }
  bool matched() const { return matched_; }

 private:
  const std::vector<std::string>& stops_;
  std::string pending_;
  bool matched_ = false;
};

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

}  // namespace

std::string_view channel_name(Channel c) { return c == Channel::reasoning ? "reasoning" : "answer"; }

std::string_view stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::end_of_generation: return "end of generation";
    case StopReason::stop_token: return "stop token";
    case StopReason::stop_string: return "stop string";
    case StopReason::max_tokens: return "max tokens";
    case StopReason::context_full: return "context full";
    case StopReason::cancelled: return "cancelled";
    case StopReason::error: return "error";
  }
  return "?";
}

struct Engine::Job {
  RequestId id = 0;
  GenerateRequest request;
  EventSink sink;
  std::atomic<bool> cancel{false};
  Clock::time_point submitted;
};

struct Engine::Impl {
  EngineOptions options;
  std::vector<std::int32_t> close_thinking;  // "\n</think>\n\n", forced by the reasoning budget

  // The queue, shared with the callers' threads.
  std::mutex mu;
  std::condition_variable wake;
  std::deque<std::shared_ptr<Job>> queue;
  std::shared_ptr<Job> running;
  bool stopping = false;
  RequestId next_id = 1;
  std::thread thread;

  // The Engine's thread only: what the backend's cache holds, and the logits buffer.
  std::vector<std::int32_t> live;
  std::vector<float> logits;

  // Prefixes kept aside (the Engine's thread changes them; the accessors read under store_mu).
  struct Stored {
    std::vector<std::int32_t> tokens;
    std::unique_ptr<KvSnapshot> kv;
    std::uint64_t last_used = 0;
  };
  mutable std::mutex store_mu;
  std::list<Stored> store;
  std::uint64_t store_bytes = 0;
  std::uint64_t use_clock = 0;
  std::uint64_t position_bytes = 0;  // KV bytes per position (the model's figure)

  void send(Job& job, const GenerateEvent& e) {
    try {
      job.sink(e);
    } catch (const std::exception& ex) {
      log::warn("engine: request ", job.id, ": the event callback threw (", ex.what(), "); cancelling it");
      job.cancel = true;
    } catch (...) {
      log::warn("engine: request ", job.id, ": the event callback threw; cancelling it");
      job.cancel = true;
    }
  }

  // Copies the live sequence aside, unless it is short, already stored, or does not fit without
  // evicting `keep` (the entry about to be restored).
  void spill(Backend& backend, const Stored* keep) {
    if (live.size() < options.min_prefix_tokens || options.prefix_cache_bytes == 0) return;
    for (Stored& s : store)
      if (s.tokens.size() >= live.size() && common_prefix(s.tokens, live) == live.size()) {
        s.last_used = ++use_clock;
        return;
      }
    const std::uint64_t need = live.size() * position_bytes;
    if (need + (keep ? keep->kv->bytes() : 0) > options.prefix_cache_bytes) return;
    std::string error;
    auto snap = backend.save(static_cast<std::uint32_t>(live.size()), &error);
    if (!snap) {
      log::warn("engine: ", error);
      return;
    }
    std::lock_guard lock(store_mu);
    // A stored prefix of this sequence is now redundant.
    for (auto it = store.begin(); it != store.end();)
      if (&*it != keep && common_prefix(it->tokens, live) == it->tokens.size()) {
        store_bytes -= it->kv->bytes();
        it = store.erase(it);
      } else {
        ++it;
      }
    while (!store.empty() && store_bytes + snap->bytes() > options.prefix_cache_bytes) {
      auto lru = store.end();
      for (auto it = store.begin(); it != store.end(); ++it)
        if (&*it != keep && (lru == store.end() || it->last_used < lru->last_used)) lru = it;
      if (lru == store.end()) break;  // only `keep` is left, and the check above said it fits
      store_bytes -= lru->kv->bytes();
      store.erase(lru);
    }
    store_bytes += snap->bytes();
    store.push_back({live, std::move(snap), ++use_clock});
  }

  // Puts the longest reusable prefix of `prompt` in the backend's cache; returns its length (at
  // most prompt.size() - 1: the last prompt token must run to give the logits).
  std::size_t reuse(Backend& backend, const std::vector<std::int32_t>& prompt) {
    const std::size_t limit = prompt.size() - 1;
    const std::size_t live_common = common_prefix(live, prompt);
    const std::size_t from_live = std::min(live_common, limit);
    Stored* best = nullptr;
    std::size_t best_n = from_live;
    for (Stored& s : store) {
      const std::size_t n = std::min(common_prefix(s.tokens, prompt), limit);
      if (n > best_n) best = &s, best_n = n;
    }
    // What of the live sequence the new one does not keep; worth saving if it is long.
    const std::size_t kept = std::min(live_common, best_n);
    if (best) best->last_used = ++use_clock;
    if (live.size() - kept >= options.min_prefix_tokens) spill(backend, best);
    if (best) {
      backend.restore(*best->kv, static_cast<std::uint32_t>(best_n));
    } else {
      backend.truncate(static_cast<std::uint32_t>(best_n));
    }
    live.assign(prompt.begin(), prompt.begin() + static_cast<std::ptrdiff_t>(best_n));
    return best_n;
  }

};

std::unique_ptr<Engine> Engine::create(std::unique_ptr<Model> model, const EngineOptions& options,
                                       std::string* error, std::unique_ptr<Tokenizer> tokenizer) {
  std::unique_ptr<Engine> e(new Engine());
  e->model_ = std::move(model);
  e->tokenizer_ = tokenizer ? std::move(tokenizer) : e->model_->load_tokenizer(error);
  if (!e->tokenizer_) return nullptr;
  e->backend_ = options.make_backend ? options.make_backend(*e->model_, options.backend, error)
                                     : make_cpu_backend(*e->model_, options.backend, error);
  if (!e->backend_) return nullptr;
  e->impl_ = std::make_unique<Impl>();
  Impl& im = *e->impl_;
  im.options = options;
  im.position_bytes = kv_bytes_per_token(e->model_->config(), options.backend.kv);
  im.logits.resize(e->model_->config().n_vocab);
  if (e->model_->tokens().think_close >= 0) im.close_thinking = e->tokenizer_->encode("\n</think>\n\n");
  im.thread = std::thread([engine = e.get()] { engine->run(); });
  return e;
}

Engine::~Engine() {
  if (!impl_) return;
  std::deque<std::shared_ptr<Job>> dropped;
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
    if (impl_->running) impl_->running->cancel = true;
    dropped.swap(impl_->queue);
  }
  impl_->wake.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
  for (auto& job : dropped) {
    GenerateEvent done;
    done.kind = GenerateEvent::Kind::done;
    done.reason = StopReason::cancelled;
    impl_->send(*job, done);
  }
}

std::vector<std::int32_t> encode_r1_chat(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages) {
  std::vector<std::int32_t> ids;
  for (const ChatPiece& p : r1_chat_pieces(messages))
    for (std::int32_t id : tokenizer.encode(p.text, p.control)) ids.push_back(id);
  return ids;
}

std::vector<std::int32_t> Engine::chat_prompt(const std::vector<ChatMessage>& messages) const {
  return encode_r1_chat(*tokenizer_, messages);
}

RequestId Engine::submit(GenerateRequest request, EventSink sink, std::string* error) {
  const ModelConfig& c = model_->config();
  const std::uint32_t n_tokens = model_->tokens().n_tokens ? model_->tokens().n_tokens : c.n_vocab;
  auto check_ids = [&](const std::vector<std::int32_t>& ids, const char* what) {
    for (std::size_t i = 0; i < ids.size(); ++i)
      if (ids[i] < 0 || static_cast<std::uint32_t>(ids[i]) >= n_tokens) {
        *error = std::string(what) + " token " + std::to_string(ids[i]) + " at " + std::to_string(i) +
                 " is outside the vocabulary of " + std::to_string(n_tokens) + " tokens";
        return false;
      }
    return true;
  };
  if (request.prompt.empty()) {
    *error = "the prompt is empty";
    return 0;
  }
  if (!check_ids(request.prompt, "prompt") || !check_ids(request.forced, "forced") ||
      !check_ids(request.stop_tokens, "stop"))
    return 0;
  if (request.prompt.size() > backend_->context()) {
    *error = "the prompt has " + std::to_string(request.prompt.size()) + " tokens, more than the context of " +
             std::to_string(backend_->context()) + " positions";
    return 0;
  }
  if (request.max_tokens == 0) {
    *error = "max_tokens must be at least 1";
    return 0;
  }
  if (request.reasoning_budget < -1) {
    *error = "reasoning_budget must be -1 (no limit) or at least 0";
    return 0;
  }
  for (const std::string& s : request.stop_strings)
    if (s.empty()) {
      *error = "a stop string is empty";
      return 0;
    }
  if (!request.sampling) request.sampling = SamplingParams::from_defaults(model_->generation());
  if (std::string why = request.sampling->validate(); !why.empty()) {
    *error = "sampling: " + why;
    return 0;
  }
  if (!sink) {
    *error = "no event callback";
    return 0;
  }
  auto job = std::make_shared<Job>();
  job->request = std::move(request);
  job->sink = std::move(sink);
  job->submitted = Clock::now();
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping) {
      *error = "the engine is shutting down";
      return 0;
    }
    job->id = impl_->next_id++;
    impl_->queue.push_back(job);
  }
  impl_->wake.notify_one();
  return job->id;
}

bool Engine::cancel(RequestId id) {
  std::shared_ptr<Job> queued;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->running && impl_->running->id == id) {
      impl_->running->cancel = true;
      return true;
    }
    auto it = std::find_if(impl_->queue.begin(), impl_->queue.end(), [&](const auto& j) { return j->id == id; });
    if (it == impl_->queue.end()) return false;
    queued = *it;
    impl_->queue.erase(it);
  }
  GenerateEvent done;
  done.kind = GenerateEvent::Kind::done;
  done.reason = StopReason::cancelled;
  done.stats.prompt_tokens = static_cast<std::uint32_t>(queued->request.prompt.size());
  done.stats.queued_s = seconds(queued->submitted, Clock::now());
  impl_->send(*queued, done);
  return true;
}

bool Engine::generate(GenerateRequest request, GenerateResult* result, std::string* error,
                      const EventSink& observer) {
  *result = GenerateResult{};
  std::promise<void> finished;
  const bool want_log_probs = request.log_probs;
  auto sink = [&](const GenerateEvent& e) {
    if (observer) observer(e);
    if (e.kind == GenerateEvent::Kind::token) {
      if (e.token >= 0) {
        result->tokens.push_back(e.token);
        if (want_log_probs || e.forced) result->log_probs.push_back(e.log_prob);
      }
      (e.channel == Channel::reasoning ? result->reasoning : result->answer) += e.text;
      return;
    }
    result->reason = e.reason;
    result->stats = e.stats;
    result->error = e.error;
    finished.set_value();
  };
  if (!submit(std::move(request), sink, error)) return false;
  finished.get_future().wait();
  return true;
}

std::size_t Engine::stored_prefixes() const {
  std::lock_guard lock(impl_->store_mu);
  return impl_->store.size();
}

std::uint64_t Engine::stored_prefix_bytes() const {
  std::lock_guard lock(impl_->store_mu);
  return impl_->store_bytes;
}

void Engine::run() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock lock(impl_->mu);
      impl_->wake.wait(lock, [&] { return impl_->stopping || !impl_->queue.empty(); });
      if (impl_->stopping) return;
      job = impl_->queue.front();
      impl_->queue.pop_front();
      impl_->running = job;
    }
    serve(*job);
  }
}

void Engine::serve(Job& job) {
  Impl& im = *impl_;
  const GenerateRequest& req = job.request;
  const SpecialTokens& special = model_->tokens();
  const std::vector<std::int32_t>& prompt = req.prompt;
  GenerateEvent done;
  done.kind = GenerateEvent::Kind::done;
  GenerateStats& st = done.stats;
  st.prompt_tokens = static_cast<std::uint32_t>(prompt.size());
  const auto t_start = Clock::now();
  st.queued_s = seconds(job.submitted, t_start);
  auto finish = [&](StopReason reason, std::string error = {}) {
    done.reason = reason;
    done.error = std::move(error);
    {
      std::lock_guard lock(im.mu);  // finished: cancel() no longer knows it
      im.running.reset();
    }
    im.send(job, done);
  };
  auto failed = [&](const std::string& error) {
    // The backend keeps what it finished: the live sequence follows it.
    im.live.resize(std::min<std::size_t>(im.live.size(), backend_->cached()));
    if (job.cancel) return finish(StopReason::cancelled);
    finish(StopReason::error, error);
  };
  if (job.cancel) return finish(StopReason::cancelled);

  // Prefill what the cache does not already hold.
  st.reused_tokens = static_cast<std::uint32_t>(im.reuse(*backend_, prompt));
  st.cache_s = seconds(t_start, Clock::now());
  st.prefilled_tokens = st.prompt_tokens - st.reused_tokens;
  backend_->set_abort_flag(&job.cancel);
  std::string error;
  {
    const bool ok = backend_->eval(prompt.data() + st.reused_tokens, st.prefilled_tokens, im.logits.data(), 1, &error);
    const std::size_t have = backend_->cached();
    im.live.assign(prompt.begin(), prompt.begin() + static_cast<std::ptrdiff_t>(std::min(have, prompt.size())));
    if (!ok) {
      backend_->set_abort_flag(nullptr);
      return failed(error);
    }
  }
  const auto t_prefilled = Clock::now();
  st.prefill_s = seconds(t_start, t_prefilled);
  st.prefill_tokens_per_s = st.prefill_s > 0 ? st.prefilled_tokens / st.prefill_s : 0;

  // Where the output starts: inside the reasoning when the prompt's last <think> is still open.
  bool reasoning = false;
  if (special.think_open >= 0 && special.think_close >= 0)
    for (auto it = prompt.rbegin(); it != prompt.rend(); ++it) {
      if (*it == special.think_close) break;
      if (*it == special.think_open) {
        reasoning = true;
        break;
      }
    }
  bool after_close = false, answer_started = false, budget_forced = false;
  Sampler sampler(*req.sampling, special.n_tokens ? special.n_tokens : model_->config().n_vocab);
  st.seed = sampler.seed();
  StreamDecoder decoder(*tokenizer_);
  StopMatcher stops(req.stop_strings);
  std::deque<std::int32_t> forced(req.forced.begin(), req.forced.end());
  std::vector<std::int32_t> history;
  history.reserve(prompt.size() + req.max_tokens);
  history = prompt;
  const std::uint32_t V = model_->config().n_vocab;
  std::uint32_t evaluated = 0;  // decode steps run
  // Sampling on the device when the backend can and nothing needs the host's logits: only the
  // id comes back. Penalties and log-probabilities need the logits, as does a forced token.
  const SamplingParams& sp = *req.sampling;
  const bool device_sampling = backend_->can_sample() && !req.log_probs && sp.repetition_penalty == 1.0f &&
                               sp.presence_penalty == 0.0f;
  std::uint64_t draws = 0;
  std::int32_t presampled = -1;  // the device's choice for the next token
  StopReason reason = StopReason::max_tokens;

  // Answer text passes the stop strings; whitespace right after </think> is dropped.
  auto answer_text = [&](std::string text) {
    if (after_close && !answer_started) {
      const auto first = std::find_if_not(text.begin(), text.end(), is_space);
      text.erase(text.begin(), first);
    }
    if (!text.empty()) answer_started = true;
    return req.stop_strings.empty() ? text : stops.feed(text);
  };

  for (;;) {
    if (job.cancel) {
      reason = StopReason::cancelled;
      break;
    }
    if (reasoning && req.reasoning_budget >= 0 && !budget_forced &&
        st.reasoning_tokens >= static_cast<std::uint64_t>(req.reasoning_budget)) {
      budget_forced = true;
      forced.insert(forced.begin(), im.close_thinking.begin(), im.close_thinking.end());
    }
    GenerateEvent ev;
    if (!forced.empty()) {
      ev.token = forced.front();
      ev.forced = true;
      forced.pop_front();
    } else if (presampled >= 0) {
      ev.token = presampled;
    } else {
      ev.token = sampler.sample(im.logits.data(), V, history.data(), history.size());
    }
    presampled = -1;
    if (ev.forced || req.log_probs) ev.log_prob = Sampler::log_prob(im.logits.data(), V, special.n_tokens, ev.token);
    if (st.generated_tokens == 0) {
      const auto now = Clock::now();
      st.time_to_first_token_s = seconds(job.submitted, now);
    }
    const bool ends_turn = contains(special.end_of_generation, ev.token);
    if ((ends_turn || contains(req.stop_tokens, ev.token)) && !ev.forced) {
      reason = ends_turn ? StopReason::end_of_generation : StopReason::stop_token;
      break;
    }
    history.push_back(ev.token);
    ++st.generated_tokens;
    // The token's channel and text.
    if (ends_turn) {  // forced: no text
      ev.channel = reasoning ? Channel::reasoning : Channel::answer;
    } else if (reasoning && ev.token == special.think_close) {
      ev.channel = Channel::reasoning;
      ev.text = decoder.finish();
      reasoning = false;
      after_close = true;
    } else if (!reasoning && !answer_started && !after_close && ev.token == special.think_open &&
               special.think_close >= 0) {
      ev.channel = Channel::reasoning;  // the model opened its reasoning itself
      reasoning = true;
    } else if (reasoning) {
      ev.channel = Channel::reasoning;
      ev.text = decoder.push(ev.token);
      ++st.reasoning_tokens;
    } else {
      ev.channel = Channel::answer;
      ev.text = answer_text(decoder.push(ev.token));
    }
    im.send(job, ev);
    if (stops.matched()) {
      reason = StopReason::stop_string;
      break;
    }
    if (ends_turn) {  // forced
      reason = StopReason::end_of_generation;
      break;
    }
    if (st.generated_tokens >= req.max_tokens) {
      reason = StopReason::max_tokens;
      break;
    }
    if (backend_->cached() >= backend_->context()) {
      reason = StopReason::context_full;
      break;
    }
    if (job.cancel) {
      reason = StopReason::cancelled;
      break;
    }
    // Whether the next token will be forced (as the top of the loop will decide): then the host
    // needs the logits for its log-probability.
    const bool next_forced = !forced.empty() || (reasoning && req.reasoning_budget >= 0 && !budget_forced &&
                                                 st.reasoning_tokens >= static_cast<std::uint64_t>(req.reasoning_budget));
    const bool ok = device_sampling && !next_forced
                        ? backend_->eval_sample(ev.token, sp, sampler.seed(), draws++,
                                                special.n_tokens ? special.n_tokens : V, &presampled, &error)
                        : backend_->eval(&ev.token, 1, im.logits.data(), 1, &error);
    if (!ok) {
      backend_->set_abort_flag(nullptr);
      return failed(error);
    }
    im.live.push_back(ev.token);
    ++evaluated;
  }
  backend_->set_abort_flag(nullptr);
  // What is still held back: an unfinished character, text that looked like a stop string.
  if (reason != StopReason::stop_string) {
    GenerateEvent tail;
    tail.channel = reasoning ? Channel::reasoning : Channel::answer;
    tail.text = decoder.finish();
    if (!reasoning) {
      tail.text = answer_text(std::move(tail.text));
      if (stops.matched()) reason = StopReason::stop_string;
      else tail.text += stops.finish();
    }
    if (!tail.text.empty()) im.send(job, tail);
  }
  const auto t_end = Clock::now();
  st.decode_s = seconds(t_prefilled, t_end);
  st.decode_tokens_per_s = st.decode_s > 0 ? evaluated / st.decode_s : 0;
  finish(reason);
}

}  // namespace ponder
