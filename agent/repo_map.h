#pragma once
// The repo map: a ranked, compact view of the workspace for prompts (after aider's repomap).
//
// Files are nodes of a graph with an edge from each file that references an identifier to each
// file that defines it; personalised PageRank (the personalisation is the files and symbols the
// task is about) ranks the files, each file's rank flows to the definitions it references, and
// the best definitions are rendered as file headers with their signature lines, cut to a token
// budget.
#include <cstddef>
#include <string>
#include <vector>

#include "agent/index.h"
#include "agent/token_counter.h"

namespace ponder::agent {

struct RepoMapOptions {
  std::size_t token_budget = 1024;
  std::vector<std::string> focus_files;    // paths (as in the index) the task is about
  std::vector<std::string> focus_symbols;  // identifiers the task mentions
  bool include_focus_files = true;         // false: leave them out (the prompt shows them whole)
  const TokenCounter* counter = nullptr;   // null: ByteEstimateCounter
};

struct RankedDefinition {
  const FileTags* file;
  const Tag* tag;
  double rank;
};

/// PageRank of each file (same order as index.files()), summing to 1.
std::vector<double> rank_files(const Index& index, const RepoMapOptions& options);

/// Every definition with its rank, best first (ties: by path, then position).
std::vector<RankedDefinition> rank_definitions(const Index& index, const RepoMapOptions& options);

struct RepoMap {
  std::string text;              // the rendered map
  std::size_t tokens = 0;        // its cost, by options.counter
  std::size_t definitions = 0;   // definitions shown
  std::size_t files = 0;         // files shown
  std::size_t definitions_left_out = 0;
};

/// Renders the most important definitions that fit in options.token_budget: for each file (in
/// path order, so that maps of the same workspace share prefixes), a `path:` header and one
/// line per definition, `LINE│ signature`, indented by nesting depth.
RepoMap render_repo_map(const Index& index, const RepoMapOptions& options);

}  // namespace ponder::agent
