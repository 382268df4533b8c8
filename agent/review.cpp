// Commit review: context, plan, run, merge.
#include "agent/review.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <tuple>

#include "agent/index.h"
#include "agent/language.h"
#include "agent/parser.h"
#include "agent/privacy.h"
#include "agent/prompt.h"
#include "agent/prompt_builder.h"

namespace ponder::agent {
namespace {

// The rows (0-based) of the new revision that a hunk changes: its added lines, and where it
// removed lines, the row after them.
std::vector<std::uint32_t> touched_rows(const DiffHunk& hunk) {
  std::vector<std::uint32_t> rows;
  std::uint32_t line = hunk.new_start == 0 ? 1 : hunk.new_start;  // 1-based, of the next new line
  for (std::size_t at = 0; at < hunk.lines.size();) {
    const std::size_t end = std::min(hunk.lines.find('\n', at), hunk.lines.size());
    const char origin = hunk.lines[at];
    if (origin == '+') rows.push_back(line - 1);
    if (origin == '-' && (rows.empty() || rows.back() != line - 1)) rows.push_back(line - 1);
    if (origin == '+' || origin == ' ') ++line;
    at = end + 1;
  }
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  return rows;
}

// Whether the hunk shows all of `r` (rows of the new revision).
bool shown_by(const DiffHunk& hunk, const Range& r) {
  if (hunk.new_lines == 0) return false;
  const std::uint32_t first = hunk.new_start - 1, last = hunk.new_start + hunk.new_lines - 2;
  return r.start.line >= first && r.end.line <= last;
}

bool contains_row(const Range& r, std::uint32_t row) { return r.start.line <= row && r.end.line >= row; }

// The context candidates of some hunks of one file, best first within each kind.
struct Context {
  std::vector<std::string> scope, definitions, uses;
  std::size_t too_long = 0;  // enclosing definitions or definitions over max_scope_lines
};

// Definitions the hunks remove (their name is on a '-' line of the old version) that the new
// version no longer has anywhere, but that it still uses: each such use is listed.
void removed_definitions(const Index& index, const Source* old_side, const ChangedFile& file,
                         const std::vector<const DiffHunk*>& hunks, const ReviewPlanOptions& options, Context* out) {
  if (!old_side || file.old_path.empty()) return;
  std::vector<std::uint32_t> removed;
  for (const DiffHunk* h : hunks) removed.insert(removed.end(), h->removed.begin(), h->removed.end());
  std::sort(removed.begin(), removed.end());
  const Language lang = detect_language(file.old_path);
  std::string text;
  if (removed.empty() || lang == Language::unknown || !old_side->read(file.old_path, &text, nullptr)) return;
  Parser parser;
  FileTags old;
  std::string error;
  if (!parser.index(lang, text, &old, &error)) return;
  std::set<std::string> seen;
  for (const Tag& def : old.tags) {
    if (!is_definition(def.kind) || def.kind == TagKind::module ||
        !std::binary_search(removed.begin(), removed.end(), def.name_range.start.line + 1) ||
        !seen.insert(def.name).second || !index.definitions(def.name).empty())
      continue;
    std::size_t listed = 0;
    for (const SymbolRef& ref : index.references(def.name)) {
      if (listed == options.uses_per_symbol) break;
      if (is_secret_file(ref.file->path)) continue;
      const Tag* in = index.enclosing_symbol(ref.file->path, ref.tag->range.start);
      out->uses.push_back("- `" + def.name + "`, which this change removes, at " + ref.file->path + ":" +
                          std::to_string(ref.tag->range.start.line + 1) +
                          (in ? ", in `" + mask_secrets(in->signature) + "`" : ""));
      ++listed;
    }
  }
}

void gather_context(const Index& index, const Source* old_side, const ChangedFile& file,
                    const std::vector<const DiffHunk*>& hunks, const ReviewPlanOptions& options, Context* out) {
  removed_definitions(index, old_side, file, hunks, options, out);
  const FileTags* tags = file.kind == ChangeKind::deleted ? nullptr : index.file(file.path);
  if (!tags) return;
  auto lines_of = [](const Range& r) { return r.end.line - r.start.line + 1; };
  std::vector<std::string> used;    // names the added lines use, in order
  std::vector<const Tag*> changed;  // definitions with changed lines, innermost
  for (const DiffHunk* hunk : hunks) {
    const std::vector<std::uint32_t> rows = touched_rows(*hunk);
    if (rows.empty()) continue;
    // The definition around all of the hunk's changes, unless the hunk shows it whole.
    const Tag* enclosing = nullptr;
    for (const Tag& t : tags->tags)
      if (is_definition(t.kind) && contains_row(t.range, rows.front()) && contains_row(t.range, rows.back()) &&
          (!enclosing ||
           t.range.end_byte - t.range.start_byte < enclosing->range.end_byte - enclosing->range.start_byte))
        enclosing = &t;
    if (enclosing && !shown_by(*hunk, enclosing->range)) {
      if (lines_of(enclosing->range) > options.max_scope_lines) {
        ++out->too_long;
      } else {
        std::string code = definition_lines(index, file.path, enclosing->range, nullptr);
        if (!code.empty()) out->scope.push_back(file.path + "\n" + code);
      }
    }
    // The innermost definition around each changed row; the names the added rows use.
    std::set<std::string> defined_here;
    for (const Tag& t : tags->tags)
      if (is_definition(t.kind) &&
          std::binary_search(hunk->added.begin(), hunk->added.end(), t.name_range.start.line + 1))
        defined_here.insert(t.name);
    for (std::uint32_t row : rows) {
      const Tag* inner = nullptr;
      for (const Tag& t : tags->tags)
        if (is_definition(t.kind) && t.kind != TagKind::module && contains_row(t.range, row) &&
            (!inner || t.range.end_byte - t.range.start_byte < inner->range.end_byte - inner->range.start_byte))
          inner = &t;
      if (inner && std::find(changed.begin(), changed.end(), inner) == changed.end()) changed.push_back(inner);
    }
    for (const Tag& t : tags->tags)
      if (!is_definition(t.kind) &&
          std::binary_search(hunk->added.begin(), hunk->added.end(), t.range.start.line + 1) &&
          !defined_here.count(t.name) && std::find(used.begin(), used.end(), t.name) == used.end())
        used.push_back(t.name);
  }
  auto in_these_hunks = [&](const SymbolRef& s) {
    if (s.file->path != file.path) return false;
    for (const DiffHunk* h : hunks)
      if (shown_by(*h, s.tag->range)) return true;
    return false;
  };
  for (const std::string& name : used) {
    std::size_t shown = 0;
    for (const SymbolRef& def : index.definitions(name)) {
      if (shown == options.definitions_per_name) break;
      if (in_these_hunks(def) || is_secret_file(def.file->path)) continue;
      if (lines_of(def.tag->range) > options.max_scope_lines) {
        ++out->too_long;
        continue;
      }
      std::string code = definition_lines(index, def.file->path, def.tag->range, nullptr);
      if (code.empty()) continue;
      out->definitions.push_back(def.file->path + "\n" + code);
      ++shown;
    }
  }
  for (const Tag* def : changed) {
    std::size_t listed = 0;
    for (const SymbolRef& ref : index.references(def->name)) {
      if (listed == options.uses_per_symbol) break;
      if ((ref.file->path == file.path && def->range.contains(ref.tag->range)) || is_secret_file(ref.file->path))
        continue;
      const Tag* in = index.enclosing_symbol(ref.file->path, ref.tag->range.start);
      out->uses.push_back("- `" + def->name + "` at " + ref.file->path + ":" +
                          std::to_string(ref.tag->range.start.line + 1) +
                          (in ? ", in `" + mask_secrets(in->signature) + "`" : ""));
      ++listed;
    }
  }
}

// Some hunks of one file: what one part shows of it.
struct Unit {
  const ChangedFile* file;
  std::vector<const DiffHunk*> hunks;
  std::string diff;
  std::size_t tokens = 0;
};

Unit make_unit(const ChangedFile& file, std::vector<const DiffHunk*> hunks, const TokenCounter& counter) {
  ChangedFile some = file;
  some.hunks.clear();
  for (const DiffHunk* h : hunks) some.hunks.push_back(*h);
  Unit u{&file, std::move(hunks), mask_secrets(unified_diff(some)), 0};
  u.tokens = counter.count(u.diff);
  return u;
}

// The "@@ ... @@" of a hunk header, without the function git added after it.
std::string hunk_range(const DiffHunk& h) {
  const std::size_t end = h.header.find("@@", 2);
  return end == std::string::npos ? h.header : h.header.substr(0, end + 2);
}

struct Section {
  const char* tmpl;
  std::vector<std::string> items;
  std::vector<bool> in;
  std::string separator;
};

bool render_context(const std::vector<Section*>& layout, std::string* out, std::string* error) {
  out->clear();
  for (const Section* s : layout) {
    std::string body;
    for (std::size_t i = 0; i < s->items.size(); ++i)
      if (s->in[i]) body += (body.empty() ? "" : s->separator) + s->items[i];
    if (body.empty()) continue;
    std::string part;
    if (!render_prompt(s->tmpl, {{"body", body}}, &part, error)) return false;
    *out += part;
  }
  return true;
}

// Lowercase words of a title.
std::set<std::string> title_words(const std::string& title) {
  std::set<std::string> words;
  std::string w;
  for (char c : title + " ") {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      w += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!w.empty()) {
      words.insert(w);
      w.clear();
    }
  }
  return words;
}

bool duplicate(const Finding& a, const Finding& b) {
  if (a.path != b.path) return false;
  const bool whole_file = a.first_line == 0 || b.first_line == 0;
  if (!whole_file && (a.first_line > b.last_line + 1 || b.first_line > a.last_line + 1)) return false;
  const std::set<std::string> wa = title_words(a.title), wb = title_words(b.title);
  std::size_t common = 0;
  for (const std::string& w : wa) common += wb.count(w);
  const std::size_t shorter = std::min(wa.size(), wb.size());
  return shorter > 0 && common * 5 >= shorter * 3;
}

}  // namespace

