// The language server's handlers. Protocol shapes are converted at the top of each handler
// (protocol.h); the work is agent/'s (workspace, tasks, answers) and engine/'s.
#include "lsp/server.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "agent/language.h"
#include "agent/prompt_builder.h"
#include "agent/task.h"
#include "agent/workspace.h"
#include "engine/log.h"
#include "lsp/jobs.h"
#include "lsp/json_rpc.h"
#include "lsp/protocol.h"
#include "lsp/settings.h"
#include "ponder/version.h"

namespace ponder::lsp {

namespace {

using Clock = std::chrono::steady_clock;
using agent::TaskKind;

constexpr const char* kCommandRun = "ponder.run";
constexpr const char* kCommandAsk = "ponder.ask";
constexpr const char* kCommandShowReasoning = "ponder.showReasoning";
constexpr const char* kCommandCancel = "ponder.cancel";
constexpr const char* kCommandStatus = "ponder.status";

// An error a handler answers with.
struct RpcError {
  int code;
  std::string message;
};

std::string first_line(std::string_view s, std::size_t max = 120) {
  std::size_t end = s.find('\n');
  std::string out(s.substr(0, end));
  if (out.size() > max) out = out.substr(0, max - 3) + "...";
  return out;
}

std::string last_line(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.remove_suffix(1);
  const std::size_t nl = s.rfind('\n');
  return first_line(nl == std::string_view::npos ? s : s.substr(nl + 1), 100);
}

std::uint32_t line_count(std::string_view text) {
  return static_cast<std::uint32_t>(std::count(text.begin(), text.end(), '\n') + (text.empty() || text.back() != '\n'));
}

// What a task runs on: a copy of the target document taken when the action was listed/asked.
struct TaskSpec {
  TaskKind kind = TaskKind::refactor;
  std::string key;               // workspace key of the target file
  std::int64_t version = -1;     // the open document's version (-1: not open)
  std::string text;              // its text at that version
  std::uint32_t first_line = 1, last_line = 0;  // 1-based
  std::string symbol, diagnostic, instruction;
  std::string title;             // for progress ("refactor `parse`")
};

// What a task produced, kept for showReasoning and hovers over the edited code.
struct Record {
  std::string id;
  std::string title, summary, rationale, reasoning, answer;
  std::string key;                  // the target file
  std::vector<std::string> inserted;  // text the edits put in (to find them again for hovers)
  GenerateStats stats;
  std::string model;
  TaskKind kind = TaskKind::refactor;
  std::vector<std::string> rejected;  // edits that did not check out, with the reason
};

// A refactor suggestion published as a diagnostic.
struct Suggestion {
  std::string result_id;
  std::string summary;
  std::vector<agent::EditBlock> edits;
  Range range;
};

}  // namespace

struct Server::Impl {
  ServerOptions options;
  Send send_fn;
  std::mutex send_mu;

  // Lifecycle (handle()'s thread).
  bool initialized = false, shutdown = false, exited = false;
  std::atomic<bool> exit_sent{false};
  Encoding encoding = Encoding::utf16;
  ClientCapabilities caps;
  std::optional<std::int64_t> parent_pid;

  mutable std::mutex settings_mu;
  Settings settings;

  std::unique_ptr<agent::Workspace> workspace;
  std::thread index_thread;
  std::atomic<bool> index_done{false};
  agent::TaskCache task_cache{128};
  agent::RepoMapCache map_cache;
  std::unique_ptr<EngineHost> host_;  // first to go: its loading thread calls on_model_state
  EngineHost& host;

  // Server-to-client requests awaiting their response.
  std::mutex pending_mu;
  std::int64_t next_request = 1;
  std::map<std::int64_t, std::function<void(const json& result, const json* error)>> pending;

  // Jobs.
  std::unique_ptr<Jobs> jobs;        // model work (lsp/jobs.h); stopped first
  std::atomic<bool> stopping{false};  // the timers stop
  std::atomic<std::uint64_t> next_token{1};

  // Results, hovers and suggestions.
  std::mutex results_mu;
  std::deque<Record> records;  // newest last
  std::uint64_t next_record = 1;
  std::map<std::string, std::string> explanations;  // symbol key -> hover markdown
  std::map<std::string, std::vector<Suggestion>> suggestions;  // document key -> its suggestions
  std::map<std::string, std::map<std::string, std::uint64_t>> seen_symbols;  // key -> name -> text hash
  std::deque<Clock::time_point> suggestion_times;  // for the hourly budget

  // Timers (debounced suggestions, idle unload, the parent process).
  std::mutex timer_mu;
  std::condition_variable timer_cv;
  std::multimap<Clock::time_point, std::function<void()>> timers;
  std::map<std::string, Clock::time_point> suggestion_due;
  std::thread timer_thread;
  std::string load_token;  // progress token of the model load ("" when none is shown)

  Impl(ServerOptions o, Send s)
      : options(std::move(o)),
        send_fn(std::move(s)),
        host_(std::make_unique<EngineHost>(options.loader,
                                           [this](EngineHost::State st, const std::string& detail, int pct) {
                                             on_model_state(st, detail, pct);
                                           })),
        host(*host_) {
    jobs = std::make_unique<Jobs>([this](Job& j, const std::string& why) { finish_cancelled(j, why); },
                                  [this](Job& j, const std::string& what) {
                                    if (!j.request_id.is_null()) reply_error(j.request_id, error_code::internal_error, what);
                                  });
    timer_thread = std::thread([this] { timer_loop(); });
  }

  ~Impl() {
    // Jobs and timers first (they use the host), then the host (its loading thread reports
    // through this object), then the index.
    jobs.reset();
    stopping = true;
    {
      std::lock_guard lock(timer_mu);
      timer_cv.notify_all();
    }
    timer_thread.join();
    host_.reset();
    if (index_thread.joinable()) index_thread.join();
  }

  // ---- sending ----
  void send(const std::string& body) {
    std::lock_guard lock(send_mu);
    if (send_fn) send_fn(body);
  }
  void reply(const json& id, const json& result) { send(make_response(id, result)); }
  void reply_error(const json& id, int code, std::string_view message) { send(make_error(id, code, message)); }
  void notify(std::string_view method, const json& params) { send(make_notification(method, params)); }
  void request(std::string_view method, const json& params, std::function<void(const json&, const json*)> done) {
    std::int64_t id;
    {
      std::lock_guard lock(pending_mu);
      id = next_request++;
      pending[id] = std::move(done);
    }
    send(make_request("ponder-" + std::to_string(id), method, params));
  }
  void show_message(int type, const std::string& text) { notify("window/showMessage", {{"type", type}, {"message", text}}); }
  void log_message(int type, const std::string& text) { notify("window/logMessage", {{"type", type}, {"message", text}}); }

  Settings current_settings() const {
    std::lock_guard lock(settings_mu);
    return settings;
  }

  // ---- progress ----
  // A server-created token may be used once the client has answered its create request: until
  // then its begin, the latest report and its end wait here (and go when the answer comes; a
  // refusal drops them).
  struct ProgressToken {
    bool ready = false, refused = false;
    std::vector<json> waiting;
  };
  std::mutex progress_mu;  // also keeps one token's messages in order
  std::map<std::string, ProgressToken> progress_tokens;

