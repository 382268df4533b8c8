// The outputs of `ponder review`.
#include "cli/review_output.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>

#include "agent/tags.h"
#include "ponder/version.h"

namespace ponder::cli {
namespace {

using agent::Finding;
using agent::Severity;

constexpr std::array<Severity, 4> kSeverities = {Severity::blocker, Severity::warning, Severity::suggestion,
                                                 Severity::nit};

std::string where(const Finding& f) {
  if (f.first_line == 0) return f.path;
  std::string w = f.path + ":" + std::to_string(f.first_line);
  if (f.last_line > f.first_line) w += "-" + std::to_string(f.last_line);
  return w;
}

std::array<std::size_t, 4> counts(const ReviewOutput& r) {
  std::array<std::size_t, 4> n{};
  if (r.run)
    for (const Finding& f : r.run->findings) ++n[static_cast<std::size_t>(f.severity)];
  return n;
}

std::string summary_line(const ReviewOutput& r) {
  const auto n = counts(r);
  std::string s;
  const char* names[] = {"blocker", "warning", "suggestion", "nit"};
  for (std::size_t i = 0; i < 4; ++i)
    s += (i ? ", " : "") + std::to_string(n[i]) + " " + names[i] + (n[i] == 1 ? "" : "s");
  return s;
}

// The part (1-based) whose review found `f`: the one with its reasoning.
std::size_t part_of(const agent::ReviewRun& run, const Finding& f) {
  for (std::size_t i = 0; i < run.parts.size(); ++i)
    if (run.parts[i].result.answer.reasoning == f.reasoning) return i + 1;
  return 0;
}

// What a part's answer came to when it gave no finding.
std::string part_outcome(const agent::ReviewRun::Part& p) {
  const agent::ReviewResult& r = p.result;
  if (!r.findings.empty()) return std::to_string(r.findings.size()) + " finding" + (r.findings.size() == 1 ? "" : "s");
  if (!r.answer.reasoning_closed && r.answer.answer.empty())
    return "no answer: the model was still reasoning when it stopped (" + std::string(stop_reason_name(r.reason)) +
           ", " + std::to_string(r.stats.generated_tokens) + " tokens)";
  if (!r.problems.empty())
    return "the answer held no valid findings (" + std::to_string(r.problems.size()) +
           " line(s) looked like findings but did not parse)";
  return "no findings";
}

std::string indent(const std::string& text, const std::string& pad) {
  std::string out;
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t end = std::min(text.find('\n', at), text.size());
    const std::string line = text.substr(at, end - at);
    out += (line.empty() ? "" : pad + line) + "\n";
    at = end + 1;
  }
  return out;
}

// A suggested change as -/+ lines.
std::string edit_lines(const agent::EditBlock& e) {
  std::string out;
  auto each = [&](const std::string& text, char mark) {
    std::size_t at = 0;
    while (at < text.size()) {
      const std::size_t end = std::min(text.find('\n', at), text.size());
      out += std::string(1, mark) + " " + text.substr(at, end - at) + "\n";
      at = end + 1;
    }
  };
  each(e.search, '-');
  each(e.replace, '+');
  return out;
}

struct Style {
  bool on;
  std::string operator()(const char* code, const std::string& text) const {
    return on ? std::string("\033[") + code + "m" + text + "\033[0m" : text;
  }
};

const char* severity_colour(Severity s) {
  switch (s) {
    case Severity::blocker:
      return "1;31";
    case Severity::warning:
      return "1;33";
    case Severity::suggestion:
      return "1;36";
    case Severity::nit:
      return "2";
  }
  return "0";
}

std::string header_text(const ReviewOutput& r) {
  std::string s = "ponder review: " + r.changes->description + "\n";
  std::size_t files = r.changes->files.size();
  s += "  " + std::to_string(files) + (files == 1 ? " file" : " files") + " changed";
  if (r.plan && !r.plan->parts.empty()) {
    std::size_t tokens = 0;
    for (const agent::ReviewPart& p : r.plan->parts) tokens += p.tokens;
    s += "; " + std::to_string(r.plan->parts.size()) + (r.plan->parts.size() == 1 ? " prompt" : " prompts") + " of " +
         std::to_string(tokens) + " tokens (budget " + std::to_string(r.plan->budget_tokens) + " each)";
  }
  if (!r.model.empty()) s += "; model " + r.model;
  return s + "\n";
}

std::string left_out_text(const ReviewOutput& r, const Style& style) {
  std::string s;
  if (!r.plan->not_reviewed.empty()) {
    s += "\n" + style("1", "Not reviewed:") + "\n";
    for (const agent::NotReviewed& n : r.plan->not_reviewed) s += "  " + n.path + ": " + n.reason + "\n";
  }
  std::vector<std::string> notes = r.changes->notes;
  for (const std::string& n : r.plan->notes) notes.push_back(n);
  std::size_t context_left = 0;
  for (const agent::ReviewPart& p : r.plan->parts) context_left += p.context_left_out;
  if (context_left > 0)
    notes.push_back(std::to_string(context_left) + " context item(s) (definitions, uses) did not fit the budget");
  if (r.run && r.run->duplicates > 0)
    notes.push_back(std::to_string(r.run->duplicates) + " duplicate finding(s) merged");
  if (!notes.empty()) {
    s += "\n" + style("1", "Notes:") + "\n";
    for (const std::string& n : notes) s += "  " + n + "\n";
  }
  return s;
}

}  // namespace

