// Filling a task's prompt with workspace context, to a token budget.
#include "agent/prompt_builder.h"

#include <algorithm>
#include <map>
#include <set>

#include "agent/parser.h"
#include "agent/privacy.h"
#include "agent/prompt.h"
#include "agent/repo_map.h"

namespace ponder::agent {
namespace {

struct Section {
  std::string name;
  std::string tmpl;                          // its header template
  std::map<std::string, std::string> vars;   // the template's other values
  std::string separator;                     // between items
  std::vector<std::string> items;            // all candidates, best first
  std::size_t included = 0;                  // how many of them fit
  std::size_t tokens = 0;                    // what they cost with the header, as filled
  std::string body() const {
    std::string b;
    for (std::size_t i = 0; i < included; ++i) b += (i ? separator : "") + items[i];
    return b;
  }
  bool render(std::string* out, std::string* error) const {
    std::map<std::string, std::string> v = vars;
    v["body"] = body();
    return render_prompt(tmpl, v, out, error);
  }
};

// 0-based rows of the target, inclusive.
struct Rows {
  std::uint32_t first, last;
  bool overlaps(const Range& r) const { return r.start.line <= last && r.end.line >= first; }
  bool inside(const Range& r) const { return r.start.line >= first && r.end.line <= last; }
};

}  // namespace

std::string definition_lines(const Index& index, const std::string& path, const Range& range, const std::string* text) {
  std::string read;
  if (!text) {
    std::string error;
    if (!index.source().read(path, &read, &error)) return {};
    text = &read;
  }
  std::size_t begin = 0;
  for (std::uint32_t row = 0; row < range.start.line && begin != std::string::npos; ++row) {
    begin = text->find('\n', begin);
    if (begin != std::string::npos) ++begin;
  }
  if (begin == std::string::npos) return {};
  std::size_t end = begin;
  for (std::uint32_t row = range.start.line; row <= range.end.line; ++row) {
    const std::size_t newline = text->find('\n', end);
    end = newline == std::string::npos ? text->size() : newline + 1;
  }
  return numbered_code(path, mask_secrets(std::string_view(*text).substr(begin, end - begin)), range.start.line + 1);
}

bool build_prompt(const TaskRequest& request, const Index* index, const PromptOptions& options, BuiltPrompt* out,
                  std::string* error) {
  *out = BuiltPrompt{};
  if (is_secret_file(request.target.path)) {
    *error = request.target.path + " holds secrets by its name: ponder does not send it to the model";
    return false;
  }
  const ByteEstimateCounter estimate;
  const TokenCounter& counter = options.counter ? *options.counter : estimate;
  std::string task;
  if (!task_prompt(request, "", &task, error)) return false;
  const std::size_t task_tokens = counter.count(task);
  if (task_tokens > options.budget_tokens) {
    *error = "the task and its target alone take " + std::to_string(task_tokens) + " tokens, more than the budget of " +
             std::to_string(options.budget_tokens);
    return false;
  }
  out->sections.push_back({"task", 1, 0, task_tokens});
  const TaskTarget& t = request.target;
  const FileTags* file = index ? index->file(t.path) : nullptr;
  if (!file) {
    out->text = std::move(task);
    out->tokens = task_tokens;
    return true;
  }
  const std::uint32_t last_line = t.last_line == 0 ? count_lines(t.text) : t.last_line;
  const Rows rows{t.first_line - 1, last_line - 1};

  // Candidates, section by section, in priority order.
  Section scope{"scope", "section_scope", {{"path", t.path}}, "\n\n", {}};
  const Tag* enclosing = nullptr;
  for (const Tag& tag : file->tags)
    if (is_definition(tag.kind) && tag.range.start.line <= rows.first && tag.range.end.line >= rows.last &&
        !rows.inside(tag.range) &&
        (!enclosing || tag.range.end_byte - tag.range.start_byte < enclosing->range.end_byte - enclosing->range.start_byte))
      enclosing = &tag;
  if (enclosing) scope.items.push_back(definition_lines(*index, t.path, enclosing->range, &t.text));

  Section definitions{"definitions", "section_definitions", {}, "\n\n", {}};
  std::vector<std::string> used;  // names the target references, in order
  std::set<std::string> defined_inside;
  for (const Tag& tag : file->tags)
    if (rows.inside(tag.range) && is_definition(tag.kind)) defined_inside.insert(tag.name);
  for (const Tag& tag : file->tags)
    if (!is_definition(tag.kind) && rows.overlaps(tag.range) && !defined_inside.count(tag.name) &&
        std::find(used.begin(), used.end(), tag.name) == used.end())
      used.push_back(tag.name);
  for (const std::string& name : used) {
    std::size_t shown = 0;
    for (const SymbolRef& def : index->definitions(name)) {
      if (shown == options.definitions_per_name) break;
      if (def.file->path == t.path && rows.overlaps(def.tag->range)) continue;  // the target itself
      if (is_secret_file(def.file->path)) continue;
      std::string code = definition_lines(*index, def.file->path, def.tag->range, def.file->path == t.path ? &t.text : nullptr);
      if (code.empty()) continue;
      definitions.items.push_back(def.file->path + "\n" + code);
      ++shown;
    }
  }

  Section uses{"uses", "section_callers", {{"symbol", t.symbol}}, "\n", {}};
  if (!t.symbol.empty())
    for (const SymbolRef& ref : index->references(t.symbol)) {
      if ((ref.file->path == t.path && rows.overlaps(ref.tag->range)) || is_secret_file(ref.file->path)) continue;
      if (uses.items.size() == options.max_uses) break;
      const Tag* in = index->enclosing_symbol(ref.file->path, ref.tag->range.start);
      uses.items.push_back("- " + ref.file->path + ":" + std::to_string(ref.tag->range.start.line + 1) +
                           (in ? " in `" + mask_secrets(in->signature) + "`" : ""));
    }

  Section outline{"outline", "section_outline", {{"path", t.path}}, "\n", {}};
  for (const Tag* def : index->outline(t.path))
    outline.items.push_back(std::to_string(def->range.start.line + 1) + ": " + mask_secrets(def->signature));

  Section changes{"changes", "section_changes", {{"path", t.path}}, "\n", {}};
  for (const std::string& hunk : options.recent_changes) changes.items.push_back(mask_secrets(hunk));

  // Fill in priority order: whole items while they fit.
  std::size_t used_tokens = task_tokens;
  std::vector<Section*> by_priority = {&scope, &definitions, &uses, &outline, &changes};
  for (Section* s : by_priority) {
    std::string header;
    if (!s->render(&header, error)) return false;
    const std::size_t header_tokens = counter.count(header);
    std::size_t cost = header_tokens;
    for (const std::string& item : s->items) {
      const std::size_t c = counter.count(item + s->separator);
      if (used_tokens + cost + c > options.budget_tokens) break;
      cost += c;
      ++s->included;
    }
    if (s->included > 0) used_tokens += cost, s->tokens = cost;
  }
  // The repo map takes what is left (without the target's file, or the working set's: the
  // prompt shows it, or the user has it open).
  Section map{"repo map", "section_repo_map", {}, "", {}};
  std::size_t map_tokens = 0;  // of its whole section
  {
    std::string header;
    if (!map.render(&header, error)) return false;
    const std::size_t header_tokens = counter.count(header);
    const bool stable = !options.working_files.empty();
    std::size_t budget = 0;
    if (used_tokens + header_tokens + 16 < options.budget_tokens) budget = options.budget_tokens - used_tokens - header_tokens;
    if (stable) {  // a budget that does not move with the other sections: a fixed share, stepped
      const std::size_t step = std::max<std::size_t>(options.map_step, 1);
      const std::size_t share = static_cast<std::size_t>(options.budget_tokens * options.map_share) / step * step;
      budget = budget >= share ? share : budget / step * step;
    }
    if (budget > 0) {
      RepoMapOptions mo;
      mo.token_budget = budget;
      mo.include_focus_files = false;
      mo.counter = &counter;
      if (stable) {
        mo.focus_files = options.working_files;
        std::sort(mo.focus_files.begin(), mo.focus_files.end());
      } else {
        mo.focus_files = {t.path};
        mo.focus_symbols = used;
        if (!t.symbol.empty()) mo.focus_symbols.push_back(t.symbol);
      }
      // What the map depends on: its budget, the working set, the files outside it.
      std::string key = std::to_string(budget);
      for (const std::string& f : mo.focus_files) key += '\0' + f;
      for (const auto& [path, tags] : index->files())
        if (!std::binary_search(mo.focus_files.begin(), mo.focus_files.end(), path))
          key += '\0' + path + ':' + std::to_string(tags.content_hash);
      const std::uint64_t hash = hash_content(key);
      std::string text;
      RepoMapCache* cache = stable ? options.map_cache : nullptr;
      std::unique_lock<std::mutex> lock;
      if (cache) lock = std::unique_lock(cache->mu_);
      if (cache && cache->valid_ && cache->key_ == hash) {
        text = cache->text_;
        map_tokens = cache->tokens_;
      } else {
        const RepoMap m = render_repo_map(*index, mo);
        if (m.definitions > 0) text = mask_secrets(m.text);
      }
      if (!text.empty()) {
        map.items.push_back(text);
        map.included = 1;
        if (map_tokens == 0) {
          std::string part;
          if (!map.render(&part, error)) return false;
          map_tokens = counter.count(part);
        }
      }
      if (cache && !(cache->valid_ && cache->key_ == hash))
        cache->key_ = hash, cache->valid_ = true, cache->text_ = std::move(text), cache->tokens_ = map_tokens, ++cache->renders_;
    }
  }

  // Layout: the reverse of the priority. The exact count can differ from the sum of the parts
  // by a token or two at their joins: drop items from the least important end until it fits.
  // The map comes first and its section ends in newlines before a section (or the task) that
  // starts with a letter, a boundary no pre-token crosses: its count adds exactly, so a large
  // map is counted once (and kept with it in the cache).
  std::string map_part;
  if (map.included && !map.render(&map_part, error)) return false;
  std::vector<Section*> layout = {&map, &changes, &outline, &uses, &definitions, &scope};
  for (;;) {
    std::string context;
    for (const Section* s : layout) {
      if (s->included == 0 || s == &map) continue;
      std::string part;
      if (!s->render(&part, error)) return false;
      context += part;
    }
    if (!task_prompt(request, context, &out->text, error)) return false;
    out->tokens = counter.count(out->text) + (map.included ? map_tokens : 0);
    if (map.included) out->text.insert(0, map_part);
    if (out->tokens <= options.budget_tokens) break;
    auto least = std::find_if(layout.begin(), layout.end(), [](const Section* s) { return s->included > 0; });
    if (least == layout.end()) break;  // cannot happen: the task alone fits
    --(*least)->included;
    (*least)->tokens = 0;  // recounted below
  }
  map.tokens = map.included ? map_tokens : 0;
  for (Section* s : {&scope, &definitions, &uses, &outline, &changes, &map}) {
    if (s->included > 0 && s->tokens == 0) {  // cut by the exact count: count what is left
      std::string part;
      if (!s->render(&part, error)) return false;
      s->tokens = counter.count(part);
    }
    out->sections.push_back({s->name, s->included, s->items.size() - s->included, s->tokens});
  }
  return true;
}

std::size_t RepoMapCache::renders() const {
  std::lock_guard lock(mu_);
  return renders_;
}

}  // namespace ponder::agent