  std::string progress_begin(const std::string& title, const std::string& message, Job* job = nullptr) {
    if (!caps.work_done_progress) return "";
    std::string token = "ponder/" + std::to_string(next_token++);
    if (job) jobs->set_token(*job, token);  // known before the client can see it (and cancel it)
    {
      std::lock_guard lock(progress_mu);
      progress_tokens[token];
    }
    request("window/workDoneProgress/create", {{"token", token}}, [this, token](const json&, const json* error) {
      std::lock_guard lock(progress_mu);
      auto it = progress_tokens.find(token);
      if (it == progress_tokens.end()) return;
      if (error) {
        log::info("the client refused progress token ", token);
        it->second.refused = true;
        it->second.waiting.clear();
        return;
      }
      it->second.ready = true;
      bool ended = false;
      for (const json& value : it->second.waiting) {
        notify("$/progress", {{"token", token}, {"value", value}});
        ended = ended || value["kind"] == "end";
      }
      it->second.waiting.clear();
      if (ended) progress_tokens.erase(it);
    });
    progress_send(token, {{"kind", "begin"}, {"title", title}, {"cancellable", true}, {"message", message}});
    return token;
  }
  void progress_send(const std::string& token, json value) {
    if (token.empty()) return;
    std::lock_guard lock(progress_mu);
    auto it = progress_tokens.find(token);
    if (it == progress_tokens.end()) return;
    const bool end = value["kind"] == "end";
    if (it->second.refused) {
      if (end) progress_tokens.erase(it);
      return;
    }
    if (!it->second.ready) {
      std::vector<json>& w = it->second.waiting;
      if (value["kind"] == "report" && !w.empty() && w.back()["kind"] == "report") w.back() = std::move(value);
      else w.push_back(std::move(value));
      return;
    }
    notify("$/progress", {{"token", token}, {"value", value}});
    if (end) progress_tokens.erase(it);
  }
  void progress_report(const std::string& token, const std::string& message, int percent = -1) {
    json value = {{"kind", "report"}, {"message", message}};
    if (percent >= 0) value["percentage"] = percent;
    progress_send(token, std::move(value));
  }
  void progress_end(const std::string& token, const std::string& message) {
    progress_send(token, {{"kind", "end"}, {"message", message}});
  }

  void on_model_state(EngineHost::State st, const std::string& detail, int pct) {
    std::string token;
    {
      std::lock_guard lock(timer_mu);
      if (st == EngineHost::State::loading && load_token.empty() && initialized)
        load_token = progress_begin("Ponder: loading the model", detail);
      token = load_token;
      if (st != EngineHost::State::loading) load_token.clear();
    }
    notify("ponder/status", {{"state", st == EngineHost::State::loading ? "loading"
                                       : st == EngineHost::State::ready ? "idle"
                                       : st == EngineHost::State::failed ? "failed" : "unloaded"},
                             {"detail", detail}});
    if (st == EngineHost::State::loading) {
      progress_report(token, detail, pct);
    } else {
      progress_end(token, st == EngineHost::State::ready ? "model ready: " + detail : "no model");
      if (st == EngineHost::State::failed)
        show_message(1, "ponder: " + detail +
                            " — name a model with the \"model\" setting, .ponder.json, --model or PONDER_MODEL "
                            "(`ponder models` lists what it finds)");
    }
  }

  // ---- jobs ----
  // Declared last of the members: destroyed first (its threads run jobs that use the rest).
  void finish_cancelled(Job& job, const std::string& why) {
    progress_end(job.token, "cancelled");
    if (!job.request_id.is_null()) reply_error(job.request_id, error_code::request_cancelled, why);
  }
  void submit(std::shared_ptr<Job> job) { jobs->submit(std::move(job)); }
  void cancel_all() { jobs->cancel_all(); }

  // ---- timers ----
  void at(Clock::time_point when, std::function<void()> fn) {
    std::lock_guard lock(timer_mu);
    timers.emplace(when, std::move(fn));
    timer_cv.notify_all();
  }

  void timer_loop() {
    std::unique_lock lock(timer_mu);
    Clock::time_point next_tick = Clock::now();
    while (true) {
      if (stopping) return;
      const Clock::time_point wake = timers.empty() ? next_tick : std::min(next_tick, timers.begin()->first);
      timer_cv.wait_until(lock, wake);
      if (stopping) return;
      const auto now = Clock::now();
      std::vector<std::function<void()>> due;
      while (!timers.empty() && timers.begin()->first <= now) {
        due.push_back(std::move(timers.begin()->second));
        timers.erase(timers.begin());
      }
      const bool tick = now >= next_tick;
      if (tick) next_tick = now + std::chrono::seconds(1);
      lock.unlock();
      for (auto& fn : due) fn();
      if (tick) on_tick();
      lock.lock();
    }
  }

  void on_tick() {
    const Settings s = current_settings();
    if (host.unload_if_idle(std::chrono::seconds(s.idle_unload_seconds)))
      notify("ponder/status", {{"state", "unloaded"}, {"detail", "unloaded after " + std::to_string(s.idle_unload_seconds) + " s idle"}});
    if (parent_pid && *parent_pid > 0 && ::kill(static_cast<pid_t>(*parent_pid), 0) != 0 && errno == ESRCH) {
      log::warn("the editor (process ", *parent_pid, ") is gone: exiting");
      parent_pid.reset();
      finish(1);
    }
  }

  void finish(int code) {
    (void)code;
    if (exit_sent.exchange(true)) return;
    cancel_all();
    if (options.on_exit) options.on_exit();
  }

  // ---- documents and positions ----
  std::string key_of_uri(const std::string& uri) {
    const std::string path = uri_to_path(uri);
    if (path.empty()) throw RpcError{error_code::invalid_params, "not a file URI: " + first_line(uri)};
    if (!workspace) throw RpcError{error_code::server_not_initialized, "no workspace"};
    return workspace->key_of(path);
  }
  std::string uri_of_key(const std::string& key) { return path_to_uri(workspace->absolute(key).string()); }

  agent::DocumentSnapshot open_document(const std::string& uri) {
    auto doc = workspace->document(key_of_uri(uri));
    if (!doc) throw RpcError{error_code::invalid_params, first_line(uri_to_path(uri)) + " is not open"};
    return *doc;
  }

  Range range_of(std::string_view text, std::uint32_t begin, std::uint32_t end) {
    return {position_at(text, begin, encoding), position_at(text, end, encoding)};
  }

  // The minimal edit from `before` to `after`, on whole lines.
  TextEdit text_edit(const std::string& before, const std::string& after) {
    std::size_t p = 0;
    const std::size_t n = std::min(before.size(), after.size());
    while (p < n && before[p] == after[p]) ++p;
    std::size_t s = 0;
    while (s < n - p && before[before.size() - 1 - s] == after[after.size() - 1 - s]) ++s;
    while (p > 0 && before[p - 1] != '\n') --p;                  // from the start of a line
    while (s > 0 && before[before.size() - s - 1] != '\n') --s;  // to the start of a line
    TextEdit e;
    e.range = range_of(before, static_cast<std::uint32_t>(p), static_cast<std::uint32_t>(before.size() - s));
    e.new_text = after.substr(p, after.size() - s - p);
    return e;
  }

  // The editor's edit for checked changes; the target document must still be at `version`.
  WorkspaceEdit workspace_edit(const std::vector<agent::FileChange>& files, const std::string& label,
                               const std::string& description, const std::string& annotation_id) {
    WorkspaceEdit we;
    const bool annotate = caps.change_annotations && !annotation_id.empty();
    if (annotate) we.annotations[annotation_id] = ChangeAnnotation{label, description, true};
    for (const agent::FileChange& f : files) {
      const std::string key = workspace->key_of(f.absolute);
      auto doc = workspace->document(key);
      if (doc && doc->text != f.before)
        throw RpcError{error_code::content_modified, key + " changed while ponder was thinking; ask again"};
      TextDocumentEdit d;
      d.uri = path_to_uri(f.absolute.string());
      if (doc) d.version = doc->version;
      if (f.new_file) we.create.push_back(d.uri);
      TextEdit e = text_edit(f.before, f.after);
      if (annotate) e.annotation = annotation_id;
      d.edits.push_back(std::move(e));
      we.changes.push_back(std::move(d));
    }
    return we;
  }

