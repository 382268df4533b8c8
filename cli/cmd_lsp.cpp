// `ponder lsp`: the language server on stdio. stdout carries only the protocol; logs go to
// stderr or --log FILE.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/backend_setup.h"
#include "cli/commands.h"
#include "engine/engine.h"
#include "engine/log.h"
#include "engine/model.h"
#include "lsp/server.h"
#include "lsp/transport.h"

namespace ponder::cli {

namespace {

constexpr const char* kLspUsage = R"(Usage: ponder lsp [options]

Runs the language server on stdin/stdout (the editor starts it).

Options:
  --model SPEC        The model (a GGUF file, a Hugging Face folder, ollama:NAME:TAG); wins over
                      the editor's settings, .ponder.json and $PONDER_MODEL.
  --log FILE          Append logs to FILE instead of stderr.
  --log-level LEVEL   debug | info | warn | error | off (default warn).
  --cache-dir DIR     Where the tag cache lives (default: the user's cache folder).
  --stdio             Accepted for editors that pass it (stdio is the only transport).
  --force-answer FILE For tests: every generation is forced to FILE's text (reasoning,
                      </think>, answer) so the whole pipeline runs with a known answer.
)";

// Loads the model the settings name (or the best one found), checking that it fits.
std::unique_ptr<Engine> load_engine(const lsp::ModelSettings& s, const lsp::LoadProgress& progress, std::string* error) {
  BackendChoice choice = BackendChoice::automatic;
  if (!parse_backend_choice(s.backend, &choice)) {
    *error = "the setting \"backend\": \"" + s.backend + "\" is not cpu, cuda or auto";
    return nullptr;
  }
  const std::uint64_t available = available_memory();
  ModelRef ref;
  progress("finding the model", 5);
  if (!pick_model(s.model, s.context, available, &ref, error)) return nullptr;
  progress("mapping " + ref.path, 20);
  auto model = Model::open(ref.path, error);
  if (!model) return nullptr;
  progress("reading the tokenizer", 50);
  auto tokenizer = model->load_tokenizer(error);
  if (!tokenizer) return nullptr;
  const std::uint32_t context = std::min(s.context, model->config().max_context);
  EngineOptions eo;
  eo.backend.context = context;
  eo.backend.threads = s.threads;
  eo.make_backend = backend_maker(choice, ref.spec);
  progress("starting the engine", 80);
  return Engine::create(std::move(model), eo, error, std::move(tokenizer));
}

}  // namespace

int cmd_lsp(const std::vector<std::string>& args) {
  lsp::ServerOptions options;
  options.cache_dir = default_cache_dir();
  std::string log_file;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= args.size()) return false;
      *out = args[++i];
      return true;
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kLspUsage, stdout);
      return 0;
    }
    if (a == "--stdio") continue;
    bool ok = true;
    if (a == "--model") ok = value(&options.model_override);
    else if (a == "--log") ok = value(&log_file);
    else if (a == "--cache-dir") ok = value(&options.cache_dir);
    else if (a == "--log-level") {
      std::string level;
      log::Level l;
      ok = value(&level) && log::parse_level(level, &l);
      if (ok) log::set_level(l);
    } else if (a == "--force-answer") {
      std::string path;
      ok = value(&path);
      std::ifstream in(path, std::ios::binary);
      if (ok && !in) {
        std::fprintf(stderr, "ponder lsp: cannot read %s\n", path.c_str());
        return 2;
      }
      std::ostringstream s;
      s << in.rdbuf();
      options.forced_answer = s.str();
    } else {
      std::fprintf(stderr, "ponder lsp: unknown option '%s'\n%s", a.c_str(), kLspUsage);
      return 2;
    }
    if (!ok) {
      std::fprintf(stderr, "ponder lsp: %s needs a valid value\n", a.c_str());
      return 2;
    }
  }
  std::FILE* log_sink = nullptr;
  if (!log_file.empty()) {
    log_sink = std::fopen(log_file.c_str(), "a");
    if (!log_sink) {
      std::fprintf(stderr, "ponder lsp: cannot open the log file %s\n", log_file.c_str());
      return 2;
    }
    std::setvbuf(log_sink, nullptr, _IOLBF, 0);
    log::set_sink(log_sink);
  }
  ::signal(SIGPIPE, SIG_IGN);  // a closed pipe to the editor is an error code, not a death

  lsp::StdioTransport transport(STDIN_FILENO, STDOUT_FILENO);
  options.loader = load_engine;
  options.on_exit = [&transport] { transport.stop(); };
  lsp::Server server(options, [&transport](const std::string& body) { transport.write(body); });
  const bool input_ended = transport.run([&](std::string_view body) { server.handle(body); },
                                         [&](std::string_view problem) { server.transport_error(problem); });
  if (input_ended && !server.exited()) log::warn("the editor closed the connection without exit");
  const int code = server.exited() ? server.exit_code() : 1;
  // Done: leave now rather than wait for an index still being built or a model still loading
  // (neither can be interrupted); nothing is left to save.
  log::info("exiting with status ", code);
  std::fflush(nullptr);
  std::_Exit(code);
}

}  // namespace ponder::cli
