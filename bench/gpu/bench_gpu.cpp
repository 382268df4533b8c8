// bench_gpu: the CUDA backend on the real R1 distill shapes, with weights made in device memory
// (the GGUF files hold only the shapes: their data is a hole), so no multi-gigabyte file is
// written, carried or read.
//
//   decode   tokens/s after a 512-token prompt (one graph replay per token, sampling on the
//            device), for the 1.5B and 7B shapes in BF16, Q8_0 and Q4_K_M and the 32B in Q4_K_M;
//            limit = copy bandwidth ÷ weight bytes (batch-1 decode reads every weight once)
//   prefill  time for 4K, 32K and 128K-token prompts of the 7B shape (BF16); limit = FLOPs ÷ the
//            bf16 peak (990 TFLOP/s, MODEL_FACTS.md), FLOPs = 2 · parameters · T + attention
//            4 · (T² / 2) · layers · heads · head_dim
//   ttft     time to first token of a 4,096-token prompt through the Engine, cold and with a warm
//            shared prefix of 4,000 tokens (7B BF16)
//
// Usage: bench_gpu [--out DIR] [--quick] [--max-prefill-s S] [--profile-decode]
// Prints one table at the end; writes DIR/bench_gpu.json.
// --profile-decode: for a profiler (bench/gpu-check.sh with PROFILE=1 runs it under ncu): the
// 1.5B Q8_0 and 7B BF16 decodes only, two steps of each inside an NVTX range named "decode"
// after the warm-up, nothing timed.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/model.h"
#include "kernels/cuda.h"
#include "support/test_model.h"
#include <nvtx3/nvToolsExt.h>

namespace {

using Clock = std::chrono::steady_clock;
using ponder::GgmlType;
using ponder::test::TestModelSpec;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Row {
  std::string test, shape, type, figure, limit, ratio, note;
};

std::vector<std::int32_t> tokens(std::size_t n, std::uint32_t real, std::size_t salt) {
  std::vector<std::int32_t> ids(n);
  for (std::size_t i = 0; i < n; ++i) ids[i] = static_cast<std::int32_t>((i * 7919 + 13 + salt * 104729) % real);
  return ids;
}

struct Shape {
  const char* name;
  TestModelSpec spec;
};

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// A GGUF with the shape and no data, in `dir`.
std::unique_ptr<ponder::Model> shape_model(const Shape& s, GgmlType type, bool k_m, const std::string& dir,
                                           std::string* error) {
  const std::string path = dir + "/" + s.name + "-" + (k_m ? std::string("q4_K_M") : std::string(ponder::ggml_type_info(static_cast<std::uint32_t>(type))->name)) + ".gguf";
  if (!ponder::test::write_gguf(s.spec, type, path, error, k_m, /*with_data=*/false)) return nullptr;
  return ponder::Model::open(path, error);
}

std::unique_ptr<ponder::Backend> cuda_backend(const ponder::Model& m, std::uint32_t context, std::string* error) {
  ponder::BackendOptions bo;
  bo.context = context;
  ponder::cuda::CudaBackendOptions co;
  co.random_weights = true;
  return ponder::make_cuda_backend(m, bo, error, co);
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_dir = "/tmp/bench_gpu";
  bool quick = false, profile = false;
  double max_prefill_s = 120;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--out" && i + 1 < argc) out_dir = argv[++i];
    else if (a == "--quick") quick = true;
    else if (a == "--max-prefill-s" && i + 1 < argc) max_prefill_s = std::atof(argv[++i]);
    else if (a == "--profile-decode") profile = true;
    else {
      std::fprintf(stderr, "usage: bench_gpu [--out DIR] [--quick] [--max-prefill-s S] [--profile-decode]\n");
      return 2;
    }
  }
  std::string why;
  if (!ponder::cuda::available(&why)) {
    std::fprintf(stderr, "bench_gpu: %s\n", why.c_str());
    return 77;
  }
  std::filesystem::create_directories(out_dir);
  const std::string device = ponder::cuda::describe_device();
  const double bandwidth = ponder::cuda::copy_bandwidth(&why);
  std::printf("device: %s; copy bandwidth %.0f GB/s\n", device.c_str(), bandwidth);
  std::fflush(stdout);
  nlohmann::json details = {{"device", device}, {"copy_bandwidth_gb_per_s", bandwidth}};
  std::vector<Row> rows;

