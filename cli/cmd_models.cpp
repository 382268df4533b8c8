// `ponder tokenize` (the model's tokenizer alone, without its weights) and `ponder models` (the
// R1 distills on this machine).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "engine/model.h"
#include "engine/model_locator.h"
#include "engine/tokenizer.h"

namespace ponder::cli {
namespace {

constexpr const char* kTokenizeHelp = R"(Usage: ponder tokenize [--model M] [--ids|--pieces|--count] [--format text|json] [FILE]
       ponder tokenize [--model M] --decode [FILE]

Encodes FILE (or stdin) with the model's tokenizer and prints the token ids (one per line),
the pieces (id and text, one per line) or the count. Only the tokenizer is loaded, not the
weights. --decode reads ids (separated by spaces, commas or newlines, or a JSON array) and
prints the text.

Options:
  --model M            A GGUF file, a snapshot folder, ollama:NAME[:TAG] or hf:ORG/NAME.
                       Default: "model" in ./.ponder.json, else $PONDER_MODEL, else the
                       largest R1 distill found on this machine.
  --ids                Print the ids (default).
  --pieces             Print each token's id and text.
  --count              Print the number of tokens.
  --no-special         Treat special-token text (<think>, ...) as plain text.
  --decode             Ids in, text out.
  --format text|json   Output format (default text).
  -h, --help           Show this help.
)";

constexpr const char* kModelsHelp = R"(Usage: ponder models [--format text|json]

Lists the DeepSeek-R1 distills found on this machine — Ollama's store ($OLLAMA_MODELS,
~/.ollama/models, /usr/share/ollama/.ollama/models) and the Hugging Face cache ($HF_HUB_CACHE,
$HF_HOME/hub, ~/.cache/huggingface/hub) — largest first, with their size, type and path, and
the one ponder would choose by default.

Options:
  --format text|json   Output format (default text).
  -h, --help           Show this help.
)";

std::string read_all(std::istream& in) { return std::string(std::istreambuf_iterator<char>(in), {}); }


// A token's bytes for a terminal: printable text as is, control and broken bytes escaped.
std::string escape_piece(const std::string& bytes) {
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto c = static_cast<unsigned char>(bytes[i]);
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c == '\\') out += "\\\\";
    else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else {  // keep whole UTF-8 characters, escape stray bytes
      std::size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
      bool whole = n > 0 && i + n <= bytes.size();
      for (std::size_t k = 1; whole && k < n; ++k) whole = (static_cast<unsigned char>(bytes[i + k]) & 0xC0) == 0x80;
      if (whole) {
        out.append(bytes, i, n);
        i += n - 1;
      } else {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", c);
        out += buf;
      }
    }
  }
  return out;
}

std::string json_text(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool parse_ids(const std::string& text, std::vector<std::int32_t>* ids, std::string* error) {
  std::size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == ' ' || c == ',' || c == '\n' || c == '\r' || c == '\t' || c == '[' || c == ']') {
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
    if (end == i || end - i > 9) {
      *error = "not a token id: '" + text.substr(i, std::min<std::size_t>(20, text.size() - i)) + "'";
      return false;
    }
    ids->push_back(std::atoi(text.substr(i, end - i).c_str()));
    i = end;
  }
  return true;
}

}  // namespace

bool pick_model(const std::string& spec, std::uint32_t context, std::uint64_t available, ModelRef* ref,
                std::string* error) {
  ModelChoice choice;
  choice.command_line = spec;
  if (!read_config_model(".", &choice.config_file, error)) return false;
  if (const char* e = std::getenv("PONDER_MODEL")) choice.environment = e;
  return choose_model(choice, ModelSearchPaths::from_environment(), context, available, ref, error);
}

