// Tasks: prompt, generation, parsing, checking.
#include "agent/task.h"

#include <algorithm>
#include <condition_variable>
#include <future>
#include <mutex>

#include "agent/git_changes.h"
#include "agent/language.h"
#include "agent/tags.h"
#include "agent/parser.h"
#include "agent/prompt.h"
#include "agent/prompt_builder.h"

namespace ponder::agent {

namespace {

// Generates the answer to one user turn; `raw` is the output as the model wrote it (the
// template opened <think>; the answer channel starts after its </think>). Streams the events
// to options.on_event and lets options.control cancel it.
bool generate(Engine& engine, const std::string& user, const TaskOptions& options, GenerateResult* out,
              std::string* raw, std::string* error) {
  GenerateRequest g;
  g.prompt = engine.chat_prompt({{ChatMessage::Role::user, user}});
  g.max_tokens = options.max_tokens;
  g.reasoning_budget = options.reasoning_budget;
  g.sampling = options.sampling;
  g.forced = options.forced;
  *out = GenerateResult{};
  if (options.control && options.control->cancelled()) {
    out->reason = StopReason::cancelled;
    *raw = "<think>";
    return true;
  }
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  const RequestId id = engine.submit(
      std::move(g),
      [&](const GenerateEvent& e) {
        if (options.on_event) options.on_event(e);
        std::lock_guard lock(mu);
        if (e.kind == GenerateEvent::Kind::token) {
          if (e.token >= 0) out->tokens.push_back(e.token);
          (e.channel == Channel::reasoning ? out->reasoning : out->answer) += e.text;
          return;
        }
        out->reason = e.reason;
        out->stats = e.stats;
        out->error = e.error;
        done = true;
        cv.notify_all();
      },
      error);
  if (id == 0) return false;
  if (options.control) options.control->begin(engine, id);
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
  }
  if (options.control) options.control->end();
  *raw = "<think>" + out->reasoning;
  if (!out->answer.empty()) *raw += "</think>" + out->answer;
  return true;
}

}  // namespace

std::string_view task_name(TaskKind kind) {
  switch (kind) {
    case TaskKind::refactor: return "refactor";
    case TaskKind::explain: return "explain";
    case TaskKind::fix: return "fix";
    case TaskKind::ask: return "ask";
  }
  return "?";
}

std::string numbered_code(std::string_view path, std::string_view code, std::uint32_t first_line) {
  const Language lang = detect_language(path);
  std::string out = "```" + std::string(lang == Language::unknown ? "" : language_name(lang)) + "\n";
  const std::uint32_t lines = std::max<std::uint32_t>(count_lines(code), 1);
  const std::size_t width = std::to_string(first_line + lines - 1).size();
  std::size_t at = 0;
  for (std::uint32_t i = 0; i < lines; ++i) {
    const std::size_t end = std::min(code.find('\n', at), code.size());
    std::string_view text = code.substr(std::min(at, code.size()), end - std::min(at, code.size()));
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    const std::string number = std::to_string(first_line + i);
    out.append(width - number.size(), ' ').append(number).append("  ").append(text).push_back('\n');
    at = end + 1;
  }
  return out + "```";
}

bool task_prompt(const TaskRequest& request, std::string_view context, std::string* out, std::string* error) {
  const TaskTarget& t = request.target;
  const std::uint32_t lines = count_lines(t.text);
  const std::uint32_t last = t.last_line == 0 ? lines : t.last_line;
  if (t.first_line < 1 || t.first_line > last || last > lines) {
    *error = t.path + ": lines " + std::to_string(t.first_line) + "-" + std::to_string(last) +
             " are not in the document (" + std::to_string(lines) + " lines)";
    return false;
  }
  if (request.kind == TaskKind::fix && request.diagnostic.empty()) {
    *error = "a fix needs the diagnostic to fix";
    return false;
  }
  if (request.kind == TaskKind::ask && request.instruction.find_first_not_of(" \t\r\n") == std::string::npos) {
    *error = "ask needs an instruction";
    return false;
  }
  // The target's lines of the document.
  std::size_t begin = 0;
  for (std::uint32_t line = 1; line < t.first_line; ++line) begin = t.text.find('\n', begin) + 1;
  std::size_t end = begin;
  for (std::uint32_t line = t.first_line; line <= last; ++line) {
    const std::size_t newline = t.text.find('\n', end);
    end = newline == std::string::npos ? t.text.size() : newline + 1;
  }
  const std::string_view code = std::string_view(t.text).substr(begin, end - begin);
  const std::map<std::string, std::string> vars = {
      {"context", std::string(context)},
      {"path", t.path},
      {"first_line", std::to_string(t.first_line)},
      {"last_line", std::to_string(last)},
      {"symbol_note", t.symbol.empty() ? "" : ", `" + t.symbol + "`"},
      {"target", numbered_code(t.path, code, t.first_line)},
      {"diagnostic", request.diagnostic},
      {"instruction", request.instruction},
  };
  return render_prompt(task_name(request.kind), vars, out, error);
}

