#pragma once
// Subcommands of the ponder executable. Each takes its arguments (after the subcommand name)
// and returns the process exit status: 0 success, 1 failure, 2 bad usage.
#include <string>
#include <vector>

namespace ponder::cli {

int cmd_index(const std::vector<std::string>& args);
int cmd_tokenize(const std::vector<std::string>& args);
int cmd_models(const std::vector<std::string>& args);
int cmd_generate(const std::vector<std::string>& args);
int cmd_bench(const std::vector<std::string>& args);

/// The cache folder: $XDG_CACHE_HOME/ponder, else $HOME/.cache/ponder, else "" (no cache).
std::string default_cache_dir();

}  // namespace ponder::cli
