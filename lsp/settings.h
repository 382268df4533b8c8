#pragma once
// The language server's settings: defaults, then `.ponder.json` in the workspace root, then the
// client's initializationOptions and workspace/didChangeConfiguration, then the command line's
// --model. Keys are camelCase JSON (README, "Configuration").
#include <cstdint>
#include <optional>
#include <string>

#include "lsp/engine_host.h"
#include "lsp/json_rpc.h"

namespace ponder::lsp {

struct Settings {
  ModelSettings model;                       // model, backend, context, threads
  std::uint32_t prompt_budget = 0;           // prompt tokens; 0 = what the context leaves
  std::int64_t reasoning_budget = 2048;      // thinking tokens before </think> is forced; -1 none
  std::uint32_t max_tokens = 4096;           // tokens of output (reasoning included)
  std::optional<float> temperature;          // unset: the model's default (0.6 for R1)
  bool code_actions = true;
  bool hover = true;                         // explanations on hover
  bool suggestions = true;                   // refactor suggestions on save, as diagnostics
  bool hover_waits = false;                  // hover waits for the explanation instead of
                                             // answering with the signature at once
  std::uint32_t idle_unload_seconds = 0;     // unload the model after this idle time; 0 never
  std::uint32_t suggestion_debounce_ms = 1500;
  std::uint32_t suggestions_per_file = 3;    // symbols looked at per save
  std::uint32_t suggestions_per_hour = 60;   // in all files
};

/// Applies the keys present in `j` (an object) to `s`. False with `error` naming the first key
/// of a wrong type or value; keys before it are applied, unknown keys ignored.
bool apply_settings(const json& j, Settings* s, std::string* error);

}  // namespace ponder::lsp
