#pragma once
// Subcommands of the ponder executable. Each takes its arguments (after the subcommand name)
// and returns the process exit status: 0 success, 1 failure, 2 bad usage.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/model_locator.h"

namespace ponder::cli {

int cmd_index(const std::vector<std::string>& args);
int cmd_tokenize(const std::vector<std::string>& args);
int cmd_models(const std::vector<std::string>& args);
int cmd_generate(const std::vector<std::string>& args);
int cmd_bench(const std::vector<std::string>& args);
int cmd_lsp(const std::vector<std::string>& args);
int cmd_review(const std::vector<std::string>& args);

/// The model named on the command line (`spec`), else by ./.ponder.json, else $PONDER_MODEL,
/// else the largest R1 distill found whose weights and a KV cache of `context` positions fit in
/// `available` bytes (0 and UINT64_MAX: when only its tokenizer is read).
bool pick_model(const std::string& spec, std::uint32_t context, std::uint64_t available, ModelRef* ref,
                std::string* error);

/// The cache folder: $XDG_CACHE_HOME/ponder, else $HOME/.cache/ponder, else "" (no cache).
std::string default_cache_dir();

}  // namespace ponder::cli