  json workspace_edit_json(const WorkspaceEdit& we) {
    if (caps.document_changes) return we;
    json changes = json::object();  // the old `changes` map for clients without documentChanges
    for (const TextDocumentEdit& d : we.changes) changes[d.uri] = d.edits;
    return {{"changes", changes}};
  }

  // ---- running a task ----
  struct Outcome {
    agent::TaskResult result;
    Record record;
  };

  std::vector<std::int32_t> forced_tokens(const Engine& engine) {
    if (options.forced_answer.empty()) return {};
    std::vector<std::int32_t> ids = engine.tokenizer().encode(options.forced_answer, /*special=*/true);
    if (engine.model().tokens().eos >= 0) ids.push_back(engine.model().tokens().eos);  // then the turn ends
    return ids;
  }

  // Runs `spec` on the model with progress and the reasoning stream. Throws RpcError when it
  // cannot run or was cancelled.
  Outcome run_task(Job& job, const TaskSpec& spec) {
    const Settings s = current_settings();
    const std::string uri = uri_of_key(spec.key);
    std::string result_id;
    {
      std::lock_guard lock(results_mu);
      result_id = "r" + std::to_string(next_record++);
    }
    if (job.token.empty() && !job.background) progress_begin("Ponder: " + spec.title, "waiting for the model", &job);
    std::string error;
    if (host.state() != EngineHost::State::ready) progress_report(job.token, "loading the model");
    std::shared_ptr<Engine> engine = host.acquire(&error);
    if (!engine) throw RpcError{error_code::request_failed, "ponder has no model: " + error};
    if (job.cancelled || job.superseded)
      throw RpcError{error_code::request_cancelled, job.superseded ? "superseded by a newer request" : "cancelled"};

    agent::TaskRequest request;
    request.kind = spec.kind;
    request.target = {spec.key, spec.text, spec.first_line, spec.last_line, spec.symbol};
    request.diagnostic = spec.diagnostic;
    request.instruction = spec.instruction;
    agent::TaskOptions to;
    to.cache = &task_cache;
    const bool in_root = !std::filesystem::path(spec.key).is_absolute();
    if (in_root && index_done) {
      workspace->sync_index();  // the open documents' latest edits
      to.index = workspace->index();
      to.index_lock = &workspace->index_lock();
      to.map_cache = &map_cache;
      to.working_files = workspace->open_keys();
    }
    to.max_tokens = s.max_tokens;
    to.reasoning_budget = s.reasoning_budget;
    if (s.prompt_budget) to.budget_tokens = s.prompt_budget;
    if (s.temperature) {
      SamplingParams sp = SamplingParams::from_defaults(engine->model().generation());
      sp.temperature = *s.temperature;
      to.sampling = sp;
    }
    to.forced = forced_tokens(*engine);
    to.control = job.control.get();
    // Progress and the reasoning stream, at most every 150 ms.
    std::string reasoning, pending_text;
    std::uint32_t tokens = 0;
    Clock::time_point last_sent = Clock::now();
    const Clock::time_point started = last_sent;
    const bool stream = !job.background;
    // Background work shows in the status only; what the user asked for streams its reasoning.
    auto flush = [&](bool done) {
      if (stream && (!pending_text.empty() || done)) {
        json params = {{"id", result_id}, {"uri", uri}, {"title", spec.title}, {"text", pending_text}, {"done", done}};
        notify("ponder/reasoning", params);
        pending_text.clear();
      }
      if (stream) progress_report(job.token, std::to_string(tokens) + " tokens · " + last_line(reasoning));
      const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
      notify("ponder/status", {{"state", done ? "idle" : "thinking"},
                               {"detail", done ? host.description() : spec.title},  // idle: the model
                               {"background", job.background},
                               {"tokens", tokens},
                               {"tokensPerSecond", seconds > 0 ? tokens / seconds : 0.0}});
      last_sent = Clock::now();
    };
    to.on_event = [&](const GenerateEvent& e) {
      if (e.kind != GenerateEvent::Kind::token) return;
      ++tokens;
      if (e.channel == Channel::reasoning) {
        reasoning += e.text;
        pending_text += e.text;
      }
      if (Clock::now() - last_sent > std::chrono::milliseconds(150)) flush(false);
    };
    if (stream) notify("ponder/reasoning", {{"id", result_id}, {"uri", uri}, {"title", spec.title}, {"text", ""}, {"done", false}});

    Outcome out;
    const std::filesystem::path root = workspace->root();
    agent::ReadText read = [this](const std::filesystem::path& p) { return workspace->read(p); };
    if (!agent::run_task(*engine, request, root, read, to, &out.result, &error)) {
      flush(true);
      throw RpcError{error_code::request_failed, error};
    }
    flush(true);
    if (out.result.reason == StopReason::cancelled || job.cancelled || job.superseded)
      throw RpcError{error_code::request_cancelled, job.superseded ? "superseded by a newer request" : "cancelled"};
    if (out.result.reason == StopReason::error) throw RpcError{error_code::request_failed, "the model failed: " + out.result.error};

    Record& r = out.record;
    r.id = result_id;
    r.title = spec.title;
    r.summary = out.result.answer.summary;
    r.rationale = agent::answer_prose(out.result.answer);
    r.reasoning = out.result.answer.reasoning;
    r.answer = out.result.answer.answer;
    r.key = spec.key;
    r.kind = spec.kind;
    r.stats = out.result.stats;
    r.model = engine->model().name();
    for (const agent::FileChange& f : out.result.edits.files)
      for (const agent::EditBlock& e : f.edits) r.inserted.push_back(e.replace);
    for (const agent::RejectedEdit& e : out.result.edits.rejected) r.rejected.push_back(e.reason);
    for (const std::string& p : out.result.answer.problems) r.rejected.push_back(p);
    {
      std::lock_guard lock(results_mu);
      records.push_back(r);
      while (records.size() > 100) records.pop_front();
    }
    return out;
  }

  // Why a task gave nothing to apply, in one message.
  static std::string no_edit_message(const Outcome& o) {
    std::string why;
    if (o.result.reason == StopReason::max_tokens || o.result.reason == StopReason::context_full)
      why = "the model stopped at its token limit";
    else if (!o.result.answer.reasoning_closed)
      why = "the model never finished reasoning";
    for (const std::string& r : o.record.rejected) why += (why.empty() ? "" : "; ") + r;
    if (why.empty()) why = o.result.answer.edits.empty() ? "the answer proposes no change" : "no edit checked out";
    return "ponder: no valid edit (" + why + ")";
  }

  std::string markdown_of(const Record& r) {
    std::string md;
    if (r.kind == TaskKind::explain) md = "# " + r.title + "\n\n" + r.answer + "\n\n";
    else md = "# " + (r.summary.empty() ? r.title : r.summary) + "\n\n";
    if (r.kind != TaskKind::explain && !r.rationale.empty()) md += r.rationale + "\n\n";
    if (!r.rejected.empty()) {
      md += "**Not applied:**\n";
      for (const std::string& x : r.rejected) md += "- " + x + "\n";
      md += "\n";
    }
    md += "## Reasoning\n\n" + (r.reasoning.empty() ? std::string("(none)") : r.reasoning) + "\n\n---\n";
    md += "*" + r.model + " · " + std::to_string(r.stats.generated_tokens) + " tokens (" +
          std::to_string(r.stats.reasoning_tokens) + " reasoning) · " + r.title + "*\n";
    return md;
  }

