// `ponder index DIR`: what ponder understands of a codebase — its repo map or all its symbols.
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/index.h"
#include "agent/repo_map.h"
#include "cli/commands.h"

namespace ponder::cli {
namespace {

constexpr const char* kHelp = R"(Usage: ponder index DIR [options]

Indexes DIR with tree-sitter (C, C++, Python, JavaScript, TypeScript/TSX, Rust, Go, Java),
respecting .gitignore and .ponderignore, and prints its repo map: the most important
definitions, ranked by PageRank over the definition/reference graph, cut to a token budget.

Options:
  --map N              Token budget of the map (default 1024).
  --focus FILE...      Personalise the ranking towards these files (paths relative to DIR).
  --symbol NAME        Personalise the ranking towards this identifier (repeatable).
  --symbols            Print every symbol instead: file, line, kind, name (one per line).
  --format text|json   Output format (default text).
  --rev REVISION       Index the git tree of REVISION (e.g. HEAD, main~1) instead of the
                       working tree; DIR must be inside the repository.
  --threads N          Parser threads (default: every core).
  --max-file-size B    Skip files larger than B bytes (default 2097152).
  --cache-dir DIR      Tag cache folder (default $XDG_CACHE_HOME/ponder or ~/.cache/ponder).
  --no-cache           Neither read nor write the tag cache.
  --stats              Print indexing statistics to stderr.
  -h, --help           Show this help.
)";

struct Args {
  std::string dir;
  std::size_t map_tokens = 1024;
  std::vector<std::string> focus;
  std::vector<std::string> symbols_focus;
  bool symbols = false;
  bool json = false;
  std::string rev;
  unsigned threads = 0;
  std::uint64_t max_file = 2u << 20;
  std::string cache_dir = default_cache_dir();
  bool stats = false;
};

bool parse_number(const std::string& s, std::uint64_t* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (*end != '\0' || s[0] == '-') return false;
  *out = v;
  return true;
}

// Returns 0 to go on, or an exit status.
int parse(const std::vector<std::string>& args, Args* a) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& s = args[i];
    auto value = [&](const char* what) -> const std::string* {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "ponder index: %s needs a value\n", what);
        return nullptr;
      }
      return &args[++i];
    };
    std::uint64_t n = 0;
    if (s == "-h" || s == "--help") {
      std::fputs(kHelp, stdout);
      return -1;
    } else if (s == "--map") {
      const std::string* v = value("--map");
      if (!v || !parse_number(*v, &n)) return 2;
      a->map_tokens = n;
    } else if (s == "--focus") {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "ponder index: --focus needs at least one file\n");
        return 2;
      }
      while (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) a->focus.push_back(args[++i]);
    } else if (s == "--symbol") {
      const std::string* v = value("--symbol");
      if (!v) return 2;
      a->symbols_focus.push_back(*v);
    } else if (s == "--symbols") {
      a->symbols = true;
    } else if (s == "--format") {
      const std::string* v = value("--format");
      if (!v || (*v != "text" && *v != "json")) {
        std::fprintf(stderr, "ponder index: --format takes text or json\n");
        return 2;
      }
      a->json = *v == "json";
    } else if (s == "--rev") {
      const std::string* v = value("--rev");
      if (!v) return 2;
      a->rev = *v;
    } else if (s == "--threads") {
      const std::string* v = value("--threads");
      if (!v || !parse_number(*v, &n) || n > 1024) return 2;
      a->threads = static_cast<unsigned>(n);
    } else if (s == "--max-file-size") {
      const std::string* v = value("--max-file-size");
      if (!v || !parse_number(*v, &n)) return 2;
      a->max_file = n;
    } else if (s == "--cache-dir") {
      const std::string* v = value("--cache-dir");
      if (!v) return 2;
      a->cache_dir = *v;
    } else if (s == "--no-cache") {
      a->cache_dir.clear();
    } else if (s == "--stats") {
      a->stats = true;
    } else if (!s.empty() && s[0] == '-') {
      std::fprintf(stderr, "ponder index: unknown option %s (see ponder index --help)\n", s.c_str());
      return 2;
    } else if (a->dir.empty()) {
      a->dir = s;
    } else {
      std::fprintf(stderr, "ponder index: more than one folder given (%s, %s)\n", a->dir.c_str(),
                   s.c_str());
      return 2;
    }
  }
  if (a->dir.empty()) {
    std::fputs(kHelp, stderr);
    return 2;
  }
  return 0;
}