  const Shape s15{"r1-qwen-1.5b", TestModelSpec::r1_qwen_1_5b()};
  const Shape s7{"r1-qwen-7b", TestModelSpec::r1_qwen_7b()};
  const Shape s32{"r1-qwen-32b", TestModelSpec::r1_qwen_32b()};
  struct Case {
    const Shape* shape;
    GgmlType type;
    bool k_m;
  };
  std::vector<Case> cases = {{&s15, GgmlType::bf16, false}, {&s15, GgmlType::q8_0, false}, {&s15, GgmlType::q4_k, true},
                             {&s7, GgmlType::bf16, false},  {&s7, GgmlType::q8_0, false},  {&s7, GgmlType::q4_k, true},
                             {&s32, GgmlType::q4_k, true}};
  if (quick || profile) cases = {{&s15, GgmlType::q8_0, false}, {&s7, GgmlType::bf16, false}};

  // Decode.
  for (const Case& c : cases) {
    std::string error;
    const std::string type = c.k_m ? "Q4_K_M" : std::string(ponder::ggml_type_info(static_cast<std::uint32_t>(c.type))->name);
    Row row{"decode tg128 after pp512", c.shape->name, type, "", "", "", ""};
    auto model = shape_model(*c.shape, c.type, c.k_m, out_dir, &error);
    auto backend = model ? cuda_backend(*model, 1024, &error) : nullptr;
    if (!backend) {
      row.note = error;
      rows.push_back(row);
      std::printf("%s %s: %s\n", c.shape->name, type.c_str(), error.c_str());
      continue;
    }
    const std::uint32_t real = model->tokens().n_tokens;
    const auto prompt = tokens(512, real, 0);
    std::vector<float> logits(model->config().n_vocab);
    ponder::SamplingParams greedy;
    greedy.temperature = 0;
    bool ok = backend->eval(prompt.data(), prompt.size(), logits.data(), 1, &error);
    std::int32_t id = prompt.back();
    // Warm-up: the graph's capture and first replays.
    for (int i = 0; ok && i < 4; ++i) ok = backend->eval_sample(id, greedy, 1, i, real, &id, &error);
    if (profile) {
      nvtxRangePushA("decode");
      for (int i = 0; ok && i < 2; ++i) ok = backend->eval_sample(id, greedy, 1, i, real, &id, &error);
      nvtxRangePop();
      std::printf("profiled 2 decode steps of %s %s: %s\n", c.shape->name, type.c_str(), ok ? "ok" : error.c_str());
      continue;
    }
    const int n = 128;
    const auto t0 = Clock::now();
    for (int i = 0; ok && i < n; ++i) ok = backend->eval_sample(id, greedy, 1, i, real, &id, &error);
    const double s = since(t0);
    // The same with the logits copied to the host each step (the path penalties need).
    const auto t1 = Clock::now();
    for (int i = 0; ok && i < 32; ++i) ok = backend->eval(&id, 1, logits.data(), 1, &error);
    const double s_logits = since(t1);
    if (!ok) {
      row.note = error;
      rows.push_back(row);
      std::printf("%s %s: %s\n", c.shape->name, type.c_str(), error.c_str());
      continue;
    }
    const double tps = n / s, limit = bandwidth * 1e9 / static_cast<double>(model->decode_weight_bytes());
    row.figure = fmt("%.1f tok/s", tps);
    row.limit = fmt("%.1f tok/s", limit);
    row.ratio = fmt("%.2f", tps / limit);
    row.note = fmt("logits to host: %.1f tok/s", 32 / s_logits);
    rows.push_back(row);
    details["decode"].push_back({{"shape", c.shape->name},
                                 {"type", type},
                                 {"weight_bytes", model->weight_bytes()},
                                 {"decode_weight_bytes", model->decode_weight_bytes()},
                                 {"decode_tokens_per_s", tps},
                                 {"decode_logits_tokens_per_s", 32 / s_logits},
                                 {"limit_tokens_per_s", limit}});
    std::printf("decode %s %s: %.1f tok/s (limit %.1f)\n", c.shape->name, type.c_str(), tps, limit);
    std::fflush(stdout);
  }

  if (profile) return 0;

