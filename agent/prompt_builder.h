#pragma once
// The prompt of a task with its workspace context, filled to a token budget counted by the
// model's tokenizer.
//
// What is kept when the budget is short, most important first: the task's instructions and its
// target (never cut: too big a target is an error); the definition that encloses the target;
// the definitions of the symbols the target uses; where the target's symbol is used; the
// outline of its file; its changes since the last commit; the repo map for whatever is left. Items are whole (a symbol is never
// cut in half); what did not fit is reported.
//
// Layout is the reverse — repo map, changes, outline, uses, definitions, enclosing definition,
// then the task — so that requests about the same workspace share the longest prompt prefix and the
// engine's prefix cache pays off.
//
// Privacy: a target in a file that holds secrets by its name (.env, keys, credentials: see
// privacy.h) is refused; context never comes from such files; secret-looking text in the
// context is masked. (The target itself is sent as it is: its edits must match it.)
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "agent/index.h"
#include "agent/task.h"
#include "agent/token_counter.h"

namespace ponder::agent {

/// The repo map of earlier prompts, kept while it is still right. With a working set (the files
/// the user has open), the map is personalised to that set rather than to each target, and it
/// is rebuilt only when the set, that budget, or a
/// file outside the set changes — so successive prompts about one workspace start with the same
/// map and the engine reuses their KV cache. The map's budget is then a fixed share of the
/// prompt's (PromptOptions::map_share) when there is room for it. Thread-safe.
class RepoMapCache {
 public:
  /// How many times a map was rendered (the rest were reused).
  std::size_t renders() const;

 private:
  friend bool build_prompt(const struct TaskRequest&, const Index*, const struct PromptOptions&, struct BuiltPrompt*,
                           std::string*);
  mutable std::mutex mu_;
  std::uint64_t key_ = 0;
  bool valid_ = false;
  std::string text_;
  std::size_t tokens_ = 0;  // of the map's whole section
  std::size_t renders_ = 0;
};

struct PromptOptions {
  std::size_t budget_tokens = 16384;     // the whole user turn
  const TokenCounter* counter = nullptr;  // null: ByteEstimateCounter (tests use the tokenizer)
  std::size_t definitions_per_name = 2;   // definitions shown for one referenced name
  std::size_t max_uses = 20;              // uses of the target's symbol listed
  std::vector<std::string> recent_changes;  // the target file's diff hunks since HEAD (git_changes.h)
  /// The files the user is working on (index paths). Empty: the repo map is personalised to the
  /// target and takes exactly what is left; else see RepoMapCache.
  std::vector<std::string> working_files;
  RepoMapCache* map_cache = nullptr;      // with working_files: reuse the map while it holds
  std::size_t map_step = 512;             // with working_files: the map's budget is a multiple
  double map_share = 0.5;                 // with working_files: of the budget, at most (when
                                          // there is room, exactly: so it does not move)
};

struct SectionReport {
  std::string name;          // "task", "scope", "definitions", "uses", "outline", "changes",
                             // "repo map"
  std::size_t items = 0;     // items included
  std::size_t left_out = 0;  // items that did not fit
  std::size_t tokens = 0;    // what the section costs (header included), 0 when left out
};

struct BuiltPrompt {
  std::string text;     // the user turn
  std::size_t tokens = 0;
  std::vector<SectionReport> sections;  // in priority order
};

/// The whole lines of `range` (its first row to its last) of `path`, numbered, in a fence named by
/// the language, secrets masked: from `text` when given (an editor's version of the file), else
/// read from the index's source. "" when the file cannot be read or the range is not in it.
std::string definition_lines(const Index& index, const std::string& path, const Range& range, const std::string* text);

/// Builds the prompt of `request` with context from `index` (null: the task alone). False with
/// `error` when the target is not in its document or the task alone exceeds the budget.
bool build_prompt(const TaskRequest& request, const Index* index, const PromptOptions& options, BuiltPrompt* out,
                  std::string* error);

}  // namespace ponder::agent
