// `ponder generate`: a prompt in, streamed tokens out — the whole engine path end to end (model
// files, tokenizer, chat template, the CPU backend, the sampler, the streaming decoder and the
// reasoning splitter), for debugging and scripts.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <vector>

#include "cli/backend_setup.h"
#include "cli/commands.h"
#include "engine/engine.h"
#include "engine/model.h"
#include "engine/model_locator.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"

namespace ponder::cli {
namespace {

constexpr const char* kHelp = R"(Usage: ponder generate [--model M] (--prompt TEXT | --chat TEXT) [options]

Runs the model on a prompt and streams what it generates to stdout. --prompt takes raw text
(a BOS token is put first); --chat wraps the text in the R1 chat template as one user turn,
and the model's reasoning (up to </think>) goes to stderr unless --show-thinking.

Options:
  --model M          A GGUF file, a snapshot folder, ollama:NAME[:TAG] or hf:ORG/NAME
                     (default: ./.ponder.json, $PONDER_MODEL, then the largest R1 distill found).
  -n N               Tokens to generate at most (default 256).
  --temp T           Temperature; 0 = greedy (default: the model's, 0.6 for R1).
  --top-p P          Nucleus sampling (default: the model's, 0.95 for R1); 1 = off.
  --top-k K          Keep the K most likely tokens; 0 = off (default).
  --min-p P          Keep tokens at least P times as likely as the best; 0 = off (default).
  --seed S           Seed of the draw (default: random, printed with --stats).
  -t, --threads N    CPU threads (default: every core).
  --ctx N            KV cache positions (default: prompt + N, at most the model's context).
  --kv f16|f32|q8_0  KV cache type (default f16).
  --backend B        cpu, cuda or auto: the GPU when one is usable and the model fits (default).
  --stop TEXT        End the answer where TEXT appears (not printed); may be repeated.
  --reasoning-budget N
                     With --chat: at most N thinking tokens, then </think> is forced
                     (default: no limit).
  --ids              Print the generated token ids, one per line, instead of text.
  --show-thinking    With --chat: print the reasoning to stdout too, before the answer.
  --stats            Print timings to stderr at the end.
  -h, --help         Show this help.
)";

bool number(const std::string& s, double* out) {
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return !s.empty() && *end == '\0';
}

void write(std::FILE* f, const std::string& s) {
  if (s.empty()) return;
  std::fwrite(s.data(), 1, s.size(), f);
  std::fflush(f);
}

}  // namespace

int cmd_generate(const std::vector<std::string>& args) {
  std::string spec, prompt, kv = "f16", backend = "auto";
  KvType kv_type = KvType::f16;
  BackendChoice backend_choice = BackendChoice::automatic;
  bool chat = false, ids_out = false, show_thinking = false, stats = false, have_prompt = false;
  double n_predict = 256, threads = 0, ctx = 0, reasoning_budget = -1;
  std::vector<std::string> stop_strings;
  SamplingParams sp;
  bool temp_set = false, top_p_set = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string* {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "ponder generate: %s needs a value\n", a.c_str());
        return nullptr;
      }
      return &args[++i];
    };
    double d = 0;
    auto num = [&](double* out) {
      const std::string* v = value();
      if (!v) return false;
      if (!number(*v, out)) {
        std::fprintf(stderr, "ponder generate: %s takes a number, not '%s'\n", a.c_str(), v->c_str());
        return false;
      }
      return true;
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (a == "--model" || a == "--prompt" || a == "--chat" || a == "--kv" || a == "--stop" || a == "--backend") {
      const std::string* v = value();
      if (!v) return 2;
      if (a == "--model") spec = *v;
      else if (a == "--backend") backend = *v;
      else if (a == "--stop") stop_strings.push_back(*v);
      else if (a == "--kv") kv = *v;
      else {
        prompt = *v;
        chat = a == "--chat";
        have_prompt = true;
      }
    } else if (a == "-n") {
      if (!num(&n_predict)) return 2;
    } else if (a == "-t" || a == "--threads") {
      if (!num(&threads)) return 2;
    } else if (a == "--ctx") {
      if (!num(&ctx)) return 2;
    } else if (a == "--reasoning-budget") {
      if (!num(&reasoning_budget)) return 2;
    } else if (a == "--temp") {
      if (!num(&d)) return 2;
      sp.temperature = static_cast<float>(d);
      temp_set = true;
    } else if (a == "--top-p") {
      if (!num(&d)) return 2;
      sp.top_p = static_cast<float>(d);
      top_p_set = true;
    } else if (a == "--top-k") {
      if (!num(&d)) return 2;
      sp.top_k = static_cast<std::uint32_t>(d);
    } else if (a == "--min-p") {
      if (!num(&d)) return 2;
      sp.min_p = static_cast<float>(d);
    } else if (a == "--seed") {
      if (!num(&d)) return 2;
      sp.seed = static_cast<std::uint64_t>(d);
    } else if (a == "--ids") {
      ids_out = true;
    } else if (a == "--show-thinking") {
      show_thinking = true;
    } else if (a == "--stats") {
      stats = true;
    } else {
      std::fprintf(stderr, "ponder generate: unknown argument '%s' (see --help)\n", a.c_str());
      return 2;
    }
  }
  if (!have_prompt) {
    std::fprintf(stderr, "ponder generate: give --prompt TEXT or --chat TEXT\n");
    return 2;
  }
  const bool empty_stop = std::find(stop_strings.begin(), stop_strings.end(), "") != stop_strings.end();
  if (n_predict < 1 || threads < 0 || ctx < 0 || reasoning_budget < -1 || empty_stop || !parse_kv_type(kv, &kv_type)) {
    std::fprintf(stderr,
                 "ponder generate: -n must be at least 1, --threads, --ctx and --reasoning-budget not negative, "
                 "--stop not empty, --kv f16, f32 or q8_0\n");
    return 2;
  }
  std::string error;
  if (!parse_backend_option(backend, &backend_choice, &error)) {
    std::fprintf(stderr, "ponder generate: %s\n", error.c_str());
    return 2;
  }

