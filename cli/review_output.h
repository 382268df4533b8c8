#pragma once
// The outputs of `ponder review`: a terminal report, markdown, JSON and SARIF 2.1.0. Each is a
// function of the review's data alone — no timings, no absolute paths — so the same review gives
// the same bytes (the JSON and SARIF are what CI stores and compares).
#include <nlohmann/json.hpp>
#include <string>

#include "agent/review.h"

namespace ponder::cli {

/// What a review found, for its outputs. `run` is null for a plan shown without running it.
struct ReviewOutput {
  const agent::ChangeSet* changes = nullptr;
  const agent::ReviewPlan* plan = nullptr;
  const agent::ReviewRun* run = nullptr;
  std::string model;  // as named or found ("" when none was used)
};

/// The terminal report; `colour` adds ANSI colours (for a TTY).
std::string review_text(const ReviewOutput& review, bool colour);
std::string review_markdown(const ReviewOutput& review);
/// JSON: {"version": 1, "review": {...}, "findings": [...], "not_reviewed": [...], ...}; a plan
/// (no run) has each part's prompt.
nlohmann::json review_json(const ReviewOutput& review);
/// A SARIF 2.1.0 log with one run: a rule per severity, a result per finding (level error for a
/// blocker, warning, note for a suggestion or a nit), what was not reviewed as notifications.
nlohmann::json review_sarif(const ReviewOutput& review);

/// Lines of a plan without a model run (`ponder review --plan`).
std::string review_plan_text(const ReviewOutput& review);

}  // namespace ponder::cli
