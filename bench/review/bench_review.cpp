// bench_review: how long `ponder review` takes from its start to the model's first token, model
// time excluded — reading the change with libgit2, indexing the reviewed revision, gathering the
// context of each hunk and planning the prompts with the model's tokenizer counting exactly.
//
//   bench_review --vocab VOCAB.gguf [--lines N] [--files F] [--budget TOKENS] [--runs R] [--keep] SRC_DIR
//
// Makes a git repository (in a temporary folder) of SRC_DIR's source files, commits it, then
// commits a change of N lines (default 2,000), at most N/F (F default 40) in a file, in files
// spread through the tree: every changed line gets a comment appended, so each is a '-' and a '+'
// line of the diff. Then reviews that commit
// R times (default 3) in this process, the first with an empty tag cache (cold), the rest with
// the cache the first one wrote (warm), and prints each phase's milliseconds. --keep leaves the
// repository and its tag cache in place (to time `ponder review --plan` on it).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "agent/index.h"
#include "agent/language.h"
#include "agent/review.h"
#include "engine/model.h"

using namespace ponder;
using namespace ponder::agent;
namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

double ms_since(clock_type::time_point t) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
}

bool sh(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The comment that ends a line in `path`'s language.
std::string comment_for(const fs::path& path) {
  const Language lang = detect_language(path.filename().string());
  return lang == Language::python ? "  # reviewed" : "  // reviewed";
}

}  // namespace

int main(int argc, char** argv) {
  std::string vocab, src;
  std::size_t lines = 2000, files = 40, budget = 16320, runs = 3;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--vocab")
      vocab = value();
    else if (a == "--lines")
      lines = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--files")
      files = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--budget")
      budget = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--runs")
      runs = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--keep")
      keep = true;
    else
      src = a;
  }
  if (vocab.empty() || src.empty() || files == 0 || runs == 0) {
    std::fprintf(stderr,
                 "usage: bench_review --vocab VOCAB.gguf [--lines N] [--files F] [--budget TOKENS] [--runs R] [--keep] "
                 "SRC_DIR\n");
    return 2;
  }
  std::string error;
  auto tok = load_tokenizer(vocab, &error);
  if (!tok) {
    std::fprintf(stderr, "bench_review: %s\n", error.c_str());
    return 1;
  }

  // The repository: SRC_DIR's source files, committed; then the change.
  std::string tmpl = (fs::temp_directory_path() / "bench-review-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) return 1;
  const fs::path root = tmpl, repo = root / "repo", cache = root / "cache";
  std::vector<fs::path> sources;
  std::uint64_t bytes = 0;
  for (auto it = fs::recursive_directory_iterator(src, fs::directory_options::skip_permission_denied);
       it != fs::recursive_directory_iterator(); ++it) {
    std::error_code ec;
    if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
    if (detect_language(it->path().filename().string()) == Language::unknown) continue;
    const std::uintmax_t size = it->file_size(ec);
    if (ec || size > (2u << 20)) continue;
    const fs::path to = repo / fs::relative(it->path(), src);
    fs::create_directories(to.parent_path());
    fs::copy_file(it->path(), to, ec);
    if (!ec) sources.push_back(to), bytes += size;
  }
  std::printf("repository: %zu source files, %.1f MB (copied from %s)\n", sources.size(), bytes / 1e6, src.c_str());
  const std::string git = "git -C '" + repo.string() + "' -c user.name=b -c user.email=b@e -c commit.gpgsign=false ";
  if (!sh(git + "init -q -b main") || !sh(git + "add -A") || !sh(git + "commit -q -m base")) return 1;
  // The change: `lines` lines, at most lines/files in a file, every other non-blank line from the
  // 20th on, in files taken evenly through the tree until there are enough.
  std::sort(sources.begin(), sources.end());
  std::size_t changed = 0, files_changed = 0;
  const std::size_t per_file = (lines + files - 1) / files;
  const std::size_t stride = std::max<std::size_t>(sources.size() / files, 1);
  std::vector<std::size_t> order;  // 0, stride, 2 stride, ..., then 1, stride + 1, ...
  for (std::size_t offset = 0; offset < stride; ++offset)
    for (std::size_t i = offset; i < sources.size(); i += stride) order.push_back(i);
  for (std::size_t k = 0; k < order.size() && changed < lines; ++k) {
    const fs::path& p = sources[order[k]];
    std::string text = read(p), out;
    std::size_t line_no = 0, here = 0;
    for (std::size_t at = 0; at < text.size();) {
      const std::size_t end = std::min(text.find('\n', at), text.size());
      std::string line = text.substr(at, end - at);
      ++line_no;
      if (line_no >= 20 && line_no % 2 == 0 && line.find_first_not_of(" \t\r") != std::string::npos &&
          here < per_file && changed < lines && line.back() != '\\')
        line += comment_for(p), ++here, ++changed;
      out += line + (end < text.size() ? "\n" : "");
      at = end + 1;
    }
    if (here == 0) continue;
    ++files_changed;
    std::ofstream(p, std::ios::binary) << out;
  }
  if (!sh(git + "commit -q -am 'A change of many lines'")) return 1;
  std::printf("change: %zu lines in %zu files; budget %zu tokens a prompt; R1-Qwen tokenizer\n\n", changed,
              files_changed, budget);

  std::printf(
      "| run | read changes | index | plan (context, tokens) | total ms | parts | prompt tokens | files parsed / "
      "cached |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  const TokenizerCounter counter(*tok);
  for (std::size_t r = 0; r < runs; ++r) {
    const auto start = clock_type::now();
    ReviewSpec spec;
    spec.repo = repo.string();
    ChangeSet changes;
    if (!read_changes(spec, &changes, &error)) {
      std::fprintf(stderr, "bench_review: %s\n", error.c_str());
      return 1;
    }
    const double t_changes = ms_since(start);
    auto t = clock_type::now();
    IndexOptions io;
    io.cache_dir = cache.string();
    IndexStats stats;
    auto index = Index::build(changes.new_side, io, &stats);
    const double t_index = ms_since(t);
    t = clock_type::now();
    ReviewPlanOptions po;
    po.counter = &counter;
    po.budget_tokens = budget;
    ReviewPlan plan;
    if (!plan_review(changes, index.get(), po, &plan, &error)) {
      std::fprintf(stderr, "bench_review: %s\n", error.c_str());
      return 1;
    }
    const double t_plan = ms_since(t), total = ms_since(start);
    std::size_t tokens = 0;
    for (const ReviewPart& p : plan.parts) tokens += p.tokens;
    std::printf("| %s | %.0f | %.0f | %.0f | **%.0f** | %zu | %zu | %zu / %zu |\n", r == 0 ? "cold" : "warm", t_changes,
                t_index, t_plan, total, plan.parts.size(), tokens, stats.parsed, stats.from_cache);
  }
  if (keep) {
    std::printf("\nkept: the repository %s, its tag cache %s\n", repo.c_str(), cache.c_str());
    return 0;
  }
  std::error_code ec;
  fs::remove_all(root, ec);
  return 0;
}