  // ---- handlers ----
  json on_initialize(const json& params) {
    InitializeParams p = params.get<InitializeParams>();
    caps = p.capabilities;
    parent_pid = p.process_id;
    encoding = std::find(caps.position_encodings.begin(), caps.position_encodings.end(), "utf-8") !=
                       caps.position_encodings.end()
                   ? Encoding::utf8
                   : Encoding::utf16;
    std::string root = uri_to_path(p.root_uri);
    if (root.empty()) root = std::filesystem::current_path().string();
    workspace = std::make_unique<agent::Workspace>(root);
    Settings s;
    std::vector<std::string> problems;
    std::string error;
    const std::filesystem::path config = workspace->root() / ".ponder.json";
    if (std::filesystem::exists(config)) {
      std::ifstream in(config);
      json j = json::parse(in, nullptr, false);
      if (j.is_discarded()) problems.push_back(config.string() + " is not valid JSON");
      else if (!apply_settings(j, &s, &error)) problems.push_back(config.string() + ": " + error);
    }
    json init = p.initialization_options;
    if (init.is_object() && init.contains("ponder")) init = init["ponder"];
    if (!apply_settings(init, &s, &error)) problems.push_back("initializationOptions: " + error);
    if (!options.model_override.empty()) s.model.model = options.model_override;
    {
      std::lock_guard lock(settings_mu);
      settings = s;
    }
    host.configure(s.model);
    for (const std::string& m : problems) log::warn(m);
    pending_problems = problems;
    agent::IndexOptions io;
    io.cache_dir = options.cache_dir;
    io.threads = options.index_threads;
    index_thread = std::thread([this, io] {
      agent::IndexStats stats;
      std::string err;
      if (!workspace->build_index(io, &stats, &err)) log::error("index: ", err);
      else log::info("index: ", stats.files, " files, ", stats.tags, " tags in ", stats.total_seconds, " s");
      index_done = true;
    });
    json capabilities = {
        {"positionEncoding", encoding == Encoding::utf8 ? "utf-8" : "utf-16"},
        {"textDocumentSync", {{"openClose", true}, {"change", 2}, {"save", {{"includeText", false}}}}},
        {"codeActionProvider",
         {{"codeActionKinds", {"quickfix", "refactor.rewrite", "refactor.explain"}}, {"resolveProvider", true}}},
        {"hoverProvider", true},
        {"executeCommandProvider",
         {{"commands", {kCommandRun, kCommandAsk, kCommandShowReasoning, kCommandCancel, kCommandStatus}}}},
    };
    return {{"capabilities", capabilities}, {"serverInfo", {{"name", "ponder"}, {"version", PONDER_VERSION}}}};
  }
  std::vector<std::string> pending_problems;

  void on_initialized() {
    for (const std::string& m : pending_problems) show_message(2, "ponder: " + m);
    pending_problems.clear();
    if (caps.watched_files_dynamic)
      request("client/registerCapability",
              {{"registrations",
                {{{"id", "ponder-watch"},
                  {"method", "workspace/didChangeWatchedFiles"},
                  {"registerOptions", {{"watchers", {{{"globPattern", "**/*"}}}}}}}}}},
              [](const json&, const json* error) {
                if (error) log::warn("the client refused to watch files: ", error->dump());
              });
    host.load_async();
  }

  void on_did_change_configuration(const json& params) {
    json j = params.value("settings", json());
    if (j.is_object() && j.contains("ponder")) j = j["ponder"];
    Settings s = current_settings();
    std::string error;
    if (!apply_settings(j, &s, &error)) {
      show_message(2, "ponder: " + error);
      return;
    }
    if (!options.model_override.empty()) s.model.model = options.model_override;
    {
      std::lock_guard lock(settings_mu);
      settings = s;
    }
    host.configure(s.model);
  }

  void remember_symbols(const std::string& key, std::string_view text, bool suggest_changed) {
    auto doc = workspace->document(key);
    if (!doc) return;
    std::map<std::string, std::uint64_t> now;
    std::vector<std::pair<std::string, agent::Tag>> changed;
    for (const auto& [name, tag] : definitions_of(key)) {
      const std::uint64_t h = agent::hash_content(std::string_view(text).substr(
          tag.range.start_byte, std::min<std::size_t>(tag.range.end_byte, text.size()) - tag.range.start_byte));
      now[name] = h;
      if (suggest_changed) {
        std::lock_guard lock(results_mu);
        auto& seen = seen_symbols[key];
        auto it = seen.find(name);
        if (it == seen.end() || it->second != h) changed.emplace_back(name, tag);
      }
    }
    {
      std::lock_guard lock(results_mu);
      seen_symbols[key] = now;
    }
    if (suggest_changed) plan_suggestions(key, *doc, changed);
  }

  // The document's top-level-ish definitions with a body of a few lines (functions, methods).
  std::vector<std::pair<std::string, agent::Tag>> definitions_of(const std::string& key) {
    std::vector<std::pair<std::string, agent::Tag>> out;
    for (const agent::Tag& t : workspace->tags(key))
      if (agent::is_definition(t.kind) && t.range.end.line > t.range.start.line &&
          (t.kind == agent::TagKind::function || t.kind == agent::TagKind::method))
        out.emplace_back((t.scope.empty() ? "" : t.scope + "::") + t.name, t);
    return out;
  }

  void on_did_open(const json& params) {
    const TextDocumentItem d = params.at("textDocument").get<TextDocumentItem>();
    const std::string key = key_of_uri(d.uri);
    std::string error;
    if (!workspace->open(key, d.version, d.text, &error)) throw RpcError{error_code::invalid_params, error};
    remember_symbols(key, d.text, false);
  }

  void on_did_change(const json& params) {
    const json& td = params.at("textDocument");
    const std::string key = key_of_uri(td.at("uri").get<std::string>());
    const std::int64_t version = td.at("version").get<std::int64_t>();
    const std::vector<ContentChange> changes = params.at("contentChanges").get<std::vector<ContentChange>>();
    auto doc = workspace->document(key);
    if (!doc) throw RpcError{error_code::invalid_params, key + " is not open"};
    if (version <= doc->version)
      throw RpcError{error_code::invalid_params, key + ": change to version " + std::to_string(version) +
                                                     " is not newer than version " + std::to_string(doc->version) +
                                                     " (ignored; the document keeps its text)"};
    std::string text = doc->text;
    std::string error;
    for (const ContentChange& c : changes) {
      if (!c.range) {
        if (!workspace->replace(key, version, c.text, &error)) throw RpcError{error_code::invalid_params, error};
        text = c.text;
        continue;
      }
      std::uint32_t b = offset_at(text, c.range->start, encoding), e = offset_at(text, c.range->end, encoding);
      if (e < b) std::swap(b, e);
      if (!workspace->edit(key, version, b, e, c.text, &error)) throw RpcError{error_code::invalid_params, error};
      text.replace(b, e - b, c.text);
    }
    revalidate_suggestions(key, text);
  }

  void on_did_save(const json& params) {
    const std::string key = key_of_uri(params.at("textDocument").at("uri").get<std::string>());
    const Settings s = current_settings();
    if (!s.suggestions) return;
    const auto due = Clock::now() + std::chrono::milliseconds(s.suggestion_debounce_ms);
    {
      std::lock_guard lock(timer_mu);
      suggestion_due[key] = due;
    }
    at(due, [this, key] {
      {
        std::lock_guard lock(timer_mu);
        auto it = suggestion_due.find(key);
        if (it == suggestion_due.end() || it->second > Clock::now()) return;  // a later save re-armed it
        suggestion_due.erase(it);
      }
      if (auto doc = workspace->document(key)) remember_symbols(key, doc->text, true);
    });
  }

