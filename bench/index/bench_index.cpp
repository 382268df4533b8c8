// bench_index: how fast the workspace index is on a large real tree.
//
//   bench_index [--threads N] [--json FILE] [--edit-file PATH] [--edits N] DIR...
//
// MB/s is source bytes over the whole cold run; "ts MB/s" is tree-sitter alone (read + parse,
// same threads) on the same files, the reference the index is measured against.
// For each DIR: a cold index (empty tag cache: read, parse, extract tags, write the cache), a
// warm re-run (same cache), and the repo map. Then incremental edits in one large file (the
// given --edit-file, else the first file of about 5,000 lines found in the trees): each edit is
// Document::edit (ts_tree_edit + incremental reparse + tag update), timed one by one, for three
// kinds of keystroke (see bench_edit_kind).
// Prints a table; --json writes the figures too.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "agent/document.h"
#include "agent/parser.h"
#include "agent/index.h"
#include "agent/repo_map.h"

using namespace ponder::agent;
using clock_type = std::chrono::steady_clock;

namespace {

double since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

// The reference: tree-sitter alone on the same files and threads — read and parse, no tags,
// no cache. Returns MB/s.
double parse_only_mb_per_s(Source& source, unsigned threads) {
  std::vector<Skipped> skipped;
  std::vector<SourceFile> files = source.list(ListOptions{}, &skipped);
  std::atomic<std::size_t> next{0};
  std::atomic<std::uint64_t> bytes{0};
  auto t0 = clock_type::now();
  auto worker = [&] {
    Parser parser;
    std::string text, error;
    for (std::size_t i; (i = next.fetch_add(1)) < files.size();) {
      if (!source.read(files[i].path, &text, &error) || looks_binary(text)) continue;
      TreePtr tree = parser.parse(detect_language(files[i].path, text.substr(0, 128)), text, nullptr, &error);
      bytes += text.size();
    }
  };
  if (threads == 0) threads = std::thread::hardware_concurrency();
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  return static_cast<double>(bytes.load()) / 1e6 / since(t0);
}

struct TreeResult {
  std::string dir;
  double parse_only_mb_s = 0;
  IndexStats cold, warm;
  double map_seconds = 0;
  std::size_t map_tokens = 0;
  double rss_mb = 0;
};

struct EditResult {
  std::string kind;
  std::size_t edits = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  std::size_t partial = 0, whole = 0;  // tag updates of the changed region only / whole file
};

// Times Document::edit (ts_tree_edit + incremental reparse + tag update) for `n` edits of one
// kind at random places, each undone afterwards (undo not timed), so the file stays as it was:
//   identifier — a letter typed inside an identifier (the commonest keystroke);
//   newline    — Enter pressed at a random place;
//   paren      — an unmatched '(' typed at a random place (breaks the syntax until closed).
EditResult bench_edit_kind(Document& doc, const std::string& kind, std::size_t n) {
  EditResult r;
  r.kind = kind;
  std::mt19937 rng(42);
  std::vector<double> ms;
  std::string error;
  auto before = doc.update_counts();
  const std::string& text = doc.text();
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t at;
    for (;;) {
      at = 1 + static_cast<std::uint32_t>(rng() % (text.size() - 1));
      if (kind != "identifier") break;
      if (std::isalpha(static_cast<unsigned char>(text[at - 1])) &&
          std::isalpha(static_cast<unsigned char>(text[at])))
        break;
    }
    const char* typed = kind == "identifier" ? "q" : kind == "newline" ? "\n" : "(";
    auto t0 = clock_type::now();
    doc.edit(at, at, typed, &error);
    ms.push_back(since(t0) * 1e3);
    doc.edit(at, at + 1, "", &error);
  }
  std::sort(ms.begin(), ms.end());
  r.edits = n;
  r.p50_ms = ms[ms.size() / 2];
  r.p99_ms = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
  r.max_ms = ms.back();
  r.partial = doc.update_counts().partial - before.partial;
  r.whole = doc.update_counts().whole - before.whole;
  return r;
}