bool plan_review(const ChangeSet& changes, const Index* index, const ReviewPlanOptions& options, ReviewPlan* out,
                 std::string* error) {
  *out = ReviewPlan{};
  out->budget_tokens = options.budget_tokens;
  const ByteEstimateCounter estimate;
  const TokenCounter& counter = options.counter ? *options.counter : estimate;

  // What the model will see of each file.
  std::vector<Unit> units;
  for (const ChangedFile& f : changes.files) {
    if (f.hunks.empty()) {
      out->not_reviewed.push_back({f.path, f.note.empty() ? "no changes to show" : f.note});
    } else if (is_secret_file(f.path) || (!f.old_path.empty() && is_secret_file(f.old_path))) {
      out->not_reviewed.push_back({f.path, "holds secrets by its name: not sent to the model"});
    } else {
      std::vector<const DiffHunk*> all;
      for (const DiffHunk& h : f.hunks) all.push_back(&h);
      units.push_back(make_unit(f, std::move(all), counter));
    }
  }
  if (units.empty()) return true;

  // The instructions and the message, in every part; a message longer than an eighth of the
  // budget is cut at a line.
  std::string message = mask_secrets(changes.message);
  const std::size_t message_budget = options.budget_tokens / 8;
  if (counter.count(message) > message_budget) {
    std::string cut;
    for (std::size_t at = 0; at < message.size();) {
      const std::size_t end = std::min(message.find('\n', at), message.size());
      const std::string next = cut + message.substr(at, end - at) + "\n";
      if (counter.count(next) > message_budget) break;
      cut = next;
      at = end + 1;
    }
    message = cut + "(the rest of the message is left out)";
    out->notes.push_back("the commit message was cut to about " + std::to_string(message_budget) + " tokens");
  }
  std::string frame, part_note;
  if (!render_prompt("review_part", {{"part", "99"}, {"parts", "99"}}, &part_note, error)) return false;
  if (!render_prompt("review", {{"context", ""}, {"part_note", part_note}, {"message", message}, {"diff", ""}}, &frame,
                     error))
    return false;
  const std::size_t fixed = counter.count(frame) + 8;  // and a few tokens where the parts join
  if (fixed >= options.budget_tokens) {
    *error = "the review's instructions and message alone take " + std::to_string(fixed) +
             " tokens, more than the budget of " + std::to_string(options.budget_tokens);
    return false;
  }
  const std::size_t room = options.budget_tokens - fixed;  // for the diff and the context

  // Parts: everything at once when it fits; else whole files in path order, a file too large
  // for one prompt cut between its hunks.
  std::vector<std::vector<Unit>> groups;
  std::size_t total = 0;
  for (const Unit& u : units) total += u.tokens + 1;
  if (total <= room) {
    groups.push_back(std::move(units));
  } else {
    const std::size_t share = std::max<std::size_t>(static_cast<std::size_t>(room * options.diff_share), 1);
    std::vector<Unit> pieces;
    for (Unit& u : units) {
      if (u.tokens <= room) {
        pieces.push_back(std::move(u));
        continue;
      }
      // Runs of hunks; a run's cost is taken as the sum of its hunks' (each counted with the
      // file's header: a little over), so each hunk is tokenized once.
      std::vector<const DiffHunk*> run;
      std::size_t run_tokens = 0;
      for (const DiffHunk* h : u.hunks) {
        const std::size_t tokens = make_unit(*u.file, {h}, counter).tokens;
        if (tokens > room) {
          out->not_reviewed.push_back({u.file->path, "hunk " + hunk_range(*h) + " is " + std::to_string(tokens) +
                                                         " tokens, more than the " + std::to_string(room) +
                                                         " a prompt has for the diff"});
          continue;
        }
        if (!run.empty() && run_tokens + tokens > share) {
          pieces.push_back(make_unit(*u.file, run, counter));
          run.clear();
          run_tokens = 0;
        }
        run.push_back(h);
        run_tokens += tokens;
      }
      if (!run.empty()) pieces.push_back(make_unit(*u.file, run, counter));
    }
    std::size_t in_group = 0;
    for (Unit& u : pieces) {
      if (groups.empty() || (in_group > 0 && in_group + u.tokens + 1 > share)) {
        groups.emplace_back();
        in_group = 0;
      }
      in_group += u.tokens + 1;
      groups.back().push_back(std::move(u));
    }
  }

  for (std::size_t g = 0; g < groups.size(); ++g) {
    ReviewPart part;
    Context context;
    for (const Unit& u : groups[g]) {
      part.request.diff += u.diff;
      part.diff_tokens += u.tokens;
      if (part.files.empty() || part.files.back() != u.file->path) part.files.push_back(u.file->path);
      if (index) gather_context(*index, changes.old_side.get(), *u.file, u.hunks, options, &context);
    }
    part.request.message = message;
    part.request.part = g + 1;
    part.request.parts = groups.size();
    // Context, by priority, whole items while they fit (a large one does not keep out smaller
    // ones after it); laid out in reverse, the enclosing definitions next to the diff.
    Section scope{"section_review_scope", context.scope, {}, "\n\n"};
    Section defs{"section_definitions", context.definitions, {}, "\n\n"};
    Section uses{"section_review_uses", context.uses, {}, "\n"};
    std::size_t used = fixed + part.diff_tokens;
    for (Section* s : {&scope, &defs, &uses}) {
      std::set<std::string> seen;
      std::vector<std::string> unique;
      for (std::string& item : s->items)
        if (seen.insert(item).second) unique.push_back(std::move(item));
      s->items = std::move(unique);
      s->in.assign(s->items.size(), false);
      std::string header;
      if (!render_prompt(s->tmpl, {{"body", ""}}, &header, error)) return false;
      std::size_t header_tokens = counter.count(header);
      for (std::size_t i = 0; i < s->items.size(); ++i) {
        const std::size_t cost = counter.count(s->items[i] + s->separator) + header_tokens;
        if (used + cost <= options.budget_tokens) {
          used += cost;
          s->in[i] = true;
          header_tokens = 0;  // paid once
        }
      }
    }
    part.context_left_out = context.too_long;
    const std::vector<Section*> layout = {&uses, &defs, &scope};
    for (;;) {
      if (!render_context(layout, &part.request.context, error)) return false;
      if (!review_prompt(part.request, &part.prompt, error)) return false;
      part.tokens = counter.count(part.prompt);
      if (part.tokens <= options.budget_tokens) break;
      // Over by the joins: the least important item goes.
      bool dropped = false;
      for (Section* s : layout) {
        for (std::size_t i = s->items.size(); i-- > 0 && !dropped;)
          if (s->in[i]) s->in[i] = false, dropped = true;
        if (dropped) break;
      }
      if (!dropped) break;  // the diff alone: counted as fitting, a few tokens over at most
    }
    for (const Section* s : layout)
      for (bool in : s->in) (in ? part.context_items : part.context_left_out) += 1;
    out->parts.push_back(std::move(part));
  }
  std::stable_sort(out->not_reviewed.begin(), out->not_reviewed.end(),
                   [](const NotReviewed& a, const NotReviewed& b) { return a.path < b.path; });
  return true;
}