  void on_did_close(const json& params) {
    const std::string uri = params.at("textDocument").at("uri").get<std::string>();
    const std::string key = key_of_uri(uri);
    workspace->close(key);
    bool had = false;
    {
      std::lock_guard lock(results_mu);
      had = suggestions.erase(key) > 0;
      seen_symbols.erase(key);
    }
    if (had) notify("textDocument/publishDiagnostics", {{"uri", uri}, {"diagnostics", json::array()}});
  }

  void on_watched_files(const json& params) {
    for (const json& c : params.at("changes")) {
      const std::string path = uri_to_path(c.at("uri").get<std::string>());
      if (!path.empty()) workspace->file_changed(workspace->key_of(path));
    }
  }

  // What a code action runs on: the selection, else the innermost definition at the cursor.
  std::optional<TaskSpec> target_at(const agent::DocumentSnapshot& doc, const Range& range) {
    TaskSpec spec;
    spec.key = doc.key;
    spec.version = doc.version;
    spec.text = doc.text;
    const std::uint32_t lines = line_count(doc.text);
    if (!(range.start == range.end)) {
      spec.first_line = std::min(range.start.line, range.end.line) + 1;
      Position end = range.start.line > range.end.line ? range.start : range.end;
      spec.last_line = end.line + (end.character > 0 ? 1 : 0);
      if (spec.last_line < spec.first_line) spec.last_line = spec.first_line;
      spec.first_line = std::min(spec.first_line, lines);
      spec.last_line = std::min(spec.last_line, lines);
      return spec;
    }
    const std::uint32_t offset = offset_at(doc.text, range.start, encoding);
    const agent::SymbolAt at = workspace->symbol_at(doc.key, offset);
    if (!at.enclosing) return std::nullopt;
    spec.first_line = at.enclosing->range.start.line + 1;
    spec.last_line = std::min(at.enclosing->range.end.line + 1, lines);
    spec.symbol = at.enclosing->name;
    return spec;
  }

  json data_of(const TaskSpec& s, const std::string& uri) {
    return {{"task", std::string(agent::task_name(s.kind))},
            {"uri", uri},
            {"version", s.version},
            {"firstLine", s.first_line},
            {"lastLine", s.last_line},
            {"symbol", s.symbol},
            {"diagnostic", s.diagnostic},
            {"instruction", s.instruction}};
  }

  // The task a code action's data describes, checked against the document as it is now.
  TaskSpec spec_of(const json& data) {
    if (!data.is_object()) throw RpcError{error_code::invalid_params, "the code action carries no ponder data"};
    TaskSpec s;
    const std::string task = data.at("task").get<std::string>();
    if (task == "refactor") s.kind = TaskKind::refactor;
    else if (task == "explain") s.kind = TaskKind::explain;
    else if (task == "fix") s.kind = TaskKind::fix;
    else if (task == "ask") s.kind = TaskKind::ask;
    else throw RpcError{error_code::invalid_params, "unknown task: " + task};
    const agent::DocumentSnapshot doc = open_document(data.at("uri").get<std::string>());
    const std::int64_t version = data.value("version", doc.version);
    if (version != doc.version)
      throw RpcError{error_code::content_modified, doc.key + " changed since the action was offered (version " +
                                                       std::to_string(version) + ", now " +
                                                       std::to_string(doc.version) + "); ask again"};
    s.key = doc.key;
    s.version = doc.version;
    s.text = doc.text;
    s.first_line = data.at("firstLine").get<std::uint32_t>();
    s.last_line = data.at("lastLine").get<std::uint32_t>();
    s.symbol = data.value("symbol", "");
    s.diagnostic = data.value("diagnostic", "");
    s.instruction = data.value("instruction", "");
    s.title = title_of(s);
    return s;
  }

  static std::string title_of(const TaskSpec& s) {
    const std::string what = s.symbol.empty() ? "lines " + std::to_string(s.first_line) + "-" + std::to_string(s.last_line)
                                              : "`" + s.symbol + "`";
    switch (s.kind) {
      case TaskKind::refactor: return "improve " + what;
      case TaskKind::explain: return "explain " + what;
      case TaskKind::fix: return "fix: " + first_line(s.diagnostic, 80);
      case TaskKind::ask: return first_line(s.instruction, 80);
    }
    return "";
  }

  json on_code_action(const json& params) {
    const std::string uri = params.at("textDocument").at("uri").get<std::string>();
    const Range range = params.at("range").get<Range>();
    const json& context = params.value("context", json::object());
    const std::vector<Diagnostic> diagnostics = context.value("diagnostics", json::array()).get<std::vector<Diagnostic>>();
    const json only = context.value("only", json());
    auto wanted = [&](std::string_view kind) {
      if (!only.is_array()) return true;
      for (const json& k : only)
        if (k.is_string()) {
          const std::string o = k.get<std::string>();
          if (kind == o || (kind.size() > o.size() && kind.substr(0, o.size()) == o && kind[o.size()] == '.')) return true;
        }
      return false;
    };
    json actions = json::array();
    const Settings s = current_settings();
    auto doc = workspace->document(key_of_uri(uri));
    if (!doc || !s.code_actions) return actions;
    std::vector<CodeAction> out;
    auto add = [&](TaskSpec spec, const std::string& kind, const std::string& title, std::vector<Diagnostic> diags) {
      spec.title = title_of(spec);
      CodeAction a;
      a.title = title;
      a.kind = kind;
      a.diagnostics = std::move(diags);
      const json data = data_of(spec, uri);
      if (caps.code_action_resolve_edit) a.data = data;
      else a.command = Command{title, kCommandRun, json::array({data})};
      out.push_back(std::move(a));
    };
    // Suggestions already computed: their edit comes with the action.
    {
      std::lock_guard lock(results_mu);
      for (const Suggestion& sg : suggestions[doc->key]) {
        if (sg.range.end.line < range.start.line || sg.range.start.line > range.end.line || !wanted("quickfix")) continue;
        std::string text = doc->text;
        bool ok = true;
        for (const agent::EditBlock& e : sg.edits) {
          agent::AppliedEdit applied = agent::apply_edit(text, e);
          if (!applied.ok) ok = false;
          else text = std::move(applied.text);
        }
        if (!ok) continue;
        CodeAction a;
        a.title = "Ponder: " + sg.summary;
        a.kind = "quickfix";
        a.is_preferred = true;
        agent::FileChange fc;
        fc.absolute = workspace->absolute(doc->key);
        fc.before = doc->text;
        fc.after = text;
        a.edit = workspace_edit({fc}, sg.summary, "", "ponder-" + sg.result_id);
        Diagnostic d;
        d.range = sg.range;
        d.severity = 4;
        d.source = "ponder";
        d.message = sg.summary;
        a.diagnostics.push_back(d);
        a.command = Command{"Show ponder's reasoning", kCommandShowReasoning, json::array({sg.result_id})};
        out.push_back(std::move(a));
      }
    }
    if (auto target = target_at(*doc, range)) {
      const std::string what = target->symbol.empty() ? "the selection" : "`" + target->symbol + "`";
      if (wanted("refactor.rewrite")) add(*target, "refactor.rewrite", "Ponder: improve " + what, {});
      if (wanted("refactor.explain")) {
        TaskSpec e = *target;
        e.kind = TaskKind::explain;
        add(e, "refactor.explain", "Ponder: explain " + what, {});
      }
    }
    for (const Diagnostic& d : diagnostics) {
      if (d.source == "ponder" || !wanted("quickfix")) continue;
      TaskSpec spec;
      spec.kind = TaskKind::fix;
      spec.key = doc->key;
      spec.version = doc->version;
      const std::uint32_t lines = line_count(doc->text);
      // The definition around the problem, else a few lines around it.
      const agent::SymbolAt at = workspace->symbol_at(doc->key, offset_at(doc->text, d.range.start, encoding));
      if (at.enclosing) {
        spec.first_line = at.enclosing->range.start.line + 1;
        spec.last_line = std::min(at.enclosing->range.end.line + 1, lines);
        spec.symbol = at.enclosing->name;
      } else {
        spec.first_line = std::max<std::uint32_t>(d.range.start.line, 5) - 4;
        spec.last_line = std::min(d.range.end.line + 5, lines);
      }
      spec.first_line = std::min(spec.first_line, std::max(lines, 1u));
      spec.last_line = std::max(spec.last_line, spec.first_line);
      spec.diagnostic = "line " + std::to_string(std::uint64_t{d.range.start.line} + 1) + ": " + d.message +
                        (d.source.empty() ? "" : " (" + d.source + ")");
      add(spec, "quickfix", "Ponder: fix “" + first_line(d.message, 60) + "”", {d});
    }
    for (CodeAction& a : out) {
      if (caps.code_action_literals) actions.push_back(a);
      else if (a.command) actions.push_back(*a.command);
    }
    return actions;
  }

