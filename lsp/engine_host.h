#pragma once
// The language server's model: loaded once in the background when first needed, shared by the
// tasks that use it, unloaded after an idle time and loaded again on demand. Loading itself (which
// model, which backend) is the caller's EngineLoader, so the server does not know about model
// files or the machine, and tests can give it a small generated model.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "engine/engine.h"

namespace ponder::lsp {

struct ModelSettings {
  std::string model;          // a path or spec; "" = the loader's choice (PONDER_MODEL, the best found)
  std::string backend = "auto";
  std::uint32_t context = 16384;
  unsigned threads = 0;
  friend bool operator==(const ModelSettings&, const ModelSettings&) = default;
};

/// Reports loading steps ("mapping weights", percent 0-100).
using LoadProgress = std::function<void(const std::string& message, int percent)>;
/// Loads the model; null with `error` when it cannot (no model found, not enough memory...).
using EngineLoader =
    std::function<std::unique_ptr<Engine>(const ModelSettings&, const LoadProgress&, std::string* error)>;

class EngineHost {
 public:
  enum class State { unloaded, loading, ready, failed };
  /// Called (from the loading thread) when the state changes or loading reports progress.
  using Observer = std::function<void(State, const std::string& detail, int percent)>;

  EngineHost(EngineLoader loader, Observer observer);
  ~EngineHost();

  /// New settings; different ones unload the model (loaded again when next needed).
  void configure(const ModelSettings& settings);
  /// Starts loading in the background unless loaded or loading.
  void load_async();
  /// Waits for the model (starting to load it when needed). Null with `error` when loading
  /// failed; a later call tries again.
  std::shared_ptr<Engine> acquire(std::string* error);
  /// Unloads the model when nobody has used it for `idle` (0 = never). Returns true if it did.
  bool unload_if_idle(std::chrono::seconds idle);
  State state() const;
  std::string description() const;  // the model's name when loaded, else the state in words

 private:
  void start_locked();
  EngineLoader loader_;
  Observer observer_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  ModelSettings settings_;
  State state_ = State::unloaded;
  std::shared_ptr<Engine> engine_;
  std::string error_, name_;
  std::chrono::steady_clock::time_point last_use_ = std::chrono::steady_clock::now();
  std::thread loading_;
  std::uint64_t generation_ = 0;  // bumped by configure(): a load for old settings is dropped
};

}  // namespace ponder::lsp