// The first source file with 4,500 to 6,000 lines in `index` (a realistic large file).
std::string find_large_file(const std::string& root, const Index& index) {
  for (const auto& [path, f] : index.files())
    if (f.lines >= 4500 && f.lines <= 6000 && f.language != Language::unknown) return root + "/" + path;
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> dirs;
  unsigned threads = 0;
  std::string json_path, edit_file;
  std::size_t edits = 500;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = static_cast<unsigned>(std::atoi(argv[++i]));
    else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (a == "--edit-file" && i + 1 < argc) edit_file = argv[++i];
    else if (a == "--edits" && i + 1 < argc) edits = static_cast<std::size_t>(std::atoi(argv[++i]));
    else if (a == "-h" || a == "--help") {
      std::puts("usage: bench_index [--threads N] [--json FILE] [--edit-file PATH] [--edits N] DIR...");
      return 0;
    } else dirs.push_back(a);
  }
  if (dirs.empty()) dirs = {"/usr/include", "/usr/lib/python3/dist-packages"};

  std::vector<TreeResult> results;
  std::string large;
  for (const std::string& dir : dirs) {
    std::string error;
    std::shared_ptr<Source> source = open_directory(dir, &error);
    if (!source) {
      std::fprintf(stderr, "bench_index: %s\n", error.c_str());
      return 1;
    }
    auto cache = std::filesystem::temp_directory_path() / ("ponder-bench-cache-" + std::to_string(::getpid()));
    std::filesystem::remove_all(cache);
    IndexOptions options;
    options.threads = threads;
    options.cache_dir = cache.string();
    TreeResult r;
    r.dir = dir;
    auto index = Index::build(source, options, &r.cold);
    r.rss_mb = peak_rss_mb();
    Index::build(source, options, &r.warm);
    auto t0 = clock_type::now();
    RepoMapOptions mo;
    mo.token_budget = 4096;
    r.map_tokens = render_repo_map(*index, mo).tokens;
    r.map_seconds = since(t0);
    if (large.empty()) large = find_large_file(dir, *index);
    r.parse_only_mb_s = parse_only_mb_per_s(*source, threads);
    std::filesystem::remove_all(cache);
    results.push_back(std::move(r));
  }
  if (!edit_file.empty()) large = edit_file;
  std::vector<EditResult> edit_results;
  std::uint32_t large_lines = 0;
  bool large_has_errors = false;
  if (!large.empty()) {
    std::ifstream in(large, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    Document doc(large, detect_language(large, text.substr(0, 128)), text);
    large_lines = doc.file_tags().lines;
    large_has_errors = doc.file_tags().has_syntax_errors;
    for (const char* kind : {"identifier", "newline", "paren"})
      edit_results.push_back(bench_edit_kind(doc, kind, edits));
  }

  std::printf("%-34s %8s %8s %9s %8s %9s %9s %9s %9s %9s %8s\n", "tree", "files", "MB", "cold s",
              "MB/s", "ts MB/s", "files/s", "warm s", "cold/warm", "peak MB", "map s");
  for (const auto& r : results) {
    double mb = static_cast<double>(r.cold.bytes_parsed) / 1e6;
    std::printf("%-34s %8zu %8.1f %9.2f %8.2f %9.2f %9.0f %9.3f %8.1fx %9.0f %8.2f\n", r.dir.c_str(),
                r.cold.files, mb, r.cold.total_seconds, mb / r.cold.total_seconds, r.parse_only_mb_s,
                static_cast<double>(r.cold.parsed) / r.cold.total_seconds, r.warm.total_seconds,
                r.cold.total_seconds / r.warm.total_seconds, r.rss_mb, r.map_seconds);
  }
  for (const auto& r : results)
    for (const auto* s : {&r.cold, &r.warm})
      std::printf("  %-6s %s: list %.2f s, cache load %.2f s, parse %.2f s, tables %.2f s, cache save %.2f s\n",
                  s == &r.cold ? "cold" : "warm", r.dir.c_str(), s->list_seconds, s->cache_load_seconds,
                  s->parse_seconds, s->collect_seconds, s->cache_save_seconds);
  if (!large.empty()) {
    std::printf("\nincremental edits in %s (%u lines%s):\n", large.c_str(), large_lines,
                large_has_errors ? ", has syntax errors" : "");
    std::printf("%-12s %6s %9s %9s %9s %9s\n", "edit", "count", "p50 ms", "p99 ms", "max ms", "partial");
    for (const auto& e : edit_results)
      std::printf("%-12s %6zu %9.2f %9.2f %9.2f %5zu/%zu\n", e.kind.c_str(), e.edits, e.p50_ms,
                  e.p99_ms, e.max_ms, e.partial, e.partial + e.whole);
  }

  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << "{\"trees\": [";
    for (std::size_t i = 0; i < results.size(); ++i) {
      const auto& r = results[i];
      double mb = static_cast<double>(r.cold.bytes_parsed) / 1e6;
      out << (i ? ", " : "") << "{\"dir\": \"" << r.dir << "\", \"files\": " << r.cold.files
          << ", \"mb\": " << mb << ", \"cold_s\": " << r.cold.total_seconds
          << ", \"parse_s\": " << r.cold.parse_seconds << ", \"list_s\": " << r.cold.list_seconds
          << ", \"parse_only_mb_s\": " << r.parse_only_mb_s << ", \"warm_s\": " << r.warm.total_seconds << ", \"peak_rss_mb\": " << r.rss_mb
          << ", \"map_s\": " << r.map_seconds << "}";
    }
    out << "], \"edit_file\": \"" << large << "\", \"edit_lines\": " << large_lines
        << ", \"edits\": [";
    for (std::size_t i = 0; i < edit_results.size(); ++i) {
      const auto& e = edit_results[i];
      out << (i ? ", " : "") << "{\"kind\": \"" << e.kind << "\", \"p50_ms\": " << e.p50_ms
          << ", \"p99_ms\": " << e.p99_ms << ", \"max_ms\": " << e.max_ms << "}";
    }
    out << "]}\n";
  }
  return 0;
}