std::vector<Finding> merge_findings(std::vector<Finding> findings, std::size_t* duplicates) {
  std::vector<Finding> kept;
  std::size_t merged = 0;
  for (Finding& f : findings) {
    auto same = std::find_if(kept.begin(), kept.end(), [&](const Finding& k) { return duplicate(k, f); });
    if (same == kept.end()) {
      kept.push_back(std::move(f));
    } else {
      same->severity = std::min(same->severity, f.severity);  // blocker is the smallest
      ++merged;
    }
  }
  std::stable_sort(kept.begin(), kept.end(), [](const Finding& a, const Finding& b) {
    return std::tie(a.severity, a.path, a.first_line, a.last_line, a.title) <
           std::tie(b.severity, b.path, b.first_line, b.last_line, b.title);
  });
  if (duplicates) *duplicates = merged;
  return kept;
}

bool run_review_plan(Engine& engine, const ReviewPlan& plan, const TaskOptions& options, const ReviewObserver& observer,
                     ReviewRun* out, std::string* error) {
  *out = ReviewRun{};
  std::vector<Finding> all;
  for (std::size_t i = 0; i < plan.parts.size(); ++i) {
    const ReviewPart& p = plan.parts[i];
    TaskOptions o = options;
    if (observer) o.on_event = [&observer, i](const GenerateEvent& e) { observer(i, e); };
    ReviewRun::Part part{p.files, p.tokens, {}};
    const std::string which = plan.parts.size() > 1
                                  ? "part " + std::to_string(i + 1) + " of " + std::to_string(plan.parts.size()) + ": "
                                  : "";
    if (!run_review(engine, p.request, o, &part.result, error)) {
      *error = which + *error;
      return false;
    }
    const bool failed = part.result.reason == StopReason::error;
    if (failed) *error = which + "the model failed: " + part.result.error;
    for (const Finding& f : part.result.findings) all.push_back(f);
    out->parts.push_back(std::move(part));
    if (failed) return false;
  }
  out->findings = merge_findings(std::move(all), &out->duplicates);
  return true;
}

}  // namespace ponder::agent