  // codeAction/resolve: runs the task; answers with the action and its edit.
  void on_resolve(const json& id, const json& params) {
    json action = params;
    const TaskSpec spec = spec_of(params.value("data", json()));
    auto job = std::make_shared<Job>();
    job->request_id = id;
    job->key = "task:" + spec.key + ":" + std::string(agent::task_name(spec.kind)) + ":" +
               std::to_string(spec.first_line) + "-" + std::to_string(spec.last_line);
    job->run = [this, spec, action](Job& j) mutable {
      run_reply(j, [&] {
        Outcome o = run_task(j, spec);
        if (spec.kind == TaskKind::explain) {
          remember_explanation(spec, o.record);
          action["command"] = Command{"Show the explanation", kCommandShowReasoning, json::array({o.record.id})};
          progress_end(j.token, "explained");
          return action;
        }
        if (o.result.edits.files.empty()) throw RpcError{error_code::request_failed, no_edit_message(o)};
        action["edit"] = workspace_edit_json(workspace_edit(o.result.edits.files, o.record.summary.empty() ? spec.title : o.record.summary,
                                                            o.record.rationale, "ponder-" + o.record.id));
        action["command"] = Command{"Show ponder's reasoning", kCommandShowReasoning, json::array({o.record.id})};
        progress_end(j.token, o.record.summary);
        return action;
      });
    };
    submit(job);
  }

  // Runs `body` and answers the job's request with its result or error; the job stops counting
  // as running just before its answer goes out.
  void run_reply(Job& j, const std::function<json()>& body) {
    auto answering = [&j] {
      if (j.owner) j.owner->answered(j);
    };
    try {
      json result = body();
      answering();
      reply(j.request_id, result);
    } catch (const RpcError& e) {
      progress_end(j.token, e.code == error_code::request_cancelled ? "cancelled" : "failed");
      if (e.code == error_code::request_failed) show_message(2, e.message);
      answering();
      reply_error(j.request_id, e.code, e.message);
    } catch (const std::exception& e) {
      progress_end(j.token, "failed");
      answering();
      reply_error(j.request_id, error_code::internal_error, e.what());
    }
  }

  void on_execute_command(const json& id, const json& params) {
    const std::string command = params.at("command").get<std::string>();
    const json args = params.value("arguments", json::array());
    if (command == kCommandCancel) {
      cancel_all();
      return reply(id, nullptr);
    }
    if (command == kCommandStatus) {
      return reply(id, {{"model", host.description()},
                        {"running", jobs->running()},
                        {"queued", jobs->queued()},
                        {"indexReady", index_done.load()}});
    }
    if (command == kCommandShowReasoning) return show_reasoning(id, args.is_array() && !args.empty() ? args[0] : json());
    TaskSpec spec;
    if (command == kCommandRun) {
      if (!args.is_array() || args.empty()) throw RpcError{error_code::invalid_params, "ponder.run takes the action's data"};
      spec = spec_of(args[0]);
    } else if (command == kCommandAsk) {
      if (!args.is_array() || args.empty() || !args[0].is_object())
        throw RpcError{error_code::invalid_params, "ponder.ask takes {uri, range, instruction}"};
      const json& a = args[0];
      const agent::DocumentSnapshot doc = open_document(a.at("uri").get<std::string>());
      Range r = a.contains("range") ? a["range"].get<Range>() : Range{};
      auto target = target_at(doc, r);
      if (!target) {  // no definition at the cursor: the whole file
        target = TaskSpec{};
        target->key = doc.key;
        target->version = doc.version;
        target->text = doc.text;
        target->first_line = 1;
        target->last_line = line_count(doc.text);
      }
      spec = *target;
      spec.kind = TaskKind::ask;
      spec.instruction = a.at("instruction").get<std::string>();
      if (spec.instruction.find_first_not_of(" \t\r\n") == std::string::npos)
        throw RpcError{error_code::invalid_params, "ponder.ask needs an instruction"};
      spec.title = title_of(spec);
    } else {
      throw RpcError{error_code::invalid_params, "unknown command: " + command};
    }
    auto job = std::make_shared<Job>();
    job->request_id = id;
    job->key = "command:" + spec.key + ":" + std::string(agent::task_name(spec.kind)) + ":" +
               std::to_string(spec.first_line) + "-" + std::to_string(spec.last_line);
    job->run = [this, spec](Job& j) {
      // As in run_reply: the job stops counting as running just before an answer goes out. (The
      // applyEdit path answers later, from the client's reply, after the job has returned.)
      auto answering = [&j] {
        if (j.owner) j.owner->answered(j);
      };
      try {
        Outcome o = run_task(j, spec);
        if (spec.kind == TaskKind::explain) {
          remember_explanation(spec, o.record);
          progress_end(j.token, "explained");
          answering();
          show_reasoning(j.request_id, o.record.id);
          return;
        }
        if (o.result.edits.files.empty()) {
          if (spec.kind == TaskKind::ask && o.result.answer.edits.empty() && !o.record.rationale.empty()) {
            progress_end(j.token, "answered");  // a question: the answer is the result
            answering();
            return show_reasoning(j.request_id, o.record.id);
          }
          throw RpcError{error_code::request_failed, no_edit_message(o)};
        }
        const std::string label = o.record.summary.empty() ? spec.title : o.record.summary;
        json edit = workspace_edit_json(workspace_edit(o.result.edits.files, label, o.record.rationale, "ponder-" + o.record.id));
        progress_end(j.token, label);
        const json request_id = j.request_id;
        const std::string result_id = o.record.id;
        request("workspace/applyEdit", {{"label", label}, {"edit", edit}},
                [this, request_id, result_id, label](const json& result, const json* error) {
                  const bool applied = !error && result.is_object() && result.value("applied", false);
                  reply(request_id, {{"applied", applied}, {"resultId", result_id}, {"summary", label}});
                });
      } catch (const RpcError& e) {
        progress_end(j.token, e.code == error_code::request_cancelled ? "cancelled" : "failed");
        if (e.code == error_code::request_failed) show_message(2, e.message);
        answering();
        reply_error(j.request_id, e.code, e.message);
      } catch (const std::exception& e) {
        progress_end(j.token, "failed");
        answering();
        reply_error(j.request_id, error_code::internal_error, e.what());
      }
    };
    submit(job);
  }

