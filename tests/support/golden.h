#pragma once
// Golden files: text a test produces, compared with tests/fixtures/prompts/NAME.txt; a difference
// fails with `diff -u`. To accept new output after a deliberate change, run the test with
// PONDER_UPDATE_GOLDEN=1 (then review the diff in git).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "engine/model.h"
#include "support/temp_dir.h"

namespace ponder::test {

inline void check_golden(const std::string& name, const std::string& got) {
  const std::filesystem::path golden = std::filesystem::path(PONDER_FIXTURES) / "prompts";
  const std::filesystem::path file = golden / (name + ".txt");
  if (std::getenv("PONDER_UPDATE_GOLDEN")) {
    std::filesystem::create_directories(golden);
    std::ofstream(file, std::ios::binary) << got;
  }
  const std::string want = read_file(file);
  if (want == got) return;
  TempDir dir;
  std::ofstream(dir.path() / "got.txt", std::ios::binary) << got;
  const std::string cmd = "diff -u '" + file.string() + "' '" + (dir.path() / "got.txt").string() + "' > '" +
                          (dir.path() / "diff.txt").string() + "'";
  (void)std::system(cmd.c_str());
  FAIL_CHECK(name << " differs from " << file.string() << ":\n" << read_file(dir.path() / "diff.txt"));
}

/// The R1-Qwen tokenizer (../shared/testdata/r1_qwen_vocab.gguf), loaded once.
inline const Tokenizer& r1_tokenizer() {
  static std::unique_ptr<Tokenizer> tok = [] {
    std::string error;
    auto t = load_tokenizer(std::string(PONDER_SHARED_DIR) + "/testdata/r1_qwen_vocab.gguf", &error);
    INFO(error);
    REQUIRE(t);
    return t;
  }();
  return *tok;
}

}  // namespace ponder::test
