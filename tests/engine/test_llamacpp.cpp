// The CPU backend against llama.cpp (tests/llamacpp/llama.mjs: the prebuilt CPU libraries of
// node-llama-cpp, installed by scripts/setup.sh). llama.cpp shares no code with ponder: it reads
// the GGUF files ponder's generator writes with its own loader and runs them with its own
// dequantizers, kernels, RoPE and attention. Where the PyTorch reference (test_cpu_backend.cpp)
// checks the math on dequantized weights, this checks that the files mean to the reference
// implementation of the format what they mean to ponder, type by type and architecture by
// architecture.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/wait.h>
#include <vector>

#include "engine/backend.h"
#include "engine/model.h"
#include "support/temp_dir.h"
#include "support/test_model.h"

using namespace ponder;
using ponder::test::TempDir;
using ponder::test::TestModelSpec;

namespace {

std::vector<std::int32_t> prompt(std::size_t n, std::uint32_t vocab, std::uint64_t seed) {
  std::vector<std::int32_t> ids(n);
  std::uint64_t x = seed;
  for (auto& id : ids) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    id = static_cast<std::int32_t>((x >> 33) % vocab);
  }
  return ids;
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

struct Case {
  Arch arch;
  GgmlType type;
  bool k_m;      // the Q4_K_M mix (Q6_K for some tensors) instead of `type` everywhere
  double bound;  // relative L2 of every row of logits
};

}  // namespace