  void show_reasoning(const json& id, const json& which) {
    std::optional<Record> r;
    {
      std::lock_guard lock(results_mu);
      for (auto it = records.rbegin(); it != records.rend(); ++it)
        if (which.is_null() || (which.is_string() && which.get<std::string>() == it->id)) {
          r = *it;
          break;
        }
    }
    if (!r) throw RpcError{error_code::invalid_params, "no ponder result to show"};
    const std::string md = markdown_of(*r);
    notify("ponder/reasoning", {{"id", r->id}, {"title", r->title}, {"text", ""}, {"done", true}, {"markdown", md}});
    if (caps.show_document) {
      std::filesystem::path dir = options.reasoning_dir.empty() ? std::filesystem::temp_directory_path() / "ponder-reasoning"
                                                                : std::filesystem::path(options.reasoning_dir);
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      const std::filesystem::path file = dir / ("ponder-" + r->id + ".md");
      std::ofstream(file, std::ios::binary) << md;
      request("window/showDocument", {{"uri", path_to_uri(file.string())}, {"takeFocus", true}},
              [](const json&, const json*) {});
    }
    reply(id, {{"resultId", r->id}, {"markdown", md}});
  }

  // ---- hover ----
  std::string explanation_key(const std::string& key, const agent::Tag& def, std::string_view text) {
    const std::size_t end = std::min<std::size_t>(def.range.end_byte, text.size());
    const std::size_t begin = std::min<std::size_t>(def.range.start_byte, end);
    return key + '\0' + def.name + '\0' + std::to_string(agent::hash_content(text.substr(begin, end - begin)));
  }

  void remember_explanation(const TaskSpec& spec, const Record& r) {
    if (r.answer.empty() || spec.diagnostic.empty()) return;
    std::lock_guard lock(results_mu);
    if (explanations.size() >= 2000) explanations.erase(explanations.begin());  // bounded (any one goes)
    explanations[spec.diagnostic] = r.answer;  // explain specs carry their cache key there
  }

  json on_hover(const json& id, const json& params) {
    const std::string uri = params.at("textDocument").at("uri").get<std::string>();
    const Position pos = params.at("position").get<Position>();
    auto doc = workspace->document(key_of_uri(uri));
    if (!doc) return nullptr;
    const std::uint32_t offset = offset_at(doc->text, pos, encoding);
    // Over code ponder wrote: its reasoning.
    {
      std::lock_guard lock(results_mu);
      for (auto it = records.rbegin(); it != records.rend(); ++it) {
        if (it->key != doc->key) continue;
        for (const std::string& ins : it->inserted) {
          if (ins.size() < 8) continue;
          const std::size_t at = doc->text.find(ins);
          if (at != std::string::npos && at <= offset && offset < at + ins.size())
            return {{"contents", {{"kind", caps.hover_markdown ? "markdown" : "plaintext"}, {"value", markdown_of(*it)}}},
                    {"range", range_of(doc->text, static_cast<std::uint32_t>(at), static_cast<std::uint32_t>(at + ins.size()))}};
        }
      }
    }
    const agent::SymbolAt at = workspace->symbol_at(doc->key, offset);
    if (!at.name) return nullptr;
    // The definition: this one, else one in the workspace (this file's first).
    std::string def_key;
    std::optional<agent::Tag> def;
    if (agent::is_definition(at.name->kind)) {
      def_key = doc->key;
      def = at.name;
    } else {
      for (auto& [k, t] : workspace->definitions(at.name->name))
        if (!def || k == doc->key) {
          def_key = k;
          def = t;
          if (k == doc->key) break;
        }
    }
    if (!def) return nullptr;
    std::optional<std::string> def_text = def_key == doc->key ? std::optional(doc->text) : workspace->read(workspace->absolute(def_key));
    if (!def_text) return nullptr;
    const Range name_range = range_of(doc->text, at.name->name_range.start_byte, at.name->name_range.end_byte);
    const std::string ekey = explanation_key(def_key, *def, *def_text);
    const std::string lang(agent::language_name(agent::detect_language(def_key)));
    std::string header = "```" + lang + "\n" + def->signature + "\n```\n*" + def_key + ":" +
                         std::to_string(def->range.start.line + 1) + "*";
    auto hover = [&](const std::string& md) {
      return json{{"contents", {{"kind", caps.hover_markdown ? "markdown" : "plaintext"}, {"value", md}}}, {"range", name_range}};
    };
    {
      std::lock_guard lock(results_mu);
      if (auto it = explanations.find(ekey); it != explanations.end()) return hover(header + "\n\n" + it->second);
    }
    const Settings s = current_settings();
    if (!s.hover || host.state() == EngineHost::State::failed) return hover(header);
    TaskSpec spec;
    spec.kind = TaskKind::explain;
    spec.key = def_key;
    spec.text = *def_text;
    spec.version = def_key == doc->key ? doc->version : -1;
    spec.first_line = def->range.start.line + 1;
    spec.last_line = std::min(def->range.end.line + 1, line_count(*def_text));
    spec.symbol = def->name;
    spec.diagnostic = ekey;  // (the explanation's cache key; explain prompts do not use it)
    spec.title = title_of(spec);
    auto job = std::make_shared<Job>();
    job->key = "explain:" + ekey;
    if (s.hover_waits) {
      job->request_id = id;
      job->run = [this, spec, header, name_range, hover_md = caps.hover_markdown](Job& j) {
        run_reply(j, [&] {
          Outcome o = run_task(j, spec);
          remember_explanation(spec, o.record);
          progress_end(j.token, "explained");
          return json{{"contents", {{"kind", hover_md ? "markdown" : "plaintext"}, {"value", header + "\n\n" + o.record.answer}}},
                      {"range", name_range}};
        });
      };
      submit(job);
      throw Deferred{};
    }
    if (jobs->background_pending(job->key))  // already being explained: do not start it again
      return hover(header + "\n\n*ponder is writing an explanation…*");
    job->background = true;
    job->run = [this, spec](Job& j) {
      try {
        Outcome o = run_task(j, spec);
        remember_explanation(spec, o.record);
      } catch (const RpcError& e) {
        if (e.code != error_code::request_cancelled) log::info("explanation of ", spec.symbol, ": ", e.message);
      }
    };
    submit(job);
    return hover(header + "\n\n*ponder is writing an explanation… hover again in a moment.*");
  }
  struct Deferred {};  // the handler answers later, from a job

  // ---- suggestions ----
  void plan_suggestions(const std::string& key, const agent::DocumentSnapshot& doc,
                        const std::vector<std::pair<std::string, agent::Tag>>& changed) {
    const Settings s = current_settings();
    std::size_t n = 0;
    for (const auto& [name, tag] : changed) {
      if (n++ >= s.suggestions_per_file) break;
      {
        std::lock_guard lock(results_mu);
        const auto now = Clock::now();
        while (!suggestion_times.empty() && now - suggestion_times.front() > std::chrono::hours(1)) suggestion_times.pop_front();
        if (suggestion_times.size() >= s.suggestions_per_hour) {
          log::info("suggestions: the hourly budget (", s.suggestions_per_hour, ") is spent");
          return;
        }
        suggestion_times.push_back(now);
      }
      TaskSpec spec;
      spec.kind = TaskKind::refactor;
      spec.key = key;
      spec.version = doc.version;
      spec.text = doc.text;
      spec.first_line = tag.range.start.line + 1;
      spec.last_line = std::min(tag.range.end.line + 1, line_count(doc.text));
      spec.symbol = tag.name;
      spec.title = title_of(spec);
      auto job = std::make_shared<Job>();
      job->background = true;
      job->key = "suggest:" + key + ":" + name;
      job->run = [this, spec](Job& j) {
        try {
          Outcome o = run_task(j, spec);
          add_suggestion(spec, o);
        } catch (const RpcError& e) {
          if (e.code != error_code::request_cancelled) log::info("suggestion for ", spec.symbol, ": ", e.message);
        }
      };
      submit(job);
    }
  }

