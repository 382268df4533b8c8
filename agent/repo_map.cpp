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

struct Edge {
  std::uint32_t to;
  double weight;
  std::string_view name;  // the identifier that carries the edge (views a Tag's name)
};

struct Graph {
  std::vector<const FileTags*> files;
  std::vector<std::vector<Edge>> out;  // per file
};

Graph build_graph(const Index& index, const RepoMapOptions& options) {
  Graph g;
  std::unordered_map<const FileTags*, std::uint32_t> id;
  for (const auto& [path, f] : index.files()) {
    id.emplace(&f, static_cast<std::uint32_t>(g.files.size()));
    g.files.push_back(&f);
  }
  g.out.resize(g.files.size());
  std::unordered_set<std::string_view> focus(options.focus_symbols.begin(), options.focus_symbols.end());

  // name -> definers, and name -> (referencing file -> count)
  std::unordered_map<std::string_view, std::vector<std::uint32_t>> definers;
  std::unordered_map<std::string_view, std::unordered_map<std::uint32_t, std::uint32_t>> refs;
  for (std::uint32_t fi = 0; fi < g.files.size(); ++fi) {
    for (const Tag& t : g.files[fi]->tags) {
      if (is_definition(t.kind)) {
        auto& d = definers[t.name];
        if (d.empty() || d.back() != fi) d.push_back(fi);
      } else {
        ++refs[t.name][fi];
      }
    }
  }
  for (const auto& [name, defs] : definers) {
    double w = identifier_weight(std::string(name), focus, defs.size());
    auto r = refs.find(name);
    if (r == refs.end()) continue;  // never referenced: ranked by its file alone (below)
    for (const auto& [referrer, count] : r->second)
      for (std::uint32_t d : defs)
        g.out[referrer].push_back({d, w * std::sqrt(static_cast<double>(count)), name});
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
  std::vector<double> out_weight(g.files.size(), 0.0);
  for (std::size_t i = 0; i < g.files.size(); ++i)
    for (const Edge& e : g.out[i]) out_weight[i] += e.weight;
  std::unordered_map<const FileTags*, std::unordered_map<std::string_view, double>> def_rank;
  for (std::size_t i = 0; i < g.files.size(); ++i)
    for (const Edge& e : g.out[i])
      def_rank[g.files[e.to]][e.name] += rank[i] * e.weight / out_weight[i];

  std::unordered_set<std::string_view> focus(options.focus_files.begin(), options.focus_files.end());
  std::vector<RankedDefinition> out;
  for (std::size_t fi = 0; fi < g.files.size(); ++fi) {
    const FileTags* f = g.files[fi];
    if (!options.include_focus_files && focus.count(f->path)) continue;
    auto ranks = def_rank.find(f);
    std::size_t defs = 0;
    for (const Tag& t : f->tags) defs += is_definition(t.kind);
    // What nothing references still ranks a little, by its file's own rank, far below
    // anything that is referenced from a file of similar rank.
    const double unreferenced = defs ? rank[fi] * 1e-3 / static_cast<double>(defs) : 0.0;
    for (const Tag& t : f->tags) {
      if (!is_definition(t.kind) || t.signature.empty()) continue;
      double r = unreferenced;
      if (ranks != def_rank.end()) {
        auto it = ranks->second.find(t.name);
        if (it != ranks->second.end()) r += it->second;
      }
      out.push_back({f, &t, r});
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
