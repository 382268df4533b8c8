#include "agent/repo_map.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

namespace ponder::agent {
namespace {

// Identifiers that say something (aider's heuristic): long snake_case, camelCase or kebab names
// are specific; names starting with '_' are private detail.
double identifier_weight(std::string_view name, const std::unordered_set<std::string_view>& focus,
                         std::size_t definers) {
  double w = 1.0;
  if (focus.count(name)) w *= 10.0;
  bool snake = name.find('_') != std::string::npos;
  bool camel = false;
  for (std::size_t i = 1; i < name.size(); ++i)
    if (name[i] >= 'A' && name[i] <= 'Z' && name[i - 1] >= 'a' && name[i - 1] <= 'z') camel = true;
  if ((snake || camel) && name.size() >= 8) w *= 10.0;
  if (!name.empty() && name[0] == '_') w *= 0.1;
  if (definers > 5) w *= 0.1;  // defined everywhere: says little about any one file
  return w;
}

// An identifier defined in more files than this says nothing about any one of them (`size`,
// `get`, `init` in a large tree): it carries no edges, which also bounds the graph's size.
constexpr std::size_t kMaxDefiners = 32;

struct Edge {
  std::uint32_t to;
  std::uint32_t slot;  // the (defining file, identifier) pair this edge feeds
  double weight;
};

struct Graph {
  std::vector<const FileTags*> files;
  std::vector<std::vector<Edge>> out;  // per file
  std::unordered_map<std::string_view, std::uint32_t> name_id;  // views Tag names
  std::unordered_map<std::uint64_t, std::uint32_t> slot_of;      // file << 32 | name id
  std::uint32_t slots = 0;
};

// Files are nodes; an edge runs from each file that references an identifier to each file
// that defines it, weighted by how telling the identifier is and by sqrt(reference count).
Graph build_graph(const Index& index, const RepoMapOptions& options) {
  Graph g;
  for (const auto& [path, f] : index.files()) g.files.push_back(&f);
  g.out.resize(g.files.size());
  std::unordered_set<std::string_view> focus(options.focus_symbols.begin(), options.focus_symbols.end());

  // (identifier, file) pairs for definitions and for references, sorted.
  std::vector<std::pair<std::uint32_t, std::uint32_t>> defs, refs;
  std::vector<std::string_view> names;
  for (std::uint32_t fi = 0; fi < g.files.size(); ++fi) {
    for (const Tag& t : g.files[fi]->tags) {
      auto [it, added] = g.name_id.try_emplace(t.name, static_cast<std::uint32_t>(names.size()));
      if (added) names.push_back(t.name);
      (is_definition(t.kind) ? defs : refs).emplace_back(it->second, fi);
    }
  }
  std::sort(defs.begin(), defs.end());
  defs.erase(std::unique(defs.begin(), defs.end()), defs.end());
  std::sort(refs.begin(), refs.end());

  std::size_t r = 0;
  for (std::size_t d = 0; d < defs.size();) {
    std::uint32_t id = defs[d].first;
    std::size_t d_end = d;
    while (d_end < defs.size() && defs[d_end].first == id) ++d_end;
    while (r < refs.size() && refs[r].first < id) ++r;
    std::size_t r_end = r;
    while (r_end < refs.size() && refs[r_end].first == id) ++r_end;
    const std::size_t definers = d_end - d;
    if (r_end > r && definers <= kMaxDefiners) {
      double w = identifier_weight(names[id], focus, definers);
      for (std::size_t k = r; k < r_end;) {  // one run per referencing file
        std::uint32_t referrer = refs[k].second;
        std::size_t count = 0;
        while (k < r_end && refs[k].second == referrer) ++k, ++count;
        for (std::size_t j = d; j < d_end; ++j) {
          std::uint32_t definer = defs[j].second;
          auto [slot, added] = g.slot_of.try_emplace((std::uint64_t{definer} << 32) | id, g.slots);
          if (added) ++g.slots;
          g.out[referrer].push_back({definer, slot->second, w * std::sqrt(static_cast<double>(count))});
        }
      }
    }
    d = d_end;
    r = r_end;
  }
  return g;
}

// Teleport mass: the focus files, and the files that define a focus symbol (half as much);
// uniform when the task names neither.
std::vector<double> personalisation(const Graph& g, const RepoMapOptions& options) {
  std::vector<double> p(g.files.size(), 0.0);
  std::unordered_set<std::string_view> files(options.focus_files.begin(), options.focus_files.end());
  std::unordered_set<std::string_view> symbols(options.focus_symbols.begin(), options.focus_symbols.end());
  double total = 0;
  for (std::size_t i = 0; i < g.files.size(); ++i) {
    double v = files.count(g.files[i]->path) ? 1.0 : 0.0;
    if (v == 0 && !symbols.empty())
      for (const Tag& t : g.files[i]->tags)
        if (is_definition(t.kind) && symbols.count(t.name)) {
          v = 0.5;
          break;
        }
    p[i] = v;
    total += v;
  }
  if (total == 0) {
    std::fill(p.begin(), p.end(), 1.0);
    total = static_cast<double>(p.size());
  }
  for (double& v : p) v /= total;
  return p;
}

std::vector<double> pagerank(const Graph& g, const std::vector<double>& p) {
  const std::size_t n = g.files.size();
  std::vector<double> rank(p), next(n);
  std::vector<double> out_weight(n, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (const Edge& e : g.out[i]) out_weight[i] += e.weight;
  constexpr double kDamping = 0.85;
  for (int iter = 0; iter < 100; ++iter) {
    double dangling = 0;
    std::fill(next.begin(), next.end(), 0.0);
    for (std::size_t i = 0; i < n; ++i) {
      if (out_weight[i] <= 0) { dangling += rank[i]; continue; }
      for (const Edge& e : g.out[i]) next[e.to] += kDamping * rank[i] * e.weight / out_weight[i];
    }
    double delta = 0;
    for (std::size_t i = 0; i < n; ++i) {
      next[i] += (1 - kDamping + kDamping * dangling) * p[i];
      delta += std::fabs(next[i] - rank[i]);
    }
    rank.swap(next);
    if (delta < 1e-10 * static_cast<double>(n)) break;
  }
  return rank;
}

std::size_t scope_depth(const Tag& t, Language lang) {
  if (t.scope.empty()) return 0;
  std::string_view sep = scope_separator(lang);
  std::size_t depth = 1;
  for (std::size_t at = t.scope.find(sep); at != std::string::npos; at = t.scope.find(sep, at + sep.size()))
    ++depth;
  return depth;
}

std::string render(const std::vector<RankedDefinition>& chosen) {
  // Group by file in path order; definitions in line order.
  std::vector<const RankedDefinition*> sorted;
  sorted.reserve(chosen.size());
  for (const auto& d : chosen) sorted.push_back(&d);
  std::sort(sorted.begin(), sorted.end(), [](const RankedDefinition* a, const RankedDefinition* b) {
    if (a->file != b->file) return a->file->path < b->file->path;
    return a->tag->range.start_byte < b->tag->range.start_byte;
  });
  std::string out;
  const FileTags* current = nullptr;
  for (const RankedDefinition* d : sorted) {
    if (d->file != current) {
      if (current) out += '\n';
      current = d->file;
      out += current->path;
      out += ":\n";
    }
    out += std::to_string(d->tag->name_range.start.line + 1);
    out += "│ ";
    out.append(2 * scope_depth(*d->tag, current->language), ' ');
    out += d->tag->signature;
    out += '\n';
  }
  return out;
}

}  // namespace

std::vector<double> rank_files(const Index& index, const RepoMapOptions& options) {
  Graph g = build_graph(index, options);
  return pagerank(g, personalisation(g, options));
}

std::vector<RankedDefinition> rank_definitions(const Index& index, const RepoMapOptions& options) {
  Graph g = build_graph(index, options);
  std::vector<double> rank = pagerank(g, personalisation(g, options));
  // Each file's rank flows along its edges to (defining file, identifier).
  std::vector<double> slot_rank(g.slots, 0.0);
  for (std::size_t i = 0; i < g.files.size(); ++i) {
    double total = 0;
    for (const Edge& e : g.out[i]) total += e.weight;
    for (const Edge& e : g.out[i]) slot_rank[e.slot] += rank[i] * e.weight / total;
  }
  auto ranked_by_edges = [&](std::uint32_t file, const std::string& name) {
    auto id = g.name_id.find(name);
    if (id == g.name_id.end()) return 0.0;
    auto slot = g.slot_of.find((std::uint64_t{file} << 32) | id->second);
    return slot == g.slot_of.end() ? 0.0 : slot_rank[slot->second];
  };

  std::unordered_set<std::string_view> focus(options.focus_files.begin(), options.focus_files.end());
  std::vector<RankedDefinition> out;
  for (std::size_t fi = 0; fi < g.files.size(); ++fi) {
    const FileTags* f = g.files[fi];
    if (!options.include_focus_files && focus.count(f->path)) continue;
    std::size_t defs = 0;
    for (const Tag& t : f->tags) defs += is_definition(t.kind);
    // What nothing references still ranks a little, by its file's own rank, far below
    // anything that is referenced from a file of similar rank.
    const double unreferenced = defs ? rank[fi] * 1e-3 / static_cast<double>(defs) : 0.0;
    for (const Tag& t : f->tags) {
      if (!is_definition(t.kind) || t.signature.empty()) continue;
      out.push_back({f, &t, unreferenced + ranked_by_edges(static_cast<std::uint32_t>(fi), t.name)});
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const RankedDefinition& a, const RankedDefinition& b) {
    return a.rank > b.rank;  // stable: ties keep path, then position order
  });
  return out;
}

RepoMap render_repo_map(const Index& index, const RepoMapOptions& options) {
  ByteEstimateCounter estimate;
  const TokenCounter& counter = options.counter ? *options.counter : estimate;
  std::vector<RankedDefinition> ranked = rank_definitions(index, options);
  RepoMap best;
  // Binary search for the most definitions whose rendering fits the budget. Each line costs at
  // least a couple of tokens, which bounds the search.
  std::size_t lo = 0, hi = std::min(ranked.size(), options.token_budget / 2 + 1);
  while (lo < hi) {
    std::size_t mid = (lo + hi + 1) / 2;
    std::vector<RankedDefinition> head(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(mid));
    std::string text = render(head);
    std::size_t tokens = counter.count(text);
    if (tokens <= options.token_budget) {
      lo = mid;
      best.text = std::move(text);
      best.tokens = tokens;
    } else {
      hi = mid - 1;
    }
  }
  best.definitions = lo;
  best.definitions_left_out = ranked.size() - lo;
  std::unordered_set<const FileTags*> shown;
  for (std::size_t i = 0; i < lo; ++i) shown.insert(ranked[i].file);
  best.files = shown.size();
  return best;
}

}  // namespace ponder::agent
