#pragma once
// The tasks ponder runs for the editor — refactor, explain, fix — from a target in a document
// to checked edits with the model's reasoning attached. This is the thin path end to end: the
// prompt holds the task's instructions and the target with line numbers; the workspace context
// (definitions, callers, outline, recent changes, repo map within a token budget) comes next.
#include <cstdint>
#include <filesystem>
#include <list>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>

#include "agent/answer.h"
#include "agent/edit_check.h"
#include "engine/engine.h"

namespace ponder::agent {

enum class TaskKind { refactor, explain, fix, ask };
std::string_view task_name(TaskKind kind);

struct TaskTarget {
  std::string path;       // relative to the workspace root
  std::string text;       // the document's whole text (the version the edits are for)
  std::uint32_t first_line = 1, last_line = 0;  // 1-based, inclusive; last 0 = to the end
  std::string symbol;     // the symbol's name when the target is one ("" for a range)
};

struct TaskRequest {
  TaskKind kind = TaskKind::refactor;
  TaskTarget target;
  std::string diagnostic;  // fix: the problem as the editor reported it
  std::string instruction; // ask: what the developer asked for, in their words
};

/// The user turn for `request`, from its template, after `context` (the workspace context the
/// prompt builder chose; may be empty). False with `error` when the target's lines are not in
/// the document, a fix has no diagnostic or an ask no instruction.
bool task_prompt(const TaskRequest& request, std::string_view context, std::string* out, std::string* error);

/// `code` (lines of a file, the first of them line `first_line`) in a fence named by the
/// language of `path`, each line with its number.
std::string numbered_code(std::string_view path, std::string_view code, std::uint32_t first_line);

class Index;
class RepoMapCache;
class TaskCache;

/// Stops a running task from another thread: cancel() before the generation starts keeps it
/// from starting; during it, the engine stops within one decode step (StopReason::cancelled).
class TaskControl {
 public:
  void cancel();
  bool cancelled() const;
  /// Used by the task's generation: records the running request (false, and the request is
  /// cancelled, when cancel() came first); end() forgets it.
  bool begin(Engine& engine, RequestId id);
  void end();

 private:
  mutable std::mutex mu_;
  Engine* engine_ = nullptr;
  RequestId id_ = 0;
  bool cancelled_ = false;
};

struct TaskOptions {
  TaskCache* cache = nullptr;               // answers of earlier runs (null: always generate)
  const Index* index = nullptr;             // the workspace context's source (null: the task alone)
  std::size_t budget_tokens = 0;            // the prompt's budget; 0: what the context leaves
                                            // after max_tokens
  std::vector<std::string> working_files;   // the files the user has open (stable repo map)
  RepoMapCache* map_cache = nullptr;        // the repo map kept between tasks
  std::uint32_t max_tokens = 4096;
  std::int64_t reasoning_budget = -1;
  std::optional<SamplingParams> sampling;   // unset: the model's defaults
  std::vector<std::int32_t> forced;         // for tests: the answer to force
  TaskControl* control = nullptr;           // to cancel it from another thread
  EventSink on_event;                       // the engine's events as they come (its thread)
  std::shared_mutex* index_lock = nullptr;  // held shared while `index` is read (the prompt)
};

struct TaskResult {
  bool cached = false;                  // the answer came from the TaskCache (edits re-checked)
  std::size_t prompt_tokens = 0;        // the user turn's tokens
  std::vector<std::string> left_out;    // context sections cut short by the budget
  ParsedAnswer answer;   // reasoning, summary, edit blocks, parse problems
  CheckedEdits edits;    // what applied and checked out, and what did not (with reasons)
  GenerateStats stats;
  StopReason reason = StopReason::max_tokens;
  std::string error;     // StopReason::error
};

/// A change to review: its unified diff (new-revision paths) and message, with workspace
/// context the caller chose (may be empty).
struct ReviewRequest {
  std::string diff;
  std::string message;
  std::string context;
  std::size_t part = 0, parts = 0;  // a part of a larger change (1-based), when parts > 1
};

struct ReviewResult {
  std::vector<Finding> findings;      // each with the review's reasoning
  std::vector<std::string> problems;  // finding headers that did not parse
  ParsedAnswer answer;
  GenerateStats stats;
  StopReason reason = StopReason::max_tokens;
  std::string error;                  // StopReason::error
};

/// The user turn of a review (template review.md).
bool review_prompt(const ReviewRequest& request, std::string* out, std::string* error);

/// Runs a review on `engine` and waits. False with `error` for an empty diff or a request the
/// engine refuses (e.g. longer than its context).
bool run_review(Engine& engine, const ReviewRequest& request, const TaskOptions& options, ReviewResult* result,
                std::string* error);

/// Answers of finished tasks, keyed by everything that decides the answer: the task, the whole
/// prompt (so the target's text and its context), the model, and the generation settings. A
/// hit skips generation; its edits are checked again against the files as they are now.
/// Bounded: the least recently used answers go first. Thread-safe.
class TaskCache {
 public:
  explicit TaskCache(std::size_t max_entries = 64) : max_entries_(max_entries) {}
  std::size_t size() const;

 private:
  friend bool run_task(Engine&, const TaskRequest&, const std::filesystem::path&, const ReadText&, const TaskOptions&,
                       TaskResult*, std::string*);
  struct Entry {
    std::uint64_t key;
    ParsedAnswer answer;
    GenerateStats stats;
    StopReason reason;
  };
  std::optional<Entry> find(std::uint64_t key);
  void put(Entry entry);
  std::size_t max_entries_;
  mutable std::mutex mu_;
  std::list<Entry> entries_;  // most recently used first
};

/// Runs the task on `engine` and waits: builds the prompt (prompt_builder.h), generates, parses
/// the answer and
/// checks its edits against the workspace under `root` (documents read through `read`; the
/// target's own file is served from request.target.text). False with `error` when the request
/// cannot be made (a bad target, a malformed engine request).
bool run_task(Engine& engine, const TaskRequest& request, const std::filesystem::path& root, const ReadText& read,
              const TaskOptions& options, TaskResult* result, std::string* error);

}  // namespace ponder::agent
