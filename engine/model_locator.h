#pragma once
// Finding model files a user already has (DESIGN.md, "Model files a user already has").
//
// A model is named by a spec:
//   /path/to/model.gguf         a GGUF file
//   /path/to/snapshot/          a Hugging Face snapshot folder (config.json + *.safetensors)
//   ollama:NAME[:TAG]           Ollama's store: manifest -> the GGUF blob (TAG defaults to latest;
//                               NAME may carry a namespace or host: hf.co/org/repo)
//   hf:ORG/NAME[@REVISION]      the Hugging Face cache: models--ORG--NAME/snapshots/<rev>/
// Without a spec, the first of --model, the LSP settings, `.ponder.json` and $PONDER_MODEL that
// is set wins; with none set, the largest R1 distill found that fits in memory.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/model.h"

namespace ponder {

/// Where to look. from_environment() honours $OLLAMA_MODELS, $HF_HUB_CACHE, $HF_HOME and $HOME.
struct ModelSearchPaths {
  std::vector<std::string> ollama;  // roots holding manifests/ and blobs/
  std::vector<std::string> hf;      // hub caches holding models--ORG--NAME/
  static ModelSearchPaths from_environment();
};

struct ModelRef {
  std::string spec;  // as the user gave it (or as found)
  std::string path;  // the GGUF file or the snapshot folder
  ModelFormat format = ModelFormat::gguf;
};

/// Resolves a spec to a file or folder that exists. False with `error` saying what was looked at.
bool resolve_model(std::string_view spec, const ModelSearchPaths& paths, ModelRef* out,
                   std::string* error);

struct FoundModel {
  ModelRef ref;
  std::string name;       // "deepseek-r1:7b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
  std::string arch;       // qwen2, qwen3, llama
  std::string type;       // Q4_K_M, BF16, ...
  std::uint64_t bytes = 0;       // weights
  std::uint64_t parameters = 0;
  ModelConfig config;
};

/// The R1 distills on this machine (Ollama's store and the Hugging Face cache), largest first.
/// Files that cannot be read are reported in `problems` and skipped.
std::vector<FoundModel> find_models(const ModelSearchPaths& paths, std::vector<std::string>* problems);

/// The candidates for the model, in the order DESIGN.md gives: the first non-empty one wins.
struct ModelChoice {
  std::string command_line;  // --model
  std::string lsp;           // initializationOptions / didChangeConfiguration
  std::string config_file;   // .ponder.json "model"
  std::string environment;   // $PONDER_MODEL
};

/// Picks the model: the first spec given, resolved; else the largest found model whose weights
/// plus KV cache for `context` fit in `available` bytes. False with `error` (what was tried,
/// and how to name a model) when none is found or none fits.
bool choose_model(const ModelChoice& choice, const ModelSearchPaths& paths, std::uint32_t context,
                  std::uint64_t available, ModelRef* out, std::string* error);

/// The "model" of `<dir>/.ponder.json`, or empty when there is none. A malformed file is an
/// error (false, with the file and the problem).
bool read_config_model(const std::string& dir, std::string* model, std::string* error);

}  // namespace ponder
