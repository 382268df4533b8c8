// `ponder review`: a commit, a range, the index or the work tree reviewed by the model, with the
// context of each change read at the reviewed revision; findings as a terminal report, markdown,
// JSON or SARIF, and an exit status for CI.
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/index.h"
#include "agent/review.h"
#include "cli/backend_setup.h"
#include "cli/commands.h"
#include "cli/review_output.h"
#include "engine/engine.h"
#include "engine/model.h"
#include "engine/model_locator.h"

namespace ponder::cli {
namespace {

constexpr const char* kHelp =
    R"(Usage: ponder review [REV | A..B | A...B] [--staged | --worktree] [options] [-- PATH...]

Reviews a change with the model before it is merged: the commit REV (default HEAD) against its
first parent (a root commit against the empty tree), the range A..B, what B did since it forked
from A (A...B), the index (--staged) or the work tree (--worktree) against HEAD or REV. The
context of each change (the definition around it, the definitions it uses, where the changed
definitions are used) is read at the reviewed revision. A change too large for one prompt is
reviewed in parts whose findings are merged; what the model did not see is listed.

Options:
  --staged             Review the index (what `git commit` would record) against HEAD or REV.
  --worktree           Review the work tree (staged or not) against HEAD or REV.
  --merge-base         A merge commit against the merge base of its parents; A..B as A...B;
                       with --staged/--worktree REV, against the merge base of REV and HEAD.
  --model M            A GGUF file, a snapshot folder, ollama:NAME[:TAG] or hf:ORG/NAME
                       (default: ./.ponder.json, $PONDER_MODEL, then the largest R1 distill found).
  --format F           text (default), markdown, json or sarif (SARIF 2.1.0).
  --show-thinking      Stream the model's reasoning to stderr as it comes.
  --fail-on SEVERITY   Exit 1 when a finding at or above SEVERITY exists: blocker, warning,
                       suggestion, nit, or never (default).
  --quiet              No progress display (it is shown only when stderr is a terminal).
  --budget N           Tokens of each prompt, at most (default: the context less --max-tokens).
  --max-tokens N       Tokens the model may write per prompt, reasoning included (default 8192).
  --ctx N              KV cache positions (default: 24576, at most the model's context).
  --plan               Show what would be reviewed (parts, files, tokens) without running the
                       model; token counts are estimates when no model is found.
  -C DIR               Run in DIR (the repository) instead of the current folder.
  -t, --threads N      CPU threads (default: every core).
  --backend B          cpu, cuda or auto: the GPU when one is usable and the model fits (default).
  --temp T, --seed S   Sampling (default: the model's temperature; a random seed).
  --no-cache           Neither read nor write the tag cache.
  --force-answer FILE  For tests: force the model's output (reasoning, </think>, answer) to the
                       text of FILE in every prompt instead of sampling it.
  -h, --help           Show this help.

Exit status: 0 when the review ran (and found nothing at or above --fail-on), 1 when it found
something at or above --fail-on, 2 for bad usage, a repository or revision that cannot be read,
or a model that cannot be found, loaded or run.
)";

struct Args {
  agent::ReviewSpec spec;
  std::string model, format = "text", fail_on = "never", force_file, dir, backend = "auto";
  bool show_thinking = false, quiet = false, plan_only = false, no_cache = false;
  std::uint64_t budget = 0, max_tokens = 8192, ctx = 0, threads = 0, seed = 0;
  double temp = -1;
};

bool parse_uint(const std::string& s, std::uint64_t* out) {
  if (s.empty() || s[0] == '-') return false;
  char* end = nullptr;
  *out = std::strtoull(s.c_str(), &end, 10);
  return *end == '\0';
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "ponder review: %s (see --help)\n", message.c_str());
  return 2;
}

// Returns -1 to go on, else an exit status.
int parse(const std::vector<std::string>& args, Args* a) {
  bool staged = false, worktree = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& s = args[i];
    const std::string* v = nullptr;
    auto value = [&]() {
      if (i + 1 < args.size()) v = &args[++i];
      return v != nullptr;
    };
    auto number = [&](std::uint64_t* out) { return value() && parse_uint(*v, out); };
    if (s == "-h" || s == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (s == "--") {
      for (++i; i < args.size(); ++i) a->spec.paths.push_back(args[i]);
    } else if (s == "--staged" || s == "--cached") {
      staged = true;
    } else if (s == "--worktree") {
      worktree = true;
    } else if (s == "--merge-base") {
      a->spec.merge_base = true;
    } else if (s == "--show-thinking") {
      a->show_thinking = true;
    } else if (s == "--quiet" || s == "-q") {
      a->quiet = true;
    } else if (s == "--plan") {
      a->plan_only = true;
    } else if (s == "--no-cache") {
      a->no_cache = true;
    } else if (s == "--model" || s == "--format" || s == "--fail-on" || s == "--force-answer" || s == "-C" ||
               s == "--backend") {
      if (!value()) return usage_error(s + " needs a value");
      (s == "--model"     ? a->model
       : s == "--backend" ? a->backend
       : s == "--format"  ? a->format
       : s == "--fail-on" ? a->fail_on
       : s == "-C"        ? a->dir
                          : a->force_file) = *v;
    } else if (s == "--budget" || s == "--max-tokens" || s == "--ctx" || s == "-t" || s == "--threads" ||
               s == "--seed") {
      std::uint64_t* out = s == "--budget"       ? &a->budget
                           : s == "--max-tokens" ? &a->max_tokens
                           : s == "--ctx"        ? &a->ctx
                           : s == "--seed"       ? &a->seed
                                                 : &a->threads;
      if (!number(out)) return usage_error(s + " takes a number");
    } else if (s == "--temp") {
      char* end = nullptr;
      if (!value() || (a->temp = std::strtod(v->c_str(), &end), *end != '\0') || a->temp < 0)
        return usage_error("--temp takes a number, at least 0");
    } else if (!s.empty() && s[0] == '-') {
      return usage_error("unknown option '" + s + "'");
    } else if (a->spec.revision.empty()) {
      a->spec.revision = s;
    } else {
      return usage_error("one revision or range at most ('" + a->spec.revision + "', then '" + s + "')");
    }
  }
  if (staged && worktree) return usage_error("--staged and --worktree exclude each other");
  a->spec.mode = staged     ? agent::ReviewSpec::Mode::staged
                 : worktree ? agent::ReviewSpec::Mode::worktree
                            : agent::ReviewSpec::Mode::revision;
  if (a->format != "text" && a->format != "markdown" && a->format != "json" && a->format != "sarif")
    return usage_error("--format takes text, markdown, json or sarif");
  agent::Severity ignored;
  if (a->fail_on != "never" && !agent::parse_severity(a->fail_on, &ignored))
    return usage_error("--fail-on takes blocker, warning, suggestion, nit or never");
  if (a->max_tokens == 0) return usage_error("--max-tokens must be at least 1");
  return -1;
}

void write_out(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

// The progress line on stderr, redrawn a few times a second from its own thread while the model
// works: the part, the files reviewed so far, the prompt being read or the tokens of reasoning
// and answer, tokens/s, the time since the review started.
class Progress {
 public:
  Progress(bool on, const agent::ReviewPlan& plan) : plan_(plan) {
    for (const agent::ReviewPart& p : plan.parts) files_ += p.files.size();
    if (on) ticker_ = std::thread([this] { loop(); });
  }
  ~Progress() { stop(); }

  void event(std::size_t part, const GenerateEvent& e) {
    std::lock_guard lock(mu_);
    if (part != part_) part_ = part, tokens_ = reasoning_ = 0;
    if (e.kind == GenerateEvent::Kind::done) {
      part_ = part + 1, tokens_ = reasoning_ = 0;  // the next part's prompt is read next
      return;
    }
    if (tokens_++ == 0) first_token_ = Clock::now();
    if (e.channel == Channel::reasoning) ++reasoning_;
  }

  /// Stops redrawing and clears the line.
  void stop() {
    if (!ticker_.joinable()) return;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    ticker_.join();
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
  }

 private:
  using Clock = std::chrono::steady_clock;
  void loop() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      draw();
      wake_.wait_for(lock, std::chrono::milliseconds(250));
    }
  }
  void draw() const {
    if (part_ >= plan_.parts.size()) return;
    std::size_t done = 0;
    for (std::size_t i = 0; i < part_; ++i) done += plan_.parts[i].files.size();
    const auto now = Clock::now();
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    std::string what;
    char buf[160];
    if (tokens_ == 0) {
      std::snprintf(buf, sizeof buf, "reading the prompt (%zu tokens)", plan_.parts[part_].tokens);
    } else {
      const double s = std::chrono::duration<double>(now - first_token_).count();
      std::snprintf(buf, sizeof buf, "%s %u tokens · %.1f tok/s", reasoning_ == tokens_ ? "thinking" : "answering",
                    reasoning_ == tokens_ ? reasoning_ : tokens_ - reasoning_, s > 0.5 ? (tokens_ - 1) / s : 0.0);
    }
    std::fprintf(stderr, "\r\033[Kponder review: part %zu/%zu · files %zu/%zu · %s · %.0f s", part_ + 1,
                 plan_.parts.size(), done, files_, buf, elapsed);
    std::fflush(stderr);
  }