  // Prefill of the 7B shape (BF16) at 4K, 32K and 128K tokens, each from an empty cache.
  {
    std::string error;
    auto model = shape_model(s7, GgmlType::bf16, false, out_dir, &error);
    const std::uint32_t context = quick ? 32768 : 131072;
    auto backend = model ? cuda_backend(*model, context, &error) : nullptr;
    const ponder::ModelConfig& c = model ? model->config() : ponder::ModelConfig{};
    double last_s = 0, last_t = 0;
    for (std::uint32_t T : {4096u, 32768u, 131072u}) {
      Row row{"prefill", s7.name, "BF16", "", "", "", ""};
      row.test = "prefill " + std::to_string(T / 1024) + "K";
      if (!backend) {
        row.note = error;
        rows.push_back(row);
        break;
      }
      if (T > context) break;
      // Attention grows as T²: skip what would take longer than allowed.
      const double projected = last_t > 0 ? last_s * (T / last_t) * (T / last_t) : 0;
      if (projected > max_prefill_s) {
        row.note = fmt("skipped: projected %.0f s", projected);
        rows.push_back(row);
        continue;
      }
      backend->truncate(0);
      const auto prompt = tokens(T, model->tokens().n_tokens, 3);
      std::vector<float> logits(c.n_vocab);
      const auto t0 = Clock::now();
      const bool ok = backend->eval(prompt.data(), prompt.size(), logits.data(), 1, &error);
      const double s = since(t0);
      if (!ok) {
        row.note = error;
        rows.push_back(row);
        break;
      }
      const double flops = 2.0 * static_cast<double>(model->parameters()) * T +
                           4.0 * (static_cast<double>(T) * T / 2) * c.n_layer * c.n_head * c.head_dim;
      const double floor_s = flops / 990e12;
      row.figure = fmt("%.2f s", s);
      row.limit = fmt("%.2f s", floor_s);
      row.ratio = fmt("%.2f", floor_s / s);
      row.note = fmt("%.0f tok/s", T / s);
      rows.push_back(row);
      details["prefill"].push_back({{"tokens", T}, {"seconds", s}, {"floor_seconds", floor_s}});
      std::printf("prefill %u: %.2f s\n", T, s);
      std::fflush(stdout);
      last_s = s, last_t = T;
    }
  }

  // Time to first token through the Engine: cold 4,096 tokens, then 4,096 sharing 4,000.
  {
    std::string error;
    auto model = shape_model(s7, GgmlType::bf16, false, out_dir, &error);
    std::unique_ptr<ponder::Engine> engine;
    if (model) {
      ponder::EngineOptions eo;
      eo.backend.context = 8192;
      eo.make_backend = [](const ponder::Model& m, const ponder::BackendOptions& o, std::string* e) {
        ponder::cuda::CudaBackendOptions co;
        co.random_weights = true;
        return ponder::make_cuda_backend(m, o, e, co);
      };
      engine = ponder::Engine::create(std::move(model), eo, &error);
    }
    Row row{"ttft warm 4000/4096 vs cold", s7.name, "BF16", "", "", "", ""};
    if (!engine) {
      row.note = error;
    } else {
      const std::uint32_t real = engine->model().tokens().n_tokens;
      ponder::GenerateRequest r;
      r.max_tokens = 1;
      ponder::SamplingParams greedy;
      greedy.temperature = 0;
      r.sampling = greedy;
      ponder::GenerateResult warmup, cold, warm;
      r.prompt = tokens(64, real, 5);
      engine->generate(r, &warmup, &error);
      r.prompt = tokens(4096, real, 0);
      engine->generate(r, &cold, &error);
      const auto tail = tokens(96, real, 1);
      std::copy(tail.begin(), tail.end(), r.prompt.begin() + 4000);
      engine->generate(r, &warm, &error);
      if (cold.reason == ponder::StopReason::error || warm.reason == ponder::StopReason::error) {
        row.note = cold.error + warm.error;
      } else {
        const double ratio = warm.stats.time_to_first_token_s / cold.stats.time_to_first_token_s;
        row.figure = fmt("%.1f ms", warm.stats.time_to_first_token_s * 1e3);
        row.limit = fmt("cold %.1f ms", cold.stats.time_to_first_token_s * 1e3);
        row.ratio = fmt("%.3f", ratio);
        row.note = "reused " + std::to_string(warm.stats.reused_tokens) + ", prefilled " +
                   std::to_string(warm.stats.prefilled_tokens) + "; prefix cache " +
                   fmt("%.1f ms", warm.stats.cache_s * 1e3) + " of it";
        details["ttft"] = {{"cold_s", cold.stats.time_to_first_token_s},
                           {"warm_s", warm.stats.time_to_first_token_s},
                           {"reused", warm.stats.reused_tokens},
                           {"warm_cache_s", warm.stats.cache_s},
                           {"ratio", ratio}};
      }
    }
    rows.push_back(row);
  }

  // Remove the shape files (holes, but large in name).
  for (const auto& e : std::filesystem::directory_iterator(out_dir))
    if (e.path().extension() == ".gguf") std::filesystem::remove(e.path());
  if (std::FILE* f = std::fopen((out_dir + "/bench_gpu.json").c_str(), "w")) {
    std::fputs(details.dump(2).c_str(), f);
    std::fclose(f);
  }
  std::printf("\n%s, copy bandwidth %.0f GB/s\n", device.c_str(), bandwidth);
  std::printf("| test | shape | type | figure | limit | ratio | note |\n|---|---|---|---|---|---|---|\n");
  for (const Row& r : rows)
    std::printf("| %s | %s | %s | %s | %s | %s | %s |\n", r.test.c_str(), r.shape.c_str(), r.type.c_str(),
                r.figure.c_str(), r.limit.c_str(), r.ratio.c_str(), r.note.c_str());
  return 0;
}
