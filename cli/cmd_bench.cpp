// `ponder bench`: prefill and decode speed of a model on this machine, with the ratio of decode
// to the memory-bandwidth limit measured on the spot (decode at batch 1 reads every weight once
// per token, so tokens/s ≤ bandwidth ÷ weight bytes).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "engine/backend.h"
#include "engine/cpu/bandwidth.h"
#include "engine/cpu/thread_pool.h"
#include "engine/model.h"
#include "engine/model_locator.h"

namespace ponder::cli {
namespace {

constexpr const char* kHelp = R"(Usage: ponder bench [--model M] [-p N] [-n N] [-t THREADS] [--ctx N] [--kv f16|f32|q8_0] [--format text|json]

Measures the model on this machine's CPU: prefill of a prompt of -p tokens (pp) and decode of
-n tokens one at a time after it (tg), in tokens/s, as llama-bench reports them; the memory read
bandwidth measured on the spot with the same threads, and decode's ratio to the limit it sets
(bandwidth ÷ weight bytes). Token ids are arbitrary: speed does not depend on them.

Options:
  --model M          A GGUF file, a snapshot folder, ollama:NAME[:TAG] or hf:ORG/NAME.
  -p N               Prompt tokens (default 512).
  -n N               Generated tokens (default 128).
  -t, --threads N    Threads (default: every core).
  --ctx N            KV cache positions (default: p + n).
  --kv f16|f32|q8_0  KV cache type (default f16).
  --format text|json Output format (default text).
  -h, --help         Show this help.
)";

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

int cmd_bench(const std::vector<std::string>& args) {
  std::string spec, format = "text", kv = "f16";
  KvType kv_type = KvType::f16;
  long p = 512, n = 128, threads = 0, ctx = 0;
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
    else if (!is_num) {
      std::fprintf(stderr, "ponder bench: %s takes a non-negative number, not '%s'\n", a.c_str(), v.c_str());
      return 2;
    } else if (a == "-p") p = num;
    else if (a == "-n") n = num;
    else if (a == "-t" || a == "--threads") threads = num;
    else if (a == "--ctx") ctx = num;
    else {
      std::fprintf(stderr, "ponder bench: unknown argument '%s' (see --help)\n", a.c_str());
      return 2;
    }
  }
  if ((format != "text" && format != "json") || !parse_kv_type(kv, &kv_type) || p < 1 || n < 1) {
    std::fprintf(stderr, "ponder bench: -p and -n must be at least 1, --format text|json, --kv f16|f32|q8_0\n");
    return 2;
  }

  std::string error;
  ModelChoice choice;
  choice.command_line = spec;
  if (!read_config_model(".", &choice.config_file, &error)) {
    std::fprintf(stderr, "ponder bench: %s\n", error.c_str());
    return 1;
  }
  if (const char* e = std::getenv("PONDER_MODEL")) choice.environment = e;
  ModelRef ref;
  const std::uint64_t available = available_memory();
  if (!choose_model(choice, ModelSearchPaths::from_environment(), static_cast<std::uint32_t>(p + n), available, &ref,
                    &error)) {
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
  const MemoryEstimate need = estimate_memory(model->config(), model->weight_bytes(), opt.context, opt.kv);
  if (!check_memory(model->config(), need, available, &error)) {
    std::fprintf(stderr, "ponder bench: %s: %s\n", ref.spec.c_str(), error.c_str());
    return 1;
  }
  auto backend = make_cpu_backend(*model, opt, &error);
  if (!backend) {
    std::fprintf(stderr, "ponder bench: %s\n", error.c_str());
    return 1;
  }
  const std::uint32_t V = model->config().n_vocab, real = model->tokens().n_tokens;
  std::vector<std::int32_t> prompt(static_cast<std::size_t>(p));
  for (std::size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<std::int32_t>((i * 7919 + 13) % real);
  std::vector<float> logits(V);
  // Prefill (the weights are paged in by a first, untimed token).
  if (!backend->eval(prompt.data(), 1, logits.data(), 1, &error)) {
    std::fprintf(stderr, "ponder bench: %s\n", error.c_str());
    return 1;
  }
  backend->truncate(0);
  auto t0 = Clock::now();
  if (!backend->eval(prompt.data(), prompt.size(), logits.data(), 1, &error)) {
    std::fprintf(stderr, "ponder bench: %s\n", error.c_str());
    return 1;
  }
  const double prefill_s = since(t0);
  t0 = Clock::now();
  std::int32_t id = prompt.back();
  for (long i = 0; i < n; ++i) {
    if (!backend->eval(&id, 1, logits.data(), 1, &error)) {
      std::fprintf(stderr, "ponder bench: %s\n", error.c_str());
      return 1;
    }
    id = static_cast<std::int32_t>(std::max_element(logits.begin(), logits.begin() + real) - logits.begin());
  }
  const double decode_s = since(t0);
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const std::uint64_t peak_rss = static_cast<std::uint64_t>(ru.ru_maxrss) * 1024;
  // The limit, measured after the run so that its 1 GiB buffer stays out of the peak RSS.
  cpu::ThreadPool pool(opt.threads);
  const double bandwidth = cpu::read_bandwidth(pool, 3);

  const double pp = static_cast<double>(p) / prefill_s, tg = static_cast<double>(n) / decode_s;
  const double limit = bandwidth * 1e9 / static_cast<double>(model->weight_bytes());
  if (format == "json") {
    nlohmann::json j = {{"model", ref.spec},
                        {"type", model->file_type()},
                        {"backend", std::string(backend->name())},
                        {"threads", pool.size()},
                        {"prompt_tokens", p},
                        {"generated_tokens", n},
                        {"prefill_tokens_per_s", pp},
                        {"decode_tokens_per_s", tg},
                        {"bandwidth_gb_per_s", bandwidth},
                        {"decode_limit_tokens_per_s", limit},
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
                             " | " + params + " | " + std::string(backend->name()) + " | " +
                             std::to_string(pool.size()) + " | ";
  std::printf("%spp%ld | %.2f | | |\n", common.c_str(), p, pp);
  std::printf("%stg%ld | %.2f | %.2f | %.2f |\n", common.c_str(), n, tg, limit, tg / limit);
  std::printf("\nread bandwidth %.1f GB/s (%u threads); peak RSS %s\n", bandwidth, pool.size(),
              format_bytes(peak_rss).c_str());
  return 0;
}

}  // namespace ponder::cli
