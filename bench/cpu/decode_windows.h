#pragma once
// What the bench programs that compare decode variants in alternating windows share: the command
// line (--model M.gguf [-w WINDOWS] [-t THREADS]), the model and CPU backend, a 16-token prompt
// prefilled once, and windows of 8 greedy decode steps after it, each timed.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/bench_run.h"
#include "engine/model.h"

namespace ponder::bench {

class DecodeWindows {
 public:
  static constexpr int kSteps = 8, kPrompt = 16;

  /// Parses the command line and makes the backend (which maps the weights in 2 MiB pages), then
  /// prefills the prompt. False after printing the usage or the error, prefixed with `name`.
  bool open(int argc, char** argv, const char* name) {
    name_ = name;
    std::string path;
    long threads = 0;
    for (int i = 1; i < argc; ++i) {
      const bool has_value = i + 1 < argc;
      if (std::strcmp(argv[i], "--model") == 0 && has_value) path = argv[++i];
      else if (std::strcmp(argv[i], "-w") == 0 && has_value) windows_ = std::atol(argv[++i]);
      else if (std::strcmp(argv[i], "-t") == 0 && has_value) threads = std::atol(argv[++i]);
      else path.clear(), i = argc;
    }
    if (path.empty() || windows_ < 1 || threads < 0) {
      std::fprintf(stderr, "usage: %s --model M.gguf [-w WINDOWS] [-t THREADS]\n", name);
      return false;
    }
    std::string error;
    model_ = Model::open(path, &error);
    if (model_) {
      options_.context = kPrompt + kSteps;
      options_.threads = static_cast<unsigned>(threads);
      backend_ = make_cpu_backend(*model_, options_, &error);
    }
    if (backend_) {
      real_ = model_->tokens().n_tokens;
      logits_.resize(model_->config().n_vocab);
      prompt_ = bench_tokens(kPrompt, real_, 0);
      if (backend_->eval(prompt_.data(), prompt_.size(), logits_.data(), 1, &error)) return true;
    }
    std::fprintf(stderr, "%s: %s\n", name, error.c_str());
    return false;
  }

  /// kSteps greedy steps after the prompt (the cache cut back to it first): their seconds, or a
  /// negative number after printing the backend's error.
  double window() {
    backend_->truncate(kPrompt);
    std::int32_t id = prompt_.back();
    std::string error;
    const auto t0 = std::chrono::steady_clock::now();
    for (int s = 0; s < kSteps; ++s) {
      if (!backend_->eval(&id, 1, logits_.data(), 1, &error)) {
        std::fprintf(stderr, "%s: %s\n", name_, error.c_str());
        return -1;
      }
      id = static_cast<std::int32_t>(std::max_element(logits_.begin(), logits_.begin() + real_) - logits_.begin());
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  const Model& model() const { return *model_; }
  const BackendOptions& options() const { return options_; }
  long windows() const { return windows_; }

 private:
  const char* name_ = "";
  long windows_ = 40;
  BackendOptions options_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Backend> backend_;
  std::uint32_t real_ = 0;
  std::vector<float> logits_;
  std::vector<std::int32_t> prompt_;
};

}  // namespace ponder::bench
