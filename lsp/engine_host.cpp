#include "lsp/engine_host.h"

#include "engine/log.h"

namespace ponder::lsp {

EngineHost::EngineHost(EngineLoader loader, Observer observer)
    : loader_(std::move(loader)), observer_(std::move(observer)) {}

EngineHost::~EngineHost() {
  std::thread t;
  {
    std::lock_guard lock(mu_);
    ++generation_;
    t = std::move(loading_);
  }
  if (t.joinable()) t.join();
}

void EngineHost::configure(const ModelSettings& settings) {
  std::lock_guard lock(mu_);
  if (settings == settings_) return;
  settings_ = settings;
  ++generation_;
  engine_.reset();  // tasks still holding it finish with it
  if (state_ != State::loading) state_ = State::unloaded;
}

void EngineHost::load_async() {
  std::lock_guard lock(mu_);
  if (state_ == State::unloaded || state_ == State::failed) start_locked();
}

void EngineHost::start_locked() {
  if (loading_.joinable()) loading_.join();  // the previous load has finished (state != loading)
  state_ = State::loading;
  error_.clear();
  const ModelSettings settings = settings_;
  const std::uint64_t generation = generation_;
  loading_ = std::thread([this, settings, generation] {
    if (observer_) observer_(State::loading, "loading the model", 0);
    std::string error;
    std::unique_ptr<Engine> engine =
        loader_(settings, [&](const std::string& message, int percent) {
          if (observer_) observer_(State::loading, message, percent);
        }, &error);
    State now;
    std::string detail;
    {
      std::lock_guard lock(mu_);
      if (generation != generation_) {  // settings changed meanwhile: load again for the new ones
        state_ = State::unloaded;
        cv_.notify_all();
        return;
      }
      if (engine) {
        name_ = engine->model().name();
        engine_ = std::move(engine);
        state_ = State::ready;
        last_use_ = std::chrono::steady_clock::now();
        detail = name_;
      } else {
        error_ = error.empty() ? "the model could not be loaded" : error;
        state_ = State::failed;
        detail = error_;
      }
      now = state_;
      cv_.notify_all();
    }
    if (now == State::failed) log::error("model: ", detail);
    else log::info("model: loaded ", detail);
    if (observer_) observer_(now, detail, 100);
  });
}

std::shared_ptr<Engine> EngineHost::acquire(std::string* error) {
  std::unique_lock lock(mu_);
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (state_ == State::ready && engine_) {
      last_use_ = std::chrono::steady_clock::now();
      return engine_;
    }
    if (state_ != State::loading) {
      if (attempt > 0 && state_ == State::failed) break;
      start_locked();
    }
    cv_.wait(lock, [&] { return state_ != State::loading; });
  }
  *error = error_.empty() ? "the model is not loaded" : error_;
  return nullptr;
}

bool EngineHost::unload_if_idle(std::chrono::seconds idle) {
  std::lock_guard lock(mu_);
  if (idle.count() == 0 || state_ != State::ready) return false;
  if (std::chrono::steady_clock::now() - last_use_ < idle) return false;
  if (engine_.use_count() > 1) return false;  // a task is using it
  engine_.reset();
  state_ = State::unloaded;
  log::info("model: unloaded after ", idle.count(), " s idle");
  return true;
}

EngineHost::State EngineHost::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

std::string EngineHost::description() const {
  std::lock_guard lock(mu_);
  switch (state_) {
    case State::ready: return name_;
    case State::loading: return "loading";
    case State::failed: return "failed: " + error_;
    case State::unloaded: return "not loaded";
  }
  return "";
}

}  // namespace ponder::lsp