std::string review_plan_text(const ReviewOutput& r) {
  const Style none{false};
  std::string s = header_text(r);
  for (std::size_t i = 0; i < r.plan->parts.size(); ++i) {
    const agent::ReviewPart& p = r.plan->parts[i];
    s += "\npart " + std::to_string(i + 1) + ": " + std::to_string(p.tokens) + " tokens (diff " +
         std::to_string(p.diff_tokens) + "), " + std::to_string(p.context_items) + " context items, " +
         std::to_string(p.context_left_out) + " left out\n";
    for (const std::string& f : p.files) s += "  " + f + "\n";
  }
  if (r.plan->parts.empty()) s += "\nNothing to review.\n";
  return s + left_out_text(r, none);
}

std::string review_text(const ReviewOutput& r, bool colour) {
  const Style style{colour};
  std::string s = header_text(r) + "\n";
  if (r.plan->parts.empty()) s += "Nothing to review.\n";
  if (r.run) {
    for (const Finding& f : r.run->findings) {
      std::string sev(agent::severity_name(f.severity));
      sev.resize(10, ' ');
      s += style(severity_colour(f.severity), sev) + style("1", where(f)) + "  " + f.title + "\n";
      if (!f.explanation.empty()) s += indent(f.explanation, "    ");
      for (const agent::EditBlock& e : f.edits)
        s += "    suggested change (" + e.path + "):\n" + indent(edit_lines(e), "      ");
      s += "\n";
    }
    if (r.run->findings.empty() && !r.plan->parts.empty()) s += "No findings.\n\n";
    if (r.run->findings.empty() || r.run->parts.size() > 1)
      for (std::size_t i = 0; i < r.run->parts.size(); ++i)
        s += (r.run->parts.size() > 1 ? "part " + std::to_string(i + 1) + ": " : std::string()) +
             part_outcome(r.run->parts[i]) + "\n";
    for (std::size_t i = 0; i < r.run->parts.size(); ++i)
      for (const std::string& p : r.run->parts[i].result.problems)
        s += style("2", "  unparsed (part " + std::to_string(i + 1) + "): " + p) + "\n";
  }
  s += left_out_text(r, style);
  if (r.run) s += (s.size() >= 2 && s.compare(s.size() - 2, 2, "\n\n") == 0 ? "" : "\n") + summary_line(r) + "\n";
  return s;
}

