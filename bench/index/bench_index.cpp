// bench_index: how fast the workspace index is on a large real tree.
//
//   bench_index [--threads N] [--json FILE] [--edit-file PATH] [--edits N] DIR...
//
// For each DIR: a cold index (empty tag cache: read, parse, extract tags, write the cache), a
// warm re-run (same cache), and the repo map. Then incremental edits in one large file (the
// given --edit-file, else the first file of about 5,000 lines found in the trees): each edit is
// Document::edit (ts_tree_edit + incremental reparse + tag update), timed one by one.
// Prints a table; --json writes the figures too.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "agent/document.h"
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

struct TreeResult {
  std::string dir;
  IndexStats cold, warm;
  double map_seconds = 0;
  std::size_t map_tokens = 0;
  double rss_mb = 0;
};

struct EditResult {
  std::string file;
  std::uint32_t lines = 0;
  std::size_t edits = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0, mean_ms = 0;
};

EditResult bench_edits(const std::string& path, std::size_t n) {
  EditResult r;
  r.file = path;
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  Document doc(path, detect_language(path, text.substr(0, 128)), text);
  r.lines = count_lines(doc.text());
  std::mt19937 rng(42);
  std::vector<double> ms;
  const char* typed[] = {"x", "_", "(", ")", " ", "\n", "1", ";", "{", "}"};
  std::string error;
  for (std::size_t i = 0; i < n; ++i) {
    // A typist's edits: insert a character, or delete one, at a random spot.
    std::uint32_t size = static_cast<std::uint32_t>(doc.text().size());
    std::uint32_t at = size ? static_cast<std::uint32_t>(rng() % size) : 0;
    bool insert = (rng() % 3) != 0 || size == 0;
    auto t0 = clock_type::now();
    if (insert) doc.edit(at, at, typed[rng() % std::size(typed)], &error);
    else doc.edit(at, at + 1, "", &error);
    ms.push_back(since(t0) * 1e3);
  }
  std::sort(ms.begin(), ms.end());
  r.edits = n;
  r.p50_ms = ms[ms.size() / 2];
  r.p99_ms = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
  r.max_ms = ms.back();
  double sum = 0;
  for (double v : ms) sum += v;
  r.mean_ms = sum / static_cast<double>(ms.size());
  return r;
}

// The first source file with 4,500 to 6,000 lines in `index` (a realistic large file).
std::string find_large_file(const std::string& root, const Index& index) {
  std::string best;
  for (const auto& [path, f] : index.files())
    if (f.lines >= 4500 && f.lines <= 6000 && f.language != Language::unknown) return root + "/" + path;
  return best;
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
    std::filesystem::remove_all(cache);
    results.push_back(std::move(r));
  }
  if (!edit_file.empty()) large = edit_file;
  EditResult er;
  if (!large.empty()) er = bench_edits(large, edits);

  std::printf("%-34s %8s %8s %9s %8s %9s %9s %8s %9s %8s\n", "tree", "files", "MB", "cold s",
              "MB/s", "files/s", "warm s", "cold/warm", "peak MB", "map s");
  for (const auto& r : results) {
    double mb = static_cast<double>(r.cold.bytes_parsed) / 1e6;
    std::printf("%-34s %8zu %8.1f %9.2f %8.2f %9.0f %9.3f %8.1fx %9.0f %8.2f\n", r.dir.c_str(),
                r.cold.files, mb, r.cold.total_seconds, mb / r.cold.parse_seconds,
                static_cast<double>(r.cold.parsed) / r.cold.total_seconds, r.warm.total_seconds,
                r.cold.total_seconds / r.warm.total_seconds, r.rss_mb, r.map_seconds);
  }
  if (!large.empty())
    std::printf("\nincremental edit in %s (%u lines), %zu edits: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
                er.file.c_str(), er.lines, er.edits, er.p50_ms, er.p99_ms, er.max_ms);

  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << "{\"trees\": [";
    for (std::size_t i = 0; i < results.size(); ++i) {
      const auto& r = results[i];
      double mb = static_cast<double>(r.cold.bytes_parsed) / 1e6;
      out << (i ? ", " : "") << "{\"dir\": \"" << r.dir << "\", \"files\": " << r.cold.files
          << ", \"mb\": " << mb << ", \"cold_s\": " << r.cold.total_seconds
          << ", \"parse_s\": " << r.cold.parse_seconds << ", \"list_s\": " << r.cold.list_seconds
          << ", \"warm_s\": " << r.warm.total_seconds << ", \"peak_rss_mb\": " << r.rss_mb
          << ", \"map_s\": " << r.map_seconds << "}";
    }
    out << "], \"edit\": {\"file\": \"" << er.file << "\", \"lines\": " << er.lines
        << ", \"p50_ms\": " << er.p50_ms << ", \"p99_ms\": " << er.p99_ms << ", \"max_ms\": " << er.max_ms
        << "}}\n";
  }
  return 0;
}