bool run_task(Engine& engine, const TaskRequest& request, const std::filesystem::path& root, const ReadText& read,
              const TaskOptions& options, TaskResult* result, std::string* error) {
  *result = TaskResult{};
  const TokenizerCounter counter(engine.tokenizer());
  PromptOptions po;
  po.counter = &counter;
  po.budget_tokens = options.budget_tokens;
  po.working_files = options.working_files;
  po.map_cache = options.map_cache;
  if (po.budget_tokens == 0) {
    const std::size_t reserve = std::size_t{options.max_tokens} + 64;  // the answer, the template's tokens
    if (engine.context() <= reserve) {
      *error = "a context of " + std::to_string(engine.context()) + " positions leaves no room for a prompt and " +
               std::to_string(options.max_tokens) + " tokens of answer";
      return false;
    }
    po.budget_tokens = engine.context() - reserve;
  }
  if (options.index) {  // the target file's changes since the last commit, when it has any
    std::string ignored;
    changes_since_head(root, request.target.path, request.target.text, &po.recent_changes, &ignored);
  }
  BuiltPrompt prompt;
  {
    std::shared_lock<std::shared_mutex> lock;
    if (options.index_lock) lock = std::shared_lock(*options.index_lock);
    if (!build_prompt(request, options.index, po, &prompt, error)) return false;
  }
  result->prompt_tokens = prompt.tokens;
  for (const SectionReport& s : prompt.sections)
    if (s.left_out > 0) result->left_out.push_back(s.name + " (" + std::to_string(s.left_out) + " left out)");
  // Everything that decides the answer, for the cache.
  std::string key_text = std::string(task_name(request.kind)) + '\0' + prompt.text + '\0' + engine.model().path() + '\0' +
                         std::to_string(options.max_tokens) + '\0' + std::to_string(options.reasoning_budget);
  if (options.sampling) {
    const SamplingParams& p = *options.sampling;
    for (double v : {double(p.temperature), double(p.top_p), double(p.top_k), double(p.min_p),
                     double(p.repetition_penalty), double(p.presence_penalty), double(p.penalty_window), double(p.seed)})
      key_text += '\0' + std::to_string(v);
  }
  for (std::int32_t id : options.forced) key_text += ',' + std::to_string(id);
  const std::uint64_t key = hash_content(key_text);
  auto check = [&] {
    if (request.kind == TaskKind::explain) return;  // prose: no edits to check
    const std::filesystem::path target_file = root / std::filesystem::path(request.target.path).lexically_normal();
    ReadText with_target = [&](const std::filesystem::path& p) -> std::optional<std::string> {
      if (p == target_file) return request.target.text;
      return read(p);
    };
    result->edits = check_edits(result->answer.edits, root, with_target);
  };
  if (options.cache)
    if (auto hit = options.cache->find(key)) {
      result->cached = true;
      result->answer = std::move(hit->answer);
      result->stats = hit->stats;
      result->reason = hit->reason;
      check();
      return true;
    }

  GenerateResult out;
  std::string raw;
  if (!generate(engine, prompt.text, options, &out, &raw, error)) return false;
  result->stats = out.stats;
  result->reason = out.reason;
  result->error = out.error;
  result->answer = parse_answer(raw, request.target.path);
  if (options.cache && out.reason != StopReason::error && out.reason != StopReason::cancelled)
    options.cache->put({key, result->answer, result->stats, result->reason});
  check();
  return true;
}

bool review_prompt(const ReviewRequest& request, std::string* out, std::string* error) {
  if (request.diff.find_first_not_of(" \t\r\n") == std::string::npos) {
    *error = "nothing to review: the diff is empty";
    return false;
  }
  std::string diff = request.diff;
  while (!diff.empty() && (diff.back() == '\n' || diff.back() == '\r')) diff.pop_back();
  std::string part_note;
  if (request.parts > 1 &&
      !render_prompt("review_part", {{"part", std::to_string(request.part)}, {"parts", std::to_string(request.parts)}},
                     &part_note, error))
    return false;
  return render_prompt("review",
                       {{"context", request.context},
                        {"part_note", part_note},
                        {"message", request.message.empty() ? "(none)" : request.message},
                        {"diff", diff}},
                       out, error);
}

bool run_review(Engine& engine, const ReviewRequest& request, const TaskOptions& options, ReviewResult* result,
                std::string* error) {
  *result = ReviewResult{};
  std::string user;
  if (!review_prompt(request, &user, error)) return false;
  GenerateResult out;
  std::string raw;
  if (!generate(engine, user, options, &out, &raw, error)) return false;
  result->stats = out.stats;
  result->reason = out.reason;
  result->error = out.error;
  result->answer = parse_answer(raw);
  result->findings = parse_findings(result->answer, &result->problems);
  return true;
}

void TaskControl::cancel() {
  std::lock_guard lock(mu_);
  cancelled_ = true;
  if (engine_) engine_->cancel(id_);
}

bool TaskControl::cancelled() const {
  std::lock_guard lock(mu_);
  return cancelled_;
}

bool TaskControl::begin(Engine& engine, RequestId id) {
  std::lock_guard lock(mu_);
  if (cancelled_) {
    engine.cancel(id);
    return false;
  }
  engine_ = &engine;
  id_ = id;
  return true;
}

void TaskControl::end() {
  std::lock_guard lock(mu_);
  engine_ = nullptr;
  id_ = 0;
}

std::size_t TaskCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

std::optional<TaskCache::Entry> TaskCache::find(std::uint64_t key) {
  std::lock_guard lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end(); ++it)
    if (it->key == key) {
      entries_.splice(entries_.begin(), entries_, it);  // most recently used
      return entries_.front();
    }
  return std::nullopt;
}

void TaskCache::put(Entry entry) {
  std::lock_guard lock(mu_);
  entries_.remove_if([&](const Entry& e) { return e.key == entry.key; });
  entries_.push_front(std::move(entry));
  while (entries_.size() > max_entries_) entries_.pop_back();
}

}  // namespace ponder::agent