void print_stats(const agent::IndexStats& s) {
  std::fprintf(stderr,
               "indexed %zu files (%.1f MB, %zu tags) in %.2f s: %zu parsed, %zu from cache, "
               "%zu skipped\n",
               s.files, static_cast<double>(s.bytes) / 1e6, s.tags, s.total_seconds, s.parsed,
               s.from_cache, s.skipped.size());
}

}  // namespace

std::string default_cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/ponder";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/ponder";
  return {};
}

int cmd_index(const std::vector<std::string>& argv) {
  Args a;
  if (int rc = parse(argv, &a); rc != 0) return rc < 0 ? 0 : rc;

  std::string error;
  std::shared_ptr<agent::Source> source;
  if (a.rev.empty()) source = agent::open_directory(a.dir, &error);
  else source = agent::open_git_tree(a.dir, a.rev, &error);
  if (!source) {
    std::fprintf(stderr, "ponder index: %s\n", error.c_str());
    return 1;
  }
  agent::IndexOptions options;
  options.list.max_file_bytes = a.max_file;
  options.threads = a.threads;
  options.cache_dir = a.cache_dir;
  agent::IndexStats stats;
  auto index = agent::Index::build(source, options, &stats);

  for (const std::string& f : a.focus)
    if (!index->file(f))
      std::fprintf(stderr, "ponder index: --focus %s: not an indexed file of %s\n", f.c_str(),
                   a.dir.c_str());

  nlohmann::json out;
  if (a.symbols) {
    if (a.json) out["symbols"] = nlohmann::json::array();
    std::string text;
    for (const auto& [path, f] : index->files()) {
      for (const agent::Tag& t : f.tags) {
        if (a.json) {
          out["symbols"].push_back({{"file", path},
                                    {"line", t.name_range.start.line + 1},
                                    {"column", t.name_range.start.column + 1},
                                    {"kind", agent::tag_kind_name(t.kind)},
                                    {"name", t.name},
                                    {"scope", t.scope},
                                    {"definition", agent::is_definition(t.kind)},
                                    {"end_line", t.range.end.line + 1}});
        } else {
          text += path + ":" + std::to_string(t.name_range.start.line + 1) + "\t" +
                  std::string(agent::tag_kind_name(t.kind)) + "\t" +
                  (t.scope.empty() ? t.name : t.scope + std::string(agent::scope_separator(f.language)) + t.name) +
                  "\n";
        }
      }
    }
    if (!a.json) std::fwrite(text.data(), 1, text.size(), stdout);
  } else {
    agent::RepoMapOptions mo;
    mo.token_budget = a.map_tokens;
    mo.focus_files = a.focus;
    mo.focus_symbols = a.symbols_focus;
    agent::RepoMap map = agent::render_repo_map(*index, mo);
    if (a.json) {
      out["map"] = map.text;
      out["tokens"] = map.tokens;
      out["definitions"] = map.definitions;
      out["definitions_left_out"] = map.definitions_left_out;
    } else {
      std::fwrite(map.text.data(), 1, map.text.size(), stdout);
    }
  }
  if (a.json) {
    out["stats"] = {{"files", stats.files},           {"parsed", stats.parsed},
                    {"from_cache", stats.from_cache}, {"bytes", stats.bytes},
                    {"tags", stats.tags},             {"seconds", stats.total_seconds}};
    out["skipped"] = nlohmann::json::array();
    for (const auto& s : stats.skipped) out["skipped"].push_back({{"file", s.path}, {"reason", s.reason}});
    std::string text = out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::fwrite(text.data(), 1, text.size(), stdout);
  }
  if (a.stats) {
    print_stats(stats);
    for (const auto& s : stats.skipped) std::fprintf(stderr, "  skipped %s: %s\n", s.path.c_str(), s.reason.c_str());
    for (const auto& s : stats.warnings) std::fprintf(stderr, "  note %s: %s\n", s.path.c_str(), s.reason.c_str());
  }
  return 0;
}

}  // namespace ponder::cli
