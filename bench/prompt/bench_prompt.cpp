// bench_prompt: how long building a task's prompt takes on a large indexed workspace.
//
//   bench_prompt --vocab VOCAB.gguf [--budget TOKENS] [--map-share F] [--runs N] [--cache-dir DIR] DIR
//
// Indexes DIR (with the tag cache in --cache-dir, so a second invocation measures a warm index),
// then builds refactor prompts for targets in different files of DIR with the R1 tokenizer
// counting exactly: the first (cold: the repo map is rendered) and then N more for other targets
// with the same working set (warm: the map is reused from the RepoMapCache, as in the editor).
// --map-share: the repo map's share of the budget (default 0.9, so that the prompt is ~128K).
// Prints each prompt's tokens and milliseconds.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "agent/index.h"
#include "agent/prompt_builder.h"
#include "engine/model.h"

using namespace ponder;
using namespace ponder::agent;
using clock_type = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::string vocab, dir, cache_dir;
  std::size_t budget = 131072, runs = 5;
  double map_share = 0.9;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--vocab") vocab = value();
    else if (a == "--budget") budget = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--runs") runs = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--cache-dir") cache_dir = value();
    else if (a == "--map-share") map_share = std::strtod(value().c_str(), nullptr);
    else dir = a;
  }
  if (vocab.empty() || dir.empty()) {
    std::fprintf(stderr,
                 "usage: bench_prompt --vocab VOCAB.gguf [--budget TOKENS] [--map-share F] [--runs N] [--cache-dir DIR] DIR\n");
    return 2;
  }
  std::string error;
  auto tok = load_tokenizer(vocab, &error);
  auto source = open_directory(dir, &error);
  if (!tok || !source) {
    std::fprintf(stderr, "bench_prompt: %s\n", error.c_str());
    return 1;
  }
  auto t0 = clock_type::now();
  IndexOptions io;
  io.cache_dir = cache_dir;
  IndexStats stats;
  auto index = Index::build(std::shared_ptr<Source>(std::move(source)), io, &stats);
  std::printf("index: %zu files, %zu tags, %.2f s (%zu parsed, %zu from the cache)\n", stats.files, stats.tags,
              std::chrono::duration<double>(clock_type::now() - t0).count(), stats.parsed, stats.from_cache);

  // Targets: the first function definition of 1 + runs files that have one, spread over the tree.
  std::vector<std::pair<const FileTags*, const Tag*>> targets;
  const std::size_t n_files = index->files().size(), stride = std::max<std::size_t>(1, n_files / (runs + 1));
  std::size_t k = 0;
  for (const auto& [path, tags] : index->files()) {
    if (k++ % stride != 0 || targets.size() > runs) continue;
    for (const Tag& t : tags.tags)
      if (t.kind == TagKind::function && t.range.end.line - t.range.start.line < 60) {
        targets.emplace_back(&tags, &t);
        break;
      }
  }
  const TokenizerCounter counter(*tok);
  RepoMapCache cache;
  PromptOptions opt;
  opt.budget_tokens = budget;
  opt.counter = &counter;
  opt.map_cache = &cache;
  opt.map_share = map_share;
  for (const auto& [file, tag] : targets) opt.working_files.push_back(file->path);
  std::printf("| run | target | prompt tokens | ms | map rendered |\n|---|---|---|---|---|\n");
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const auto& [file, tag] = targets[i];
    std::string text;
    if (!index->source().read(file->path, &text, &error)) continue;
    TaskRequest r;
    r.target = {file->path, text, tag->range.start.line + 1, tag->range.end.line + 1, tag->name};
    const std::size_t renders = cache.renders();
    t0 = clock_type::now();
    BuiltPrompt p;
    if (!build_prompt(r, index.get(), opt, &p, &error)) {
      std::fprintf(stderr, "bench_prompt: %s\n", error.c_str());
      continue;
    }
    const double ms = std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
    std::printf("| %s | %s:%u | %zu | %.1f | %s |\n", i == 0 ? "cold" : "warm", file->path.c_str(), r.target.first_line,
                p.tokens, ms, cache.renders() > renders ? "yes" : "no");
  }
  return 0;
}