  void add_suggestion(const TaskSpec& spec, const Outcome& o) {
    if (o.result.edits.files.size() != 1 || o.result.edits.files[0].absolute != workspace->absolute(spec.key)) return;
    auto doc = workspace->document(spec.key);
    if (!doc) return;
    Suggestion sg;
    sg.result_id = o.record.id;
    sg.summary = o.record.summary.empty() ? spec.title : o.record.summary;
    sg.edits = o.result.edits.files[0].edits;
    {
      std::lock_guard lock(results_mu);
      auto& list = suggestions[spec.key];
      std::erase_if(list, [&](const Suggestion& x) { return x.summary == sg.summary; });
      list.push_back(sg);
    }
    revalidate_suggestions(spec.key, doc->text);
  }

  // Keeps the suggestions whose edits still apply to `text`, at where they apply now.
  void revalidate_suggestions(const std::string& key, const std::string& text) {
    json diagnostics = json::array();
    {
      std::lock_guard lock(results_mu);
      auto it = suggestions.find(key);
      if (it == suggestions.end()) return;
      std::vector<Suggestion> kept;
      for (Suggestion& sg : it->second) {
        const std::string& search = sg.edits.empty() ? std::string() : sg.edits.front().search;
        bool ok = !search.empty();
        std::string t = text;
        for (const agent::EditBlock& e : sg.edits) {
          agent::AppliedEdit a = agent::apply_edit(t, e);
          if (!a.ok) {
            ok = false;
            break;
          }
          t = std::move(a.text);
        }
        if (!ok) continue;
        const std::size_t at = text.find(search);
        if (at != std::string::npos) sg.range = range_of(text, static_cast<std::uint32_t>(at), static_cast<std::uint32_t>(at + search.size()));
        Diagnostic d;
        d.range = sg.range;
        d.severity = 4;
        d.source = "ponder";
        d.code = "ponder.suggestion";
        d.message = sg.summary;
        d.data = {{"resultId", sg.result_id}};
        diagnostics.push_back(d);
        kept.push_back(std::move(sg));
      }
      it->second = std::move(kept);
    }
    auto doc = workspace->document(key);
    json params = {{"uri", uri_of_key(key)}, {"diagnostics", diagnostics}};
    if (doc) params["version"] = doc->version;
    notify("textDocument/publishDiagnostics", params);
  }

  // ---- dispatch ----
  void handle(std::string_view body) {
    Message m;
    int code = 0;
    std::string error;
    json id;
    if (!parse_message(body, &m, &code, &error, &id)) {
      log::warn("bad message: ", error);
      reply_error(id, code, error);
      return;
    }
    if (m.kind == Message::Kind::response) return on_response(m);
    const bool is_request = m.kind == Message::Kind::request;
    if (m.method == "exit") {
      exited = true;
      exit_status = shutdown ? 0 : 1;
      finish(exit_status);
      return;
    }
    if (!initialized && m.method != "initialize") {
      if (is_request) reply_error(m.id, error_code::server_not_initialized, "the server is not initialized yet");
      return;
    }
    if (shutdown && is_request) return reply_error(m.id, error_code::invalid_request, "the server is shutting down");
    try {
      if (is_request) dispatch_request(m);
      else dispatch_notification(m);
    } catch (const Deferred&) {
      // answered later by a job
    } catch (const RpcError& e) {
      if (is_request) reply_error(m.id, e.code, e.message);
      else {
        log::warn(m.method, ": ", e.message);
        log_message(2, "ponder: " + m.method + ": " + e.message);
      }
    } catch (const std::exception& e) {  // a wrong shape in the params
      const std::string why = std::string("invalid params for ") + m.method + ": " + e.what();
      if (is_request) reply_error(m.id, error_code::invalid_params, why);
      else {
        log::warn(why);
        log_message(1, "ponder: " + why);
      }
    }
  }
  int exit_status = 1;

  void dispatch_request(const Message& m) {
    const json& p = m.params.is_null() ? json::object() : m.params;
    if (m.method == "initialize") {
      if (initialized) return reply_error(m.id, error_code::invalid_request, "initialize was already received");
      json result = on_initialize(p);
      initialized = true;
      return reply(m.id, result);
    }
    if (m.method == "shutdown") {
      shutdown = true;
      cancel_all();
      return reply(m.id, nullptr);
    }
    if (m.method == "textDocument/codeAction") return reply(m.id, on_code_action(p));
    if (m.method == "codeAction/resolve") return on_resolve(m.id, p);
    if (m.method == "textDocument/hover") return reply(m.id, on_hover(m.id, p));
    if (m.method == "workspace/executeCommand") return on_execute_command(m.id, p);
    reply_error(m.id, error_code::method_not_found, "ponder does not handle " + m.method);
  }

  void dispatch_notification(const Message& m) {
    const json& p = m.params.is_null() ? json::object() : m.params;
    if (m.method == "initialized") return on_initialized();
    if (m.method == "textDocument/didOpen") return on_did_open(p);
    if (m.method == "textDocument/didChange") return on_did_change(p);
    if (m.method == "textDocument/didSave") return on_did_save(p);
    if (m.method == "textDocument/didClose") return on_did_close(p);
    if (m.method == "workspace/didChangeWatchedFiles") return on_watched_files(p);
    if (m.method == "workspace/didChangeConfiguration") return on_did_change_configuration(p);
    if (m.method == "$/cancelRequest") {
      const json cid = p.at("id");
      jobs->cancel([&](const Job& j) { return j.request_id == cid; });
      return;
    }
    if (m.method == "window/workDoneProgress/cancel") {
      const std::string token = p.at("token").is_string() ? p.at("token").get<std::string>() : p.at("token").dump();
      jobs->cancel([&](const Job& j) { return j.token == token; });
      return;
    }
    // Other notifications ($/setTrace, ...) are not for us.
  }

  void on_response(const Message& m) {
    if (!m.id.is_string()) return;
    const std::string id = m.id.get<std::string>();
    if (id.rfind("ponder-", 0) != 0) return;
    std::function<void(const json&, const json*)> done;
    {
      std::lock_guard lock(pending_mu);
      auto it = pending.find(std::atoll(id.c_str() + 7));
      if (it == pending.end()) return;
      done = std::move(it->second);
      pending.erase(it);
    }
    done(m.result, m.error ? &*m.error : nullptr);
  }

  void wait_idle() {
    while (true) {
      if (jobs->idle() && (!workspace || index_done)) {
        std::lock_guard tl(timer_mu);
        if (suggestion_due.empty()) return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
};

Server::Server(ServerOptions options, Send send) : impl_(std::make_unique<Impl>(std::move(options), std::move(send))) {}
Server::~Server() = default;

void Server::handle(std::string_view body) {
  try {
    impl_->handle(body);
  } catch (const std::exception& e) {  // never take the server down
    log::error("internal error: ", e.what());
  }
}

void Server::transport_error(std::string_view message) {
  log::warn("transport: ", message);
  impl_->reply_error(nullptr, error_code::invalid_request, std::string("ponder: ") + std::string(message));
}

bool Server::exited() const { return impl_->exited; }
int Server::exit_code() const { return impl_->exit_status; }
void Server::wait_idle() { impl_->wait_idle(); }

}  // namespace ponder::lsp