std::string review_markdown(const ReviewOutput& r) {
  std::string s = "## ponder review: " + r.changes->description + "\n\n";
  if (r.plan->parts.empty()) s += "Nothing to review.\n";
  if (r.run) {
    s += summary_line(r) + ".\n";
    for (const Finding& f : r.run->findings) {
      s += "\n### [" + std::string(agent::severity_name(f.severity)) + "] `" + where(f) + "` " + f.title + "\n\n";
      if (!f.explanation.empty()) s += f.explanation + "\n";
      for (const agent::EditBlock& e : f.edits)
        s += "\nSuggested change to `" + e.path + "`:\n\n```diff\n" + edit_lines(e) + "```\n";
    }
    if (r.run->findings.empty())
      for (std::size_t i = 0; i < r.run->parts.size(); ++i)
        s += "\n" + (r.run->parts.size() > 1 ? "Part " + std::to_string(i + 1) + ": " : std::string()) +
             part_outcome(r.run->parts[i]) + ".\n";
  }
  if (!r.plan->not_reviewed.empty()) {
    s += "\n#### Not reviewed\n\n";
    for (const agent::NotReviewed& n : r.plan->not_reviewed) s += "- `" + n.path + "`: " + n.reason + "\n";
  }
  std::vector<std::string> notes = r.changes->notes;
  for (const std::string& n : r.plan->notes) notes.push_back(n);
  if (!notes.empty()) {
    s += "\n#### Notes\n\n";
    for (const std::string& n : notes) s += "- " + n + "\n";
  }
  return s;
}

nlohmann::json review_json(const ReviewOutput& r) {
  using nlohmann::json;
  json findings = json::array();
  if (r.run)
    for (const Finding& f : r.run->findings) {
      json edits = json::array();
      for (const agent::EditBlock& e : f.edits)
        edits.push_back({{"path", e.path}, {"search", e.search}, {"replace", e.replace}});
      findings.push_back({{"severity", agent::severity_name(f.severity)},
                          {"path", f.path},
                          {"first_line", f.first_line},
                          {"last_line", f.last_line},
                          {"title", f.title},
                          {"explanation", f.explanation},
                          {"suggested_edits", edits},
                          {"part", part_of(*r.run, f)}});
    }
  json files = json::array();
  for (const agent::ChangedFile& f : r.changes->files) {
    json hunks = json::array();
    for (const agent::DiffHunk& h : f.hunks)
      hunks.push_back({{"old_start", h.old_start},
                       {"old_lines", h.old_lines},
                       {"new_start", h.new_start},
                       {"new_lines", h.new_lines}});
    files.push_back({{"path", f.path},
                     {"old_path", f.old_path},
                     {"change", agent::change_kind_name(f.kind)},
                     {"binary", f.binary},
                     {"submodule", f.submodule},
                     {"hunks", hunks}});
  }
  json not_reviewed = json::array();
  for (const agent::NotReviewed& n : r.plan->not_reviewed)
    not_reviewed.push_back({{"path", n.path}, {"reason", n.reason}});
  json notes = r.changes->notes;
  for (const std::string& n : r.plan->notes) notes.push_back(n);
  json parts = json::array();
  for (std::size_t i = 0; i < r.plan->parts.size(); ++i) {
    const agent::ReviewPart& p = r.plan->parts[i];
    json part = {{"files", p.files},
                 {"prompt_tokens", p.tokens},
                 {"context_items", p.context_items},
                 {"context_left_out", p.context_left_out}};
    if (!r.run) part["prompt"] = p.prompt;  // a plan: what would be sent
    if (r.run && i < r.run->parts.size()) {
      const agent::ReviewResult& res = r.run->parts[i].result;
      part["generated_tokens"] = res.stats.generated_tokens;
      part["reasoning_tokens"] = res.stats.reasoning_tokens;
      std::string stop(stop_reason_name(res.reason));  // an identifier: "end_of_generation"
      std::replace(stop.begin(), stop.end(), ' ', '_');
      part["stop"] = stop;
      part["outcome"] = part_outcome(r.run->parts[i]);
      part["findings"] = res.findings.size();
      part["problems"] = res.problems;
      part["reasoning"] = res.answer.reasoning;
    }
    parts.push_back(part);
  }
  const auto n = counts(r);
  json out = {{"version", 1},
              {"tool", {{"name", "ponder"}, {"version", PONDER_VERSION}}},
              {"review",
               {{"description", r.changes->description},
                {"base", r.changes->base},
                {"head", r.changes->head},
                {"message", r.changes->message},
                {"model", r.model},
                {"budget_tokens", r.plan->budget_tokens}}},
              {"findings", findings},
              {"summary",
               {{"blocker", n[0]},
                {"warning", n[1]},
                {"suggestion", n[2]},
                {"nit", n[3]},
                {"duplicates_merged", r.run ? r.run->duplicates : 0}}},
              {"files", files},
              {"not_reviewed", not_reviewed},
              {"notes", notes},
              {"parts", parts}};
  return out;
}