  const agent::ReviewPlan& plan_;
  const Clock::time_point start_ = Clock::now();
  std::size_t files_ = 0;
  std::mutex mu_;
  std::condition_variable wake_;
  std::thread ticker_;
  bool stopping_ = false;
  std::size_t part_ = 0;
  std::uint32_t tokens_ = 0, reasoning_ = 0;
  Clock::time_point first_token_;
};

// Colour on a terminal, unless NO_COLOR is set to something (no-color.org).
bool colour_stdout() {
  const char* no_colour = std::getenv("NO_COLOR");
  return ::isatty(1) && !(no_colour && *no_colour);
}

void print_output(const Args& a, const ReviewOutput& out) {
  if (a.format == "json")
    write_out(review_json(out).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  else if (a.format == "sarif")
    write_out(review_sarif(out).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  else if (a.format == "markdown")
    write_out(review_markdown(out));
  else if (out.run || out.plan->parts.empty())
    write_out(review_text(out, colour_stdout()));
  else
    write_out(review_plan_text(out));
}

}  // namespace

int cmd_review(const std::vector<std::string>& args) {
  Args a;
  if (int status = parse(args, &a); status >= 0) return status;
  std::string error;
  // As git -C: everything (paths, .ponder.json, --force-answer) is relative to DIR.
  if (!a.dir.empty() && ::chdir(a.dir.c_str()) != 0) {
    std::fprintf(stderr, "ponder review: cannot enter %s\n", a.dir.c_str());
    return 2;
  }

  agent::ChangeSet changes;
  if (!agent::read_changes(a.spec, &changes, &error)) {
    std::fprintf(stderr, "ponder review: %s\n", error.c_str());
    return 2;
  }

  // The model: its tokenizer counts the prompts; its weights are loaded only to run them.
  const std::uint64_t available = available_memory();
  const std::uint32_t want_ctx = a.ctx ? static_cast<std::uint32_t>(a.ctx) : 24576;
  ModelRef ref;
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  const bool have_model = pick_model(a.model, want_ctx, available, &ref, &error);
  if (have_model) {
    if (a.plan_only) {  // the tokenizer alone counts the prompts
      tokenizer = load_tokenizer(ref.path, &error);
    } else {
      model = Model::open(ref.path, &error);
      if (model) tokenizer = model->load_tokenizer(&error);
    }
    if ((!a.plan_only && !model) || !tokenizer) {
      std::fprintf(stderr, "ponder review: %s: %s\n", ref.spec.c_str(), error.c_str());
      return 2;
    }
  } else if (!a.plan_only) {
    std::fprintf(stderr,
                 "ponder review: %s\nNothing was reviewed. `ponder review --plan` shows what would be reviewed "
                 "without a model.\n",
                 error.c_str());
    return 2;
  }

  // The context, read at the reviewed revision.
  agent::IndexOptions io;
  io.threads = static_cast<unsigned>(a.threads);
  if (!a.no_cache) io.cache_dir = default_cache_dir();
  auto index = agent::Index::build(changes.new_side, io);

  std::uint32_t context = want_ctx;
  if (model) context = std::min<std::uint32_t>(context, model->config().max_context);
  const std::size_t reserve = a.max_tokens + 64;  // the answer, the template's tokens
  if (a.budget == 0 && context <= reserve + 256)
    return usage_error("a context of " + std::to_string(context) + " leaves no room for a prompt and " +
                       std::to_string(a.max_tokens) + " tokens of answer (--ctx, --max-tokens)");
  agent::ReviewPlanOptions po;
  po.budget_tokens = a.budget ? a.budget : context - reserve;
  std::unique_ptr<agent::TokenCounter> counter;
  if (tokenizer) counter = std::make_unique<agent::TokenizerCounter>(*tokenizer);
  po.counter = counter.get();
  agent::ReviewPlan plan;
  if (!agent::plan_review(changes, index.get(), po, &plan, &error)) {
    std::fprintf(stderr, "ponder review: %s (--budget)\n", error.c_str());
    return 2;
  }
  ReviewOutput out{&changes, &plan, nullptr, have_model ? ref.spec : std::string()};
  if (a.plan_only || plan.parts.empty()) {
    if (a.plan_only && !have_model && !a.quiet)
      std::fprintf(stderr, "ponder review: no model found: token counts are estimates\n");
    agent::ReviewRun none;
    if (!a.plan_only) out.run = &none;
    print_output(a, out);
    return 0;
  }

  // The engine, with room for the largest prompt and its answer.
  std::size_t largest = 0;
  for (const agent::ReviewPart& p : plan.parts) largest = std::max(largest, p.tokens);
  context = std::max<std::uint32_t>(context, static_cast<std::uint32_t>(largest + reserve));
  context = std::min<std::uint32_t>(context, model->config().max_context);
  BackendOptions bo;
  bo.context = context;
  bo.threads = static_cast<unsigned>(a.threads);
  EngineOptions eo;
  eo.backend = bo;
  BackendChoice backend_choice = BackendChoice::automatic;
  if (!parse_backend_option(a.backend, &backend_choice, &error)) return usage_error(error);
  eo.make_backend = backend_maker(backend_choice, "");  // the messages below name the model
  agent::TaskOptions to;
  to.max_tokens = static_cast<std::uint32_t>(a.max_tokens);
  SamplingParams sp = SamplingParams::from_defaults(model->generation());
  if (a.temp >= 0) sp.temperature = static_cast<float>(a.temp);
  sp.seed = a.seed;
  to.sampling = sp;
  if (!a.force_file.empty()) {
    std::ifstream in(a.force_file, std::ios::binary);
    if (!in) return usage_error("--force-answer: cannot read " + a.force_file);
    const std::string text(std::istreambuf_iterator<char>(in), {});
    to.forced = tokenizer->encode(text, false);
    to.forced.push_back(model->tokens().eos);
    to.max_tokens = std::max<std::uint32_t>(to.max_tokens, static_cast<std::uint32_t>(to.forced.size()));
  }
  auto engine = Engine::create(std::move(model), eo, &error, std::move(tokenizer));
  if (!engine) {
    std::fprintf(stderr, "ponder review: %s: %s\n", ref.spec.c_str(), error.c_str());
    return 2;
  }

  Progress progress(::isatty(2) && !a.quiet && !a.show_thinking, plan);
  std::size_t thinking_part = SIZE_MAX;
  auto observer = [&](std::size_t part, const GenerateEvent& e) {
    progress.event(part, e);
    if (!a.show_thinking || e.kind != GenerateEvent::Kind::token || e.channel != Channel::reasoning) return;
    if (part != thinking_part) {
      thinking_part = part;
      std::fprintf(stderr, "%s[thinking about part %zu of %zu]\n", part ? "\n" : "", part + 1, plan.parts.size());
    }
    std::fwrite(e.text.data(), 1, e.text.size(), stderr);
    std::fflush(stderr);
  };
  agent::ReviewRun run;
  const bool ran = agent::run_review_plan(*engine, plan, to, observer, &run, &error);
  progress.stop();
  if (a.show_thinking && thinking_part != SIZE_MAX) std::fputs("\n", stderr);
  if (!ran) {
    std::fprintf(stderr, "ponder review: %s\n", error.c_str());
    return 2;
  }
  out.run = &run;
  print_output(a, out);
  agent::Severity threshold;
  if (a.fail_on != "never" && agent::parse_severity(a.fail_on, &threshold))
    for (const agent::Finding& f : run.findings)
      if (f.severity <= threshold) return 1;
  return 0;
}

}  // namespace ponder::cli