  ModelRef ref;
  const std::uint64_t available = available_memory();
  if (!pick_model(spec, 4096, available, &ref, &error)) {
    std::fprintf(stderr, "ponder generate: %s\n", error.c_str());
    return 1;
  }
  auto model = Model::open(ref.path, &error);
  auto tok = model ? model->load_tokenizer(&error) : nullptr;
  if (!model || !tok) {
    std::fprintf(stderr, "ponder generate: %s\n", error.c_str());
    return 1;
  }
  // The model's own defaults unless the command line says otherwise.
  const SamplingParams defaults = SamplingParams::from_defaults(model->generation());
  if (!temp_set) sp.temperature = defaults.temperature;
  if (!top_p_set) sp.top_p = defaults.top_p;
  if (std::string why = sp.validate(); !why.empty()) {
    std::fprintf(stderr, "ponder generate: %s\n", why.c_str());
    return 2;
  }

  std::vector<std::int32_t> tokens;
  if (chat) {
    tokens = encode_r1_chat(*tok, {{ChatMessage::Role::user, prompt}});
  } else {
    if (model->tokens().bos >= 0) tokens.push_back(model->tokens().bos);
    for (auto id : tok->encode(prompt)) tokens.push_back(id);
  }
  const auto n_new = static_cast<std::uint32_t>(n_predict);
  std::uint32_t context = ctx > 0 ? static_cast<std::uint32_t>(ctx)
                                  : std::min<std::uint32_t>(model->config().max_context,
                                                            static_cast<std::uint32_t>(tokens.size()) + n_new);
  BackendOptions opt;
  opt.context = context;
  opt.kv = kv_type;
  opt.threads = static_cast<unsigned>(threads);
  EngineOptions eopt;
  eopt.backend = opt;
  eopt.make_backend = backend_maker(backend_choice, ref.spec);
  eopt.prefix_cache_bytes = 0;  // one request: nothing to reuse
  const std::string model_type = model->file_type();
  auto engine = Engine::create(std::move(model), eopt, &error, std::move(tok));
  if (!engine) {
    std::fprintf(stderr, "ponder generate: %s\n", error.c_str());
    return 1;
  }

  GenerateRequest request;
  request.prompt = std::move(tokens);
  request.sampling = sp;
  request.max_tokens = n_new;
  request.stop_strings = stop_strings;
  request.reasoning_budget = static_cast<std::int64_t>(reasoning_budget);
  std::promise<GenerateEvent> finished;
  bool closed = false;  // the reasoning ended with </think>
  auto sink = [&](const GenerateEvent& e) {
    if (e.kind == GenerateEvent::Kind::done) return finished.set_value(e);
    if (ids_out) {
      if (e.token >= 0) std::printf("%d\n", e.token), std::fflush(stdout);
      return;
    }
    if (e.channel == Channel::reasoning) {
      closed = closed || e.token == engine->model().tokens().think_close;
      write(show_thinking ? stdout : stderr, e.text);
    } else {
      write(stdout, e.text);
    }
  };
  if (!engine->submit(std::move(request), sink, &error)) {
    std::fprintf(stderr, "ponder generate: %s\n", error.c_str());
    return 1;
  }
  const GenerateEvent done = finished.get_future().get();
  if (!ids_out) {
    if (chat && !closed)  // cut by -n, or the model answered without reasoning
      std::fprintf(stderr, "\n[ponder: the output ended without </think>; all of it went to the reasoning]");
    write(stdout, "\n");
  }
  if (done.reason == StopReason::error) {
    std::fprintf(stderr, "ponder generate: %s\n", done.error.c_str());
    return 1;
  }
  if (stats) {
    const GenerateStats& st = done.stats;
    std::fprintf(stderr,
                 "[%s · %s · %s] prompt %u tokens, %.1f tok/s; generated %u tokens (%u reasoning), %.2f tok/s; "
                 "time to first token %.2f s; stop: %s; seed %llu\n",
                 ref.spec.c_str(), model_type.c_str(), std::string(engine->backend_name()).c_str(), st.prompt_tokens,
                 st.prefill_tokens_per_s, st.generated_tokens, st.reasoning_tokens, st.decode_tokens_per_s,
                 st.time_to_first_token_s, std::string(stop_reason_name(done.reason)).c_str(),
                 static_cast<unsigned long long>(st.seed));
  }
  return 0;
}

}  // namespace ponder::cli