nlohmann::json review_sarif(const ReviewOutput& r) {
  using nlohmann::json;
  const char* descriptions[] = {
      "A problem that must be fixed before the change is merged",
      "A likely problem worth fixing",
      "An improvement to consider",
      "A minor point of style or clarity",
  };
  const char* levels[] = {"error", "warning", "note", "note"};
  json rules = json::array();
  for (Severity s : kSeverities) {
    const std::size_t i = static_cast<std::size_t>(s);
    rules.push_back({{"id", "review/" + std::string(agent::severity_name(s))},
                     {"name", "Review" + std::string(1, static_cast<char>(std::toupper(agent::severity_name(s)[0]))) +
                                  std::string(agent::severity_name(s).substr(1))},
                     {"shortDescription", {{"text", descriptions[i]}}},
                     {"defaultConfiguration", {{"level", levels[i]}}}});
  }
  json results = json::array();
  if (r.run)
    for (const Finding& f : r.run->findings) {
      const std::size_t i = static_cast<std::size_t>(f.severity);
      std::string text = f.title;
      if (!f.explanation.empty()) text += "\n\n" + f.explanation;
      std::string markdown = "**" + f.title + "**";
      if (!f.explanation.empty()) markdown += "\n\n" + f.explanation;
      for (const agent::EditBlock& e : f.edits)
        markdown += "\n\nSuggested change to `" + e.path + "`:\n\n```diff\n" + edit_lines(e) + "```";
      json location = {{"physicalLocation", {{"artifactLocation", {{"uri", f.path}}}}}};
      if (f.first_line > 0)
        location["physicalLocation"]["region"] = {{"startLine", f.first_line},
                                                  {"endLine", std::max(f.first_line, f.last_line)}};
      char fingerprint[17];
      std::snprintf(fingerprint, sizeof fingerprint, "%016llx",
                    static_cast<unsigned long long>(agent::hash_content(f.path + '\0' + f.title)));
      results.push_back(
          {{"ruleId", rules[i]["id"]},
           {"ruleIndex", i},
           {"level", levels[i]},
           {"message", {{"text", text}, {"markdown", markdown}}},
           {"locations", json::array({location})},
           {"partialFingerprints", {{"ponderFinding/v1", fingerprint}}},
           {"properties", {{"severity", agent::severity_name(f.severity)}, {"part", part_of(*r.run, f)}}}});
    }
  json notifications = json::array();
  for (const agent::NotReviewed& n : r.plan->not_reviewed)
    notifications.push_back(
        {{"level", "note"},
         {"message", {{"text", n.path + ": not reviewed: " + n.reason}}},
         {"locations", json::array({{{"physicalLocation", {{"artifactLocation", {{"uri", n.path}}}}}}})}});
  if (r.run)
    for (std::size_t i = 0; i < r.run->parts.size(); ++i)
      for (const std::string& p : r.run->parts[i].result.problems)
        notifications.push_back(
            {{"level", "warning"},
             {"message", {{"text", "part " + std::to_string(i + 1) + ": unparsed finding: " + p}}}});
  json run = {
      {"tool",
       {{"driver",
         {{"name", "ponder"}, {"version", PONDER_VERSION}, {"semanticVersion", PONDER_VERSION}, {"rules", rules}}}}},
      {"invocations",
       json::array({{{"executionSuccessful", r.run != nullptr}, {"toolExecutionNotifications", notifications}}})},
      {"results", results},
      {"properties",
       {{"review", r.changes->description}, {"base", r.changes->base}, {"head", r.changes->head}, {"model", r.model}}}};
  return {
      {"$schema", "https://json.schemastore.org/sarif-2.1.0.json"}, {"version", "2.1.0"}, {"runs", json::array({run})}};
}

}  // namespace ponder::cli