int cmd_tokenize(const std::vector<std::string>& args) {
  std::string spec, file, format = "text", mode = "ids";
  bool special = true;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kTokenizeHelp, stdout);
      return 0;
    } else if (a == "--model" || a == "--format") {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "ponder tokenize: %s needs a value\n", a.c_str());
        return 2;
      }
      (a == "--model" ? spec : format) = args[++i];
    } else if (a == "--ids" || a == "--pieces" || a == "--count" || a == "--decode") {
      mode = a.substr(2);
    } else if (a == "--no-special") {
      special = false;
    } else if (!a.empty() && a[0] == '-' && a != "-") {
      std::fprintf(stderr, "ponder tokenize: unknown option '%s' (see --help)\n", a.c_str());
      return 2;
    } else if (file.empty()) {
      file = a;
    } else {
      std::fprintf(stderr, "ponder tokenize: one input file at most\n");
      return 2;
    }
  }
  if (format != "text" && format != "json") {
    std::fprintf(stderr, "ponder tokenize: --format takes text or json\n");
    return 2;
  }
  std::string input;
  if (file.empty() || file == "-") {
    input = read_all(std::cin);
  } else {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "ponder tokenize: %s: cannot open\n", file.c_str());
      return 1;
    }
    input = read_all(in);
  }
  ModelRef ref;
  std::string error;
  if (!pick_model(spec, 0, UINT64_MAX, &ref, &error)) {
    std::fprintf(stderr, "ponder tokenize: %s\n", error.c_str());
    return 1;
  }
  auto tok = load_tokenizer(ref.path, &error);
  if (!tok) {
    std::fprintf(stderr, "ponder tokenize: %s\n", error.c_str());
    return 1;
  }
  const bool json = format == "json";
  if (mode == "decode") {
    std::vector<std::int32_t> ids;
    if (!parse_ids(input, &ids, &error)) {
      std::fprintf(stderr, "ponder tokenize --decode: %s\n", error.c_str());
      return 1;
    }
    for (auto id : ids)
      if (id < 0 || static_cast<std::size_t>(id) >= tok->vocab_size()) {
        std::fprintf(stderr, "ponder tokenize --decode: id %d is outside the vocabulary (%zu tokens)\n", id,
                     tok->vocab_size());
        return 1;
      }
    StreamDecoder d(*tok);
    std::string text;
    for (auto id : ids) text += d.push(id);
    text += d.finish();
    if (json) std::printf("%s\n", json_text({{"text", text}}).c_str());
    else std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  std::vector<std::int32_t> ids = tok->encode(input, special);
  if (mode == "count") {
    if (json) std::printf("{\"count\":%zu}\n", ids.size());
    else std::printf("%zu\n", ids.size());
  } else if (mode == "ids") {
    if (json) {
      std::printf("%s\n", nlohmann::json{{"ids", ids}}.dump().c_str());
    } else {
      std::string out;
      for (auto id : ids) out += std::to_string(id) + "\n";
      std::fwrite(out.data(), 1, out.size(), stdout);
    }
  } else {  // pieces
    if (json) {
      nlohmann::json pieces = nlohmann::json::array();
      for (auto id : ids) pieces.push_back({{"id", id}, {"piece", tok->token_bytes(id)}});
      std::printf("%s\n", json_text({{"pieces", pieces}}).c_str());
    } else {
      std::string out;
      for (auto id : ids) out += std::to_string(id) + "\t" + escape_piece(tok->token_bytes(id)) + "\n";
      std::fwrite(out.data(), 1, out.size(), stdout);
    }
  }
  return 0;
}

int cmd_models(const std::vector<std::string>& args) {
  std::string format = "text";
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "-h" || args[i] == "--help") {
      std::fputs(kModelsHelp, stdout);
      return 0;
    } else if (args[i] == "--format" && i + 1 < args.size()) {
      format = args[++i];
    } else {
      std::fprintf(stderr, "ponder models: unknown argument '%s' (see --help)\n", args[i].c_str());
      return 2;
    }
  }
  if (format != "text" && format != "json") {
    std::fprintf(stderr, "ponder models: --format takes text or json\n");
    return 2;
  }
  const auto paths = ModelSearchPaths::from_environment();
  std::vector<std::string> problems;
  auto found = find_models(paths, &problems);
  for (const auto& p : problems) std::fprintf(stderr, "ponder models: skipped %s\n", p.c_str());
  // The default choice: the largest that fits with a 32K context.
  constexpr std::uint32_t kDefaultContext = 32768;
  const std::uint64_t available = available_memory();
  std::string chosen;
  for (const auto& f : found)
    if (chosen.empty() &&
        estimate_memory(f.config, f.bytes, std::min(kDefaultContext, f.config.max_context)).total() <= available)
      chosen = f.ref.spec;
  if (format == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& f : found)
      out.push_back({{"name", f.name}, {"spec", f.ref.spec}, {"path", f.ref.path},
                     {"format", std::string(format_name(f.ref.format))}, {"arch", f.arch}, {"type", f.type},
                     {"bytes", f.bytes}, {"parameters", f.parameters},
                     {"max_context", largest_context(f.config, f.bytes, available)},
                     {"default", f.ref.spec == chosen}});
    std::printf("%s\n", json_text({{"models", out}}).c_str());
    return 0;
  }
  if (found.empty()) {
    std::string where;
    for (const auto& p : paths.ollama) where += "\n  " + p;
    for (const auto& p : paths.hf) where += "\n  " + p;
    std::printf("No DeepSeek-R1 distills found. Looked in:%s\n"
                "Fetch one with `ollama pull deepseek-r1:7b`, or name a GGUF file or snapshot folder with --model.\n",
                where.c_str());
    return 0;
  }
  // MAX CONTEXT: the longest context whose KV cache fits beside the weights in memory now.
  std::printf("%-2s%-44s %-6s %7s %-7s %10s %11s  %s\n", "", "MODEL", "ARCH", "PARAMS", "TYPE", "SIZE",
              "MAX CONTEXT", "PATH");
  for (const auto& f : found) {
    char params[32];
    const double n = static_cast<double>(f.parameters);
    if (n >= 1e9) std::snprintf(params, sizeof params, "%.2fB", n / 1e9);
    else std::snprintf(params, sizeof params, "%.1fM", n / 1e6);
    const std::uint32_t ctx = largest_context(f.config, f.bytes, available);
    std::printf("%-2s%-44s %-6s %7s %-7s %10s %11s  %s\n", f.ref.spec == chosen ? "*" : "", f.ref.spec.c_str(),
                f.arch.c_str(), params, f.type.c_str(), format_bytes(f.bytes).c_str(),
                ctx ? std::to_string(ctx).c_str() : "too big", f.ref.path.c_str());
  }
  if (!chosen.empty())
    std::printf("\n* the default (the largest that fits in %s with a %u-token context)\n", format_bytes(available).c_str(),
                kDefaultContext);
  else
    std::printf("\nNone fits in %s with a %u-token context.\n", format_bytes(available).c_str(), kDefaultContext);
  return 0;
}

}  // namespace ponder::cli
