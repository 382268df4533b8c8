// ponder: a language server with a reasoning model inside. This file dispatches subcommands.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "engine/log.h"
#include "kernels/cuda.h"
#include "ponder/version.h"

namespace {

constexpr const char* kUsage = R"(ponder — a language server with a reasoning model inside

Usage: ponder [--log-level LEVEL] <command> [options]

Commands:
  index DIR     Index a folder with tree-sitter and print its repo map or its symbols.
                Run `ponder index --help` for its options.
  tokenize      Print the token ids, pieces or count of a file with a model's tokenizer
                (--decode: ids to text). Run `ponder tokenize --help`.
  models        List the DeepSeek-R1 distills found on this machine.
  generate      Run the model on a prompt (--prompt TEXT or --chat TEXT) and stream its
                output (CPU backend). Run `ponder generate --help`.
  lsp           The language server on stdio (the editor starts it). `ponder lsp --help`.
  bench         Prefill and decode tokens/s of a model, against the memory-bandwidth limit.
  review [REV]  Review a commit (default HEAD), a range (A..B, A...B), the index (--staged)
                or the work tree (--worktree) with the model; text, markdown, JSON or SARIF.
                Run `ponder review --help`.
  version       Print the version and the compute backends this build has.

Options:
  -h, --help             Show this help.
  -V, --version          Print the version.
  --log-level LEVEL      debug | info | warn | error | off (default warn; logs go to stderr).
)";

void print_version() {
  std::string why;
  bool gpu = ponder::cuda::available(&why);
  std::printf("ponder %s\n", PONDER_VERSION);
#ifdef PONDER_HAVE_CUDA
  std::printf("backends: cpu, cuda (%s)\n", gpu ? ponder::cuda::describe_device().c_str() : why.c_str());
#else
  (void)gpu;
  std::printf("backends: cpu (built without CUDA)\n");
#endif
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // Global options come before the command.
  std::size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "-V" || a == "--version") {
      print_version();
      return 0;
    }
    if (a == "--log-level") {
      ponder::log::Level level;
      if (i + 1 >= args.size() || !ponder::log::parse_level(args[i + 1], &level)) {
        std::fprintf(stderr, "ponder: --log-level takes debug, info, warn, error or off\n");
        return 2;
      }
      ponder::log::set_level(level);
      ++i;
      continue;
    }
    break;
  }
  if (i >= args.size()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string command = args[i];
  std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
  if (command == "index") return ponder::cli::cmd_index(rest);
  if (command == "tokenize") return ponder::cli::cmd_tokenize(rest);
  if (command == "models") return ponder::cli::cmd_models(rest);
  if (command == "generate") return ponder::cli::cmd_generate(rest);
  if (command == "bench") return ponder::cli::cmd_bench(rest);
  if (command == "lsp") return ponder::cli::cmd_lsp(rest);
  if (command == "review") return ponder::cli::cmd_review(rest);
  if (command == "version") {
    print_version();
    return 0;
  }
  if (command == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::fprintf(stderr, "ponder: unknown command '%s' (see ponder --help)\n", command.c_str());
  return 2;
}