#if defined(__x86_64__)  // node-llama-cpp's prebuilt package is for linux-x64
TEST_CASE("llama.cpp: every weight type and architecture gives llama.cpp's logits", "[llamacpp][backend][cpu]") {
  const std::filesystem::path dir_llama = std::filesystem::path(PONDER_SOURCE_DIR) / "tests" / "llamacpp";
  if (!std::filesystem::exists(dir_llama / "node_modules" / "node-llama-cpp"))
    FAIL("tests/llamacpp/node_modules is missing: run scripts/setup.sh");
  // Bounds: relative L2 over a row of logits less its mean, the worst of the 48 rows; measured
  // here (llama.cpp's haswell build, node-llama-cpp 3.21.1) in the comments.
  // - F32: both sides in float with F32 caches; only the order of the sums differs (6e-7).
  // - F16 / BF16: llama.cpp rounds the activations to the weights' type before its products
  //   (ponder widens the weights instead): one F16 rounding of each activation (unit roundoff
  //   2^-11, 4.9e-4; measured 5.2e-4) or one BF16 rounding (2^-8, 3.9e-3; measured 4.3e-3).
  // - The quantized types: both sides quantize the activations to 8 bits, by blocks of 32
  //   (Q8_0, Q4_0) or 256 (the K-quants), each with its own code, so the two differ by about as
  //   much as each differs from the exact product (PyTorch on the dequantized weights: 1.1e-2 to
  //   1.8e-2 in test_cpu_backend.cpp, bound 2e-2): 1.2e-2 to 1.6e-2. Q4_K on qwen2 (and the
  //   Q4_K_M mix on qwen2) came out equal to float rounding (6e-7), so there both sides' integer
  //   products were the same; not for every mix (qwen3's Q4_K_M: 1.3e-2), so the bound stays
  //   the quantized one.
  const Case cases[] = {
      {Arch::qwen2, GgmlType::f32, false, 1e-5},  {Arch::qwen3, GgmlType::f32, false, 1e-5},
      {Arch::llama, GgmlType::f32, false, 1e-5},  {Arch::qwen2, GgmlType::f16, false, 2e-3},
      {Arch::llama, GgmlType::bf16, false, 1e-2}, {Arch::qwen3, GgmlType::q8_0, false, 3e-2},
      {Arch::llama, GgmlType::q4_0, false, 3e-2}, {Arch::qwen2, GgmlType::q4_k, false, 3e-2},
      {Arch::qwen3, GgmlType::q5_k, false, 3e-2}, {Arch::llama, GgmlType::q6_k, false, 3e-2},
      {Arch::qwen3, GgmlType::q4_k, true, 3e-2},
  };
  constexpr std::size_t kTokens = 48;
  TempDir dir;
  std::string error;
  nlohmann::json jobs = nlohmann::json::array();
  std::vector<std::vector<std::int32_t>> ids;
  for (std::size_t i = 0; i < std::size(cases); ++i) {
    const Case& c = cases[i];
    const std::string path = (dir.path() / (std::to_string(i) + ".gguf")).string();
    REQUIRE(ponder::test::write_gguf(TestModelSpec::like_r1(c.arch), c.type, path, &error, c.k_m));
    auto m = Model::open(path, &error);
    REQUIRE(m);
    ids.push_back(prompt(kTokens, m->tokens().n_tokens, 1000 + i));
    jobs.push_back({{"model", path}, {"ids", ids.back()}, {"out", (dir.path() / (std::to_string(i) + ".f32")).string()}});
  }
  const auto jobs_path = dir.path() / "jobs.json", log_path = dir.path() / "log.txt";
  std::ofstream(jobs_path) << jobs.dump();
  const std::string cmd = "node " + quote((dir_llama / "llama.mjs").string()) + " logprobs " + quote(jobs_path.string()) + " >" +
                          quote((dir.path() / "info.json").string()) + " 2>" + quote(log_path.string());
  const int status = std::system(cmd.c_str());
  INFO("llama.mjs: " << read_file(log_path));
  REQUIRE((status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0));
  const auto info = nlohmann::json::parse(read_file(dir.path() / "info.json"), nullptr, false);
  REQUIRE(!info.is_discarded());
  WARN("llama.cpp " << info.value("cpu", std::string()));

  for (std::size_t i = 0; i < std::size(cases); ++i) {
    const Case& c = cases[i];
    INFO(arch_name(c.arch) << " " << ggml_type_info(static_cast<std::uint32_t>(c.type))->name << (c.k_m ? "_M" : ""));
    auto m = Model::open((dir.path() / (std::to_string(i) + ".gguf")).string(), &error);
    REQUIRE(m);
    const std::uint32_t V = m->config().n_vocab;
    REQUIRE(info["n_vocab"][i].get<std::uint32_t>() == V);
    const std::string raw = read_file(dir.path() / (std::to_string(i) + ".f32"));
    REQUIRE(raw.size() == kTokens * V * sizeof(float));
    std::vector<float> want(kTokens * V);
    std::memcpy(want.data(), raw.data(), raw.size());

    BackendOptions opt;
    opt.kv = KvType::f32;
    opt.context = 256;
    auto b = make_cpu_backend(*m, opt, &error);
    REQUIRE(b);
    std::vector<float> got(kTokens * V);
    REQUIRE(b->eval(ids[i].data(), ids[i].size(), got.data(), ids[i].size(), &error));
    // llama.cpp's rows are log-probabilities, the logits less a constant per row: both sides'
    // rows are compared less their means.
    double worst = 0;
    std::size_t argmax_same = 0;
    for (std::size_t t = 0; t < kTokens; ++t) {
      const float* g = got.data() + t * V;
      const float* w = want.data() + t * V;
      double mg = 0, mw = 0;
      for (std::size_t v = 0; v < V; ++v) {
        mg += g[v];
        mw += w[v];
      }
      mg /= V;
      mw /= V;
      double err = 0, norm = 0;
      std::size_t ag = 0, aw = 0;
      for (std::size_t v = 0; v < V; ++v) {
        const double d = (g[v] - mg) - (w[v] - mw);
        err += d * d;
        norm += (w[v] - mw) * (w[v] - mw);
        if (g[v] > g[ag]) ag = v;
        if (w[v] > w[aw]) aw = v;
      }
      double e = std::sqrt(err / norm);
      if (!std::isfinite(e)) e = INFINITY;  // a NaN or Inf logit fails the row (max() would skip a NaN)
      worst = std::max(worst, e);
      argmax_same += ag == aw;
    }
    WARN(arch_name(c.arch) << " " << ggml_type_info(static_cast<std::uint32_t>(c.type))->name << (c.k_m ? "_M" : "")
                           << ": worst row relative L2 " << worst << ", argmax equal in " << argmax_same << "/" << kTokens);
    CHECK(worst < c.bound);
    if (c.type == GgmlType::f32) CHECK(argmax_same == kTokens);
  }
}
#endif
