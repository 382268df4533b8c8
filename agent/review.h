#pragma once
// Commit review: the changes read_changes() found, with the context of each hunk read at the
// reviewed revision, planned into prompts that fit a token budget, run through the Engine, and
// merged into one list of findings.
//
// The plan: a change whose diff fits the budget is one prompt; a larger one is cut into parts —
// whole files in path order, a file too large for one prompt by its hunks — each reviewed on its
// own, their findings merged and de-duplicated. Nothing is dropped silently: files with nothing
// to review (binary files, submodules, mode changes), files that hold secrets by their name, and
// hunks larger than a whole prompt are listed with the reason, and so is context that did not fit.
//
// Context of a hunk, most important first: the definition the changed lines are in (when the
// hunk does not show it whole), the definitions of the names the added lines use, and where the
// changed definitions are used elsewhere in the repository. Secret-looking text is masked in the
// diff and the context (privacy.h).
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "agent/answer.h"
#include "agent/review_changes.h"
#include "agent/task.h"
#include "agent/token_counter.h"

namespace ponder::agent {

class Index;

struct ReviewPlanOptions {
  const TokenCounter* counter = nullptr;  // null: ByteEstimateCounter
  std::size_t budget_tokens = 16384;      // each prompt (the user turn), at most
  double diff_share = 0.75;               // of what a part's prompt leaves after the instructions,
                                          // its diff takes at most this much when the change is
                                          // cut into parts (the rest is for context)
  std::size_t definitions_per_name = 2;   // definitions shown for one name the added lines use
  std::size_t uses_per_symbol = 10;       // places listed where one changed definition is used
  std::uint32_t max_scope_lines = 150;    // an enclosing definition longer than this is not shown
};

/// Something of the change the model does not see, and why.
struct NotReviewed {
  std::string path;
  std::string reason;  // "binary file", "holds secrets by its name", "hunk @@ -1,3 +1,900 @@ is ..."
};

struct ReviewPart {
  std::vector<std::string> files;  // the files whose diff it holds (some hunks only, when split)
  ReviewRequest request;           // its diff, message, context, part number
  std::string prompt;              // the user turn
  std::size_t tokens = 0;          // the user turn's tokens
  std::size_t diff_tokens = 0;
  std::size_t context_items = 0;     // context items in the prompt
  std::size_t context_left_out = 0;  // context items that did not fit
};

struct ReviewPlan {
  std::vector<ReviewPart> parts;          // empty when nothing is left to review
  std::vector<NotReviewed> not_reviewed;  // in path order
  std::vector<std::string> notes;         // "the commit message was cut to 2000 tokens", ...
  std::size_t budget_tokens = 0;
};

/// Plans the review of `changes` with context from `index` (built over changes.new_side; null:
/// the diff and the message alone). False with `error` when even the instructions and the
/// message do not fit the budget.
bool plan_review(const ChangeSet& changes, const Index* index, const ReviewPlanOptions& options, ReviewPlan* out,
                 std::string* error);

/// Findings of several parts as one list: a finding on the same file, at overlapping (or
/// touching) lines, with the same title in other words (most of the words of the shorter one),
/// is a duplicate — the first one stays, with the higher severity of the two. Sorted by
/// severity, path, line, title. `duplicates` receives how many were merged away.
std::vector<Finding> merge_findings(std::vector<Finding> findings, std::size_t* duplicates = nullptr);

struct ReviewRun {
  struct Part {
    std::vector<std::string> files;
    std::size_t prompt_tokens = 0;  // the user turn's
    ReviewResult result;            // its findings, parse problems, reasoning, statistics
  };
  std::vector<Part> parts;
  std::vector<Finding> findings;  // all parts', merged (merge_findings)
  std::size_t duplicates = 0;
};

/// Sees the events of every part's generation (on the Engine's thread): the part's index, then
/// the event.
using ReviewObserver = std::function<void(std::size_t part, const GenerateEvent& event)>;

/// Runs every part of `plan` on `engine` in order and merges their findings. `options` as for
/// run_review (forced tokens, when given, are forced in each part). False with `error` when the
/// engine refuses a part (e.g. longer than its context) or a part fails (StopReason::error):
/// the parts run before it are in `out`.
bool run_review_plan(Engine& engine, const ReviewPlan& plan, const TaskOptions& options,
                     const ReviewObserver& observer, ReviewRun* out, std::string* error);

}  // namespace ponder::agent
