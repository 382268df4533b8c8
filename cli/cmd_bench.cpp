// `ponder bench`: prefill and decode speed of a model on this machine, with the ratio of decode
// to the memory-bandwidth limit measured on the spot (decode at batch 1 reads every weight once
// per token, but for the embedding table's one row, and the KV cache written so far, so
// tokens/s ≤ bandwidth ÷ those bytes).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cli/backend_setup.h"
#include "cli/commands.h"
#include "engine/backend.h"
#include "engine/bench_run.h"
#include "engine/cpu/bandwidth.h"
#include "engine/cpu/matmul.h"
#include "engine/cpu/thread_pool.h"
#include "engine/engine.h"
#include "engine/model.h"
#include "engine/model_locator.h"
#include "engine/quant.h"

namespace ponder::cli {
namespace {

constexpr const char* kHelp = R"(Usage: ponder bench [--model M] [-p N] [-n N] [-t THREADS] [--ctx N] [--kv f16|f32|q8_0] [--backend cpu|cuda|auto] [--format text|json] [--shared S]

Measures the model on this machine (its GPU, or its CPU), in tokens/s, as llama-bench reports them:
prefill of a prompt of -p tokens (pp), decode of -n tokens one at a time from an empty cache (tg),
and the same after the prompt (tg @ d, llama-bench's depth); the memory read bandwidth measured on
the spot, and each decode's ratio to the limit it sets: bandwidth ÷ the bytes a decode step reads
(every weight but the embedding table, of which one row, plus the KV cache so far; the mean over
the run). The bandwidth: the GPU's copy bandwidth; or the CPU's, read with the
same threads beside every window of 8 decode steps (one pass over the weights decode reads, up
to 512 MiB; each window's limit from the mean of the readings around it, weighted by the
window's time; the ratio against the higher reading of each pair is printed too), or where
decode reads under 256 MiB before and after the run (the higher reading). Token ids are
arbitrary: speed does not depend on them.

Options:
  --model M          A GGUF file, a snapshot folder, ollama:NAME[:TAG] or hf:ORG/NAME.
  -p N               Prompt tokens (default 512).
  -n N               Generated tokens (default 128).
  -t, --threads N    Threads (default: every core).
  --ctx N            KV cache positions (default: p + n).
  --kv f16|f32|q8_0  KV cache type (default f16).
  --backend B        cpu, cuda or auto: the GPU when one is usable and the model fits (default).
  --format text|json Output format (default text).
  --shared S         Instead: time to first token of a -p token prompt through the Engine,
                     cold, then for a second prompt that shares its first S tokens (the prefix
                     cache serves them; only the rest is prefilled).
  -h, --help         Show this help.
)";

constexpr std::size_t kWindow = 8;  // decode steps between two readings of the bandwidth

// --shared: time to first token, cold and with a shared prefix in the Engine's cache.
int bench_ttft(std::unique_ptr<Model> model, const ModelRef& ref, const BackendOptions& opt, BackendChoice choice,
               long p, long shared, const std::string& format) {
  std::string error;
  EngineOptions eopt;
  eopt.backend = opt;
  eopt.make_backend = backend_maker(choice, ref.spec);
  auto engine = Engine::create(std::move(model), eopt, &error);
  if (!engine) {
    std::fprintf(stderr, "ponder bench: %s\n", error.c_str());
    return 1;
  }
  const std::uint32_t real = engine->model().tokens().n_tokens;
  GenerateRequest r;
  r.max_tokens = 1;
  SamplingParams greedy;
  greedy.temperature = 0;
  r.sampling = greedy;
  GenerateResult warmup, cold, warm;
  // The weights are paged in by a first, short request (another sequence: nothing to reuse).
  r.prompt = bench_tokens(8, real, 2);
  if (!engine->generate(r, &warmup, &error)) {
    std::fprintf(stderr, "ponder bench: %s\n", error.c_str());
    return 1;
  }
  r.prompt = bench_tokens(static_cast<std::size_t>(p), real, 0);
  engine->generate(r, &cold, &error);
  // The second prompt: the first `shared` tokens of the first, then others.
  const auto tail = bench_tokens(static_cast<std::size_t>(p - shared), real, 1);
  std::copy(tail.begin(), tail.end(), r.prompt.begin() + shared);
  engine->generate(r, &warm, &error);
  for (const GenerateResult* g : {&cold, &warm})
    if (g->reason == StopReason::error) {
      std::fprintf(stderr, "ponder bench: %s\n", g->error.c_str());
      return 1;
    }
  const double ratio = warm.stats.time_to_first_token_s / cold.stats.time_to_first_token_s;
  if (format == "json") {
    nlohmann::json j = {{"model", ref.spec},
                        {"type", engine->model().file_type()},
                        {"backend", std::string(engine->backend_name())},
                        {"prompt_tokens", p},
                        {"shared_tokens", shared},
                        {"ttft_cold_s", cold.stats.time_to_first_token_s},
                        {"ttft_warm_s", warm.stats.time_to_first_token_s},
                        {"warm_reused_tokens", warm.stats.reused_tokens},
                        {"warm_prefilled_tokens", warm.stats.prefilled_tokens},
                        {"warm_cache_s", warm.stats.cache_s},
                        {"ratio", ratio}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("| model | type | backend | test | prefilled | reused | time to first token | of it, prefix cache |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (const GenerateResult* g : {&cold, &warm})
    std::printf("| %s | %s | %s | %s p%ld | %u | %u | %.3f s | %.3f s |\n", ref.spec.c_str(),
                engine->model().file_type().c_str(), std::string(engine->backend_name()).c_str(),
                g == &cold ? "cold" : "warm", p, g->stats.prefilled_tokens, g->stats.reused_tokens,
                g->stats.time_to_first_token_s, g->stats.cache_s);
  std::printf("\nwarm / cold: %.3f\n", ratio);
  return 0;
}

}  // namespace

int cmd_bench(const std::vector<std::string>& args) {
  std::string spec, format = "text", kv = "f16", backend_name = "auto";
  KvType kv_type = KvType::f16;
  BackendChoice choice = BackendChoice::automatic;
  long p = 512, n = 128, threads = 0, ctx = 0, shared = 0;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    }
    if (i + 1 >= args.size()) {
      std::fprintf(stderr, "ponder bench: unknown argument or missing value: '%s' (see --help)\n", a.c_str());
      return 2;
    }
    const std::string& v = args[++i];
    char* end = nullptr;
    const long num = std::strtol(v.c_str(), &end, 10);
    const bool is_num = !v.empty() && *end == '\0' && num >= 0;
    if (a == "--model") spec = v;
    else if (a == "--format") format = v;
    else if (a == "--kv") kv = v;
    else if (a == "--backend") backend_name = v;
    else if (!is_num) {
      std::fprintf(stderr, "ponder bench: %s takes a non-negative number, not '%s'\n", a.c_str(), v.c_str());
      return 2;
    } else if (a == "-p") p = num;
    else if (a == "-n") n = num;
    else if (a == "-t" || a == "--threads") threads = num;
    else if (a == "--ctx") ctx = num;
    else if (a == "--shared") shared = num;
    else {
      std::fprintf(stderr, "ponder bench: unknown argument '%s' (see --help)\n", a.c_str());
      return 2;
    }
  }
  if ((format != "text" && format != "json") || !parse_kv_type(kv, &kv_type) || p < 1 || n < 1 || shared >= p) {
    std::fprintf(stderr,
                 "ponder bench: -p and -n must be at least 1, --shared less than -p, --format text|json, "
                 "--kv f16|f32|q8_0\n");
    return 2;
  }
  std::string error;
  if (!parse_backend_option(backend_name, &choice, &error)) {
    std::fprintf(stderr, "ponder bench: %s\n", error.c_str());
    return 2;
  }
  ModelRef ref;
  const std::uint64_t available = available_memory();
  if (!pick_model(spec, static_cast<std::uint32_t>(p + n), available, &ref, &error)) {
    std::fprintf(stderr, "ponder bench: %s\n", error.c_str());
    return 1;
  }
  auto model = Model::open(ref.path, &error);
  if (!model) {
    std::fprintf(stderr, "ponder bench: %s\n", error.c_str());
    return 1;
  }
  BackendOptions opt;
  opt.context = static_cast<std::uint32_t>(ctx > 0 ? ctx : p + n);
  opt.kv = kv_type;
  opt.threads = static_cast<unsigned>(threads);
  if (opt.context < p + n) {
    std::fprintf(stderr, "ponder bench: --ctx %u is smaller than -p + -n\n", opt.context);
    return 2;
  }
  if (shared > 0) return bench_ttft(std::move(model), ref, opt, choice, p, shared, format);
  // The CPU's read bandwidth moves from minute to minute on a shared machine (the 2-core VM of
  // bench/RESULTS.md: 34 GB/s in some minutes, 55-62 in others, changing within a run). It is
  // read before the run (on 256 MiB, before the backend pages the weights in, so that the peak
  // RSS stays the run's) and after it; and, where decode reads at least 256 MiB, beside every
  // window of 8 decode steps, by one pass over up to 512 MiB of the weights decode reads (already
  // in memory: nothing is added to the RSS). Each window's limit is then the mean of the
  // readings just before and just after it (window_bandwidth, engine/bench_run.h, says why not
  // the higher), and decode is compared with the limit of the minutes it ran in.
  cpu::ThreadPool read_pool(opt.threads);
  double bandwidth_before =
      choice == BackendChoice::cuda ? 0 : cpu::read_bandwidth(read_pool, 5, std::size_t{256} << 20);
  std::string note;
  auto backend = make_checked_backend(choice, *model, opt, ref.spec, &error, &note);
  if (!note.empty()) std::fprintf(stderr, "ponder bench: %s\n", note.c_str());
  if (!backend) {
    std::fprintf(stderr, "ponder bench: %s\n", error.c_str());
    return 1;
  }
  const bool gpu = backend->name() == "cuda";
  if (gpu) bandwidth_before = 0;
  const std::vector<cpu::ReadSpan> spans =
      gpu ? std::vector<cpu::ReadSpan>{} : decode_read_spans(*model, std::size_t{512} << 20);
  // The readings beside the decode windows: tg @ d's, then tg's.
  std::vector<double> readings_depth, readings_empty, *readings = &readings_depth;
  std::function<void()> read_weights;
  if (!spans.empty())
    read_weights = [&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the backend's threads stop spinning
      readings->push_back(cpu::read_spans(read_pool, spans.data(), spans.size()));
    };
  const std::uint32_t real = model->tokens().n_tokens;
  const std::vector<std::int32_t> prompt = bench_tokens(static_cast<std::size_t>(p), real, 0);
  BenchTimes depth, empty;
  const std::size_t window = read_weights ? kWindow : 0;
  bool ok = time_prefill_decode(*backend, prompt, static_cast<std::size_t>(n), model->config().n_vocab, real, &depth,
                                &error, window, read_weights);
  readings = &readings_empty;
  ok = ok && time_decode(*backend, prompt.front(), static_cast<std::size_t>(n), model->config().n_vocab, real, &empty,
                         &error, window, read_weights);
  if (!ok) {
    std::fprintf(stderr, "ponder bench: %s\n", error.c_str());
    return 1;
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const std::uint64_t peak_rss = static_cast<std::uint64_t>(ru.ru_maxrss) * 1024;
  // The reading after the run, once the run's peak RSS is taken (its 1 GiB buffer stays out of
  // it); the GPU's copy bandwidth (bytes read + written) for the CUDA backend.
  backend.reset();
  const double bandwidth_after = gpu ? 0 : cpu::read_bandwidth(read_pool, 5);
  const double copy_bandwidth = gpu ? cuda::copy_bandwidth(&error) : 0;

  // One decode test against its limit. Beside the windows, the bandwidth is window_bandwidth's:
  // each window's limit the mean of the readings around it, weighted by the window's time, so
  // that tg ÷ limit is the tokens decoded over the tokens the windows' limits allow in the same
  // time (`higher`: the same with the higher reading of each pair, as before); otherwise the
  // higher reading of before and after. A step reads the weights (one row of the embedding table)
  // and, per layer, the K and V rows of every position so far: `keys` of them on average.
  const ModelConfig& c = model->config();
  const double kv_row = static_cast<double>(row_bytes(kv_ggml_type(opt.kv), std::size_t{c.n_head_kv} * c.head_dim));
  struct Decode {
    double tg = 0, bandwidth = 0, step_bytes = 0, limit = 0, higher_limit = 0;
  };
  auto decode_figures = [&](const BenchTimes& t, const std::vector<double>& r, double keys) {
    Decode d;
    d.tg = static_cast<double>(n) / t.decode_s;
    d.bandwidth = gpu ? copy_bandwidth : std::max(bandwidth_before, bandwidth_after);
    double higher = d.bandwidth;
    if (!spans.empty()) {
      d.bandwidth = window_bandwidth(t.window_s, r, WindowReading::mean);
      higher = window_bandwidth(t.window_s, r, WindowReading::higher);
    }
    d.step_bytes = static_cast<double>(model->decode_weight_bytes()) + 2.0 * c.n_layer * kv_row * keys;
    d.limit = d.bandwidth * 1e9 / d.step_bytes;
    d.higher_limit = higher * 1e9 / d.step_bytes;
    return d;
  };
  const double mean_keys = static_cast<double>(n + 1) / 2.0;  // steps at positions 0 .. n - 1
  const Decode tg = decode_figures(empty, readings_empty, mean_keys);
  const Decode tgd = decode_figures(depth, readings_depth, static_cast<double>(p) + mean_keys);
  const double pp = static_cast<double>(p) / depth.prefill_s;
  std::vector<double> all_readings = readings_depth;
  all_readings.insert(all_readings.end(), readings_empty.begin(), readings_empty.end());
  double best = std::max(bandwidth_before, bandwidth_after);
  for (double r : all_readings) best = std::max(best, r);
  if (format == "json") {
    nlohmann::json j = {{"model", ref.spec},
                        {"type", model->file_type()},
                        {"backend", gpu ? "cuda" : "cpu"},
                        {"threads", read_pool.size()},
                        {"cpu_kernels", cpu::isa_name(cpu::active_isa())},
                        {"prompt_tokens", p},
                        {"generated_tokens", n},
                        {"prefill_tokens_per_s", pp},
                        {"decode_tokens_per_s", tg.tg},
                        {"bandwidth_gb_per_s", tg.bandwidth},
                        {"bandwidth_read", gpu ? "GPU copy" : spans.empty() ? "before and after" : "beside decode"},
                        {"bandwidth_readings_gb_per_s", readings_empty},
                        {"bandwidth_best_gb_per_s", gpu ? tg.bandwidth : best},
                        {"decode_limit_tokens_per_s", tg.limit},
                        {"decode_limit_higher_readings_tokens_per_s", tg.higher_limit},
                        {"decode_step_bytes", tg.step_bytes},
                        {"depth_tokens", p},
                        {"decode_at_depth_tokens_per_s", tgd.tg},
                        {"decode_at_depth_bandwidth_gb_per_s", tgd.bandwidth},
                        {"decode_at_depth_bandwidth_readings_gb_per_s", readings_depth},
                        {"decode_at_depth_limit_tokens_per_s", tgd.limit},
                        {"decode_at_depth_limit_higher_readings_tokens_per_s", tgd.higher_limit},
                        {"decode_at_depth_step_bytes", tgd.step_bytes},
                        {"weight_bytes", model->weight_bytes()},
                        {"peak_rss_bytes", peak_rss}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("| model | type | size | params | backend | threads | test | t/s | limit t/s | ratio |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  char params[32];
  std::snprintf(params, sizeof params, "%.2f B", static_cast<double>(model->parameters()) / 1e9);
  const std::string common = "| " + ref.spec + " | " + model->file_type() + " | " + format_bytes(model->weight_bytes()) +
                             " | " + params + " | " + (gpu ? std::string("cuda") : std::string("cpu ") + cpu::isa_name(cpu::active_isa())) + " | " +
                             std::to_string(read_pool.size()) + " | ";
  std::printf("%spp%ld | %.2f | | |\n", common.c_str(), p, pp);
  std::printf("%stg%ld | %.2f | %.2f | %.2f |\n", common.c_str(), n, tg.tg, tg.limit, tg.tg / tg.limit);
  std::printf("%stg%ld @ d%ld | %.2f | %.2f | %.2f |\n", common.c_str(), n, p, tgd.tg, tgd.limit, tgd.tg / tgd.limit);
  if (gpu) {
    std::printf("\nGPU copy bandwidth %.1f GB/s (%s)", tg.bandwidth, cuda::describe_device().c_str());
  } else {
    std::printf("\nread bandwidth %.1f GB/s for tg%ld, %.1f for tg%ld @ d%ld (%u threads)", tg.bandwidth, n, tgd.bandwidth,
                n, p, read_pool.size());
    if (!all_readings.empty()) {
      const auto [lo, hi] = std::minmax_element(all_readings.begin(), all_readings.end());
      std::printf(" beside the decode windows of %zu steps (%zu readings, %.1f-%.1f; the best before or after the run "
                  "%.1f); against the higher reading beside each window, tg ÷ limit %.2f and %.2f",
                  kWindow, all_readings.size(), *lo, *hi, std::max(bandwidth_before, bandwidth_after),
                  tg.tg / tg.higher_limit, tgd.tg / tgd.higher_limit);
    }
  }
  std::printf("; a decode step reads %s (tg%ld) and %s (tg%ld @ d%ld) on average; peak RSS %s\n",
              format_bytes(static_cast<std::uint64_t>(tg.step_bytes)).c_str(), n,
              format_bytes(static_cast<std::uint64_t>(tgd.step_bytes)).c_str(), n, p, format_bytes(peak_rss).c_str());
  return 0;
}

}  // namespace ponder::cli
