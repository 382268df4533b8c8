#pragma once
// An Engine over a generated random-weight model for task tests, and the options that force
// the model's output to a given answer.
#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <string>

#include "agent/task.h"
#include "engine/engine.h"
#include "support/test_model.h"

namespace ponder::test {

/// A tiny qwen2 model (Q8_0, the reduced vocabulary) written to `dir`/m.gguf, in an Engine.
inline std::unique_ptr<Engine> tiny_engine(const std::filesystem::path& dir, std::uint32_t context = 2048) {
  std::string error;
  const std::string path = (dir / "m.gguf").string();
  REQUIRE(write_gguf(TestModelSpec::like_r1(Arch::qwen2), GgmlType::q8_0, path, &error));
  auto model = Model::open(path, &error);
  REQUIRE(model);
  EngineOptions opt;
  opt.backend.context = context;
  auto e = Engine::create(std::move(model), opt, &error);
  REQUIRE(e);
  return e;
}

/// Options that force `output` (as the model would write it after the template's <think>), then
/// the end of the turn.
inline agent::TaskOptions forcing(const Engine& engine, const std::string& output) {
  agent::TaskOptions opt;
  opt.forced = engine.tokenizer().encode(output);
  opt.forced.push_back(engine.model().tokens().eos);
  opt.max_tokens = static_cast<std::uint32_t>(opt.forced.size());
  return opt;
}

}  // namespace ponder::test
