// The CUDA backend's host side, which runs without a GPU: the device memory plan, the choice of
// backend (--backend cpu|cuda|auto), and the shape-only GGUF files bench/gpu reads.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <string>

#include "engine/backend.h"
#include "engine/model.h"
#include "kernels/cuda.h"
#include "kernels/plan.h"
#include "support/temp_dir.h"
#include "support/test_model.h"

using namespace ponder;
using ponder::test::TempDir;
using ponder::test::TestModelSpec;

namespace {
constexpr std::uint64_t GiB = 1ull << 30;
}

TEST_CASE("cuda plan: a shape-only 7B GGUF opens with its real sizes and takes no disk", "[cuda_plan]") {
  TempDir dir;
  const std::string path = dir.str() + "/7b.gguf";
  std::string error;
  REQUIRE(test::write_gguf(TestModelSpec::r1_qwen_7b(), GgmlType::bf16, path, &error, false, /*with_data=*/false));
  struct stat st{};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK(static_cast<std::uint64_t>(st.st_blocks) * 512 < (64ull << 20));  // a hole, not 15 GB of zeros
  auto model = Model::open(path, &error);
  REQUIRE(model);
  const ModelConfig& c = model->config();
  CHECK(c.n_embd == 3584);
  CHECK(c.n_ff == 18944);
  CHECK(c.n_layer == 28);
  CHECK(c.n_head == 28);
  CHECK(c.n_head_kv == 4);
  CHECK(c.n_vocab == 152064);
  // 7.6 B parameters in BF16 (MODEL_FACTS.md: 15.2 GB).
  CHECK(model->parameters() > 7.5e9);
  CHECK(model->parameters() < 7.7e9);
  CHECK(static_cast<double>(st.st_size) > 15.0e9);

  // The plan: weights as stored, the KV cache of 128K positions in F16 (28 layers × 2 × 4 heads ×
  // 128 × 2 bytes = 57,344 bytes per position: 7.0 GiB), and a workspace that shrinks with the chunk.
  const cuda::CudaPlan p = cuda::plan_memory(c, model->weights(), 131072, KvType::f16, 2048);
  CHECK(p.weights >= model->weight_bytes());
  CHECK(p.weights < model->weight_bytes() + (64ull << 20));
  CHECK(p.kv_cache == 131072ull * 57344);
  CHECK(p.scratch == 0 + ((2048ull * 18944 * 2 + 255) / 256 * 256));  // BF16: no weight to dequantize
  const cuda::CudaPlan small = cuda::plan_memory(c, model->weights(), 131072, KvType::f16, 256);
  CHECK(small.activations * 8 <= p.activations + 8 * 256 * 8);
  CHECK(p.total() == p.weights + p.kv_cache + p.workspace());

  // An H200 holds it with the largest chunk; a 24 GiB card does not hold 128K, and says what would fit.
  cuda::CudaPlan chosen;
  std::string message;
  REQUIRE(cuda::choose_plan(c, model->weights(), 131072, KvType::f16, 139 * GiB, &chosen, &message));
  CHECK(chosen.chunk == 2048);
  CHECK_FALSE(cuda::choose_plan(c, model->weights(), 131072, KvType::f16, 20 * GiB, &chosen, &message));
  INFO(message);
  CHECK(message.find("the largest context that fits is ") != std::string::npos);
  CHECK(message.find("KV cache 7.00 GiB for 131072 tokens") != std::string::npos);
  // ... and that context does fit, with chunks of 256, where 256 more would not.
  const auto at = message.find("fits is ") + 8;
  const std::uint32_t fits = static_cast<std::uint32_t>(std::stoul(message.substr(at)));
  CHECK(fits % 256 == 0);
  CHECK(cuda::plan_memory(c, model->weights(), fits, KvType::f16, 256).total() <= 20 * GiB);
  CHECK(cuda::plan_memory(c, model->weights(), fits + 256, KvType::f16, 256).total() > 20 * GiB);
  // A Q8_0 cache takes 34/64 of the F16 one.
  CHECK(cuda::plan_memory(c, model->weights(), 131072, KvType::q8_0, 2048).kv_cache == 131072ull * 57344 / 64 * 34);
  // Not even the weights.
  CHECK_FALSE(cuda::choose_plan(c, model->weights(), 4096, KvType::f16, 8 * GiB, &chosen, &message));
  CHECK(message.find("not even the weights fit") != std::string::npos);
}

TEST_CASE("cuda plan: a quantized model reserves a scratch for its largest dequantized matrix", "[cuda_plan]") {
  TempDir dir;
  const std::string path = dir.str() + "/q.gguf";
  std::string error;
  REQUIRE(test::write_gguf(TestModelSpec::r1_qwen_1_5b(), GgmlType::q4_k, path, &error, true, false));
  auto model = Model::open(path, &error);
  REQUIRE(model);
  const cuda::CudaPlan p = cuda::plan_memory(model->config(), model->weights(), 4096, KvType::f16, 512);
  // The largest layer matrix is 8960 × 1536 (gate, up, down), as F16.
  const std::uint64_t largest = 8960ull * 1536 * 2, activations = 512ull * 8960 * 2;
  CHECK(p.scratch == largest + activations);
}

TEST_CASE("backend choice: names, and what each choice gives on this machine", "[cuda_plan]") {
  BackendChoice choice = BackendChoice::cpu;
  CHECK(parse_backend_choice("cuda", &choice));
  CHECK(choice == BackendChoice::cuda);
  CHECK(parse_backend_choice("auto", &choice));
  CHECK(choice == BackendChoice::automatic);
  CHECK(parse_backend_choice("cpu", &choice));
  CHECK(choice == BackendChoice::cpu);
  CHECK_FALSE(parse_backend_choice("gpu", &choice));
  CHECK_FALSE(parse_backend_choice("", &choice));

  TempDir dir;
  const std::string path = dir.str() + "/tiny.gguf";
  std::string error;
  REQUIRE(test::write_gguf(TestModelSpec{}, GgmlType::f32, path, &error));
  auto model = Model::open(path, &error);
  REQUIRE(model);
  BackendOptions bo;
  bo.context = 64;
  std::string note;
  auto cpu = make_backend(BackendChoice::cpu, *model, bo, &error, &note);
  REQUIRE(cpu);
  CHECK(cpu->name() == "cpu");
  CHECK_FALSE(cpu->can_sample());
  std::int32_t next = -1;
  CHECK_FALSE(cpu->eval_sample(1, SamplingParams{}, 1, 0, 647, &next, &error));
  CHECK(error == "cpu backend cannot sample by itself");
  CHECK(cpu->cached() == 0);

  std::string why;
  if (cuda::available(&why)) {
    auto gpu = make_backend(BackendChoice::automatic, *model, bo, &error, &note);
    REQUIRE(gpu);
    CHECK(gpu->name() == "cuda");
    CHECK(note.empty());
  } else {
    // No GPU here: auto runs on the CPU, cuda is a clear error that says why.
    auto fallback = make_backend(BackendChoice::automatic, *model, bo, &error, &note);
    REQUIRE(fallback);
    CHECK(fallback->name() == "cpu");
    error.clear();
    CHECK_FALSE(make_backend(BackendChoice::cuda, *model, bo, &error, &note));
    INFO(error);
    CHECK(error.find(why) != std::string::npos);
    CHECK(cuda::copy_bandwidth(&error) == 0);
  }
}
