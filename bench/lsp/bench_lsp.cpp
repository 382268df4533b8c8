// bench_lsp: how long the language server takes to answer what must be instant, on a large file.
//
//   bench_lsp [--model M.gguf] [--file PATH] [--lines N] [--iterations N] [--json FILE]
//
// The server runs in process (lsp/server.h: Server(options, send), handle(body)), with a
// workspace holding one file: PATH, else a generated C++ file of N lines (default 5,000: ~600
// functions that call each other). Each figure is the time handle() takes for one message —
// JSON parsing, the handler, the reply built, serialized and handed to `send` — one at a time:
//   codeAction — textDocument/codeAction at a random line (the listing: from the index, no model);
//   hover      — textDocument/hover over a function's name or a call of it whose explanation is
//                cached (filled first by forced explains through --model, a small generated
//                model: `make_test_model --arch qwen2 --type q8_0 --out M.gguf`; skipped without);
//   didChange  — an incremental textDocument/didChange: a letter typed inside an identifier and
//                deleted again (each a change), then Enter at the end of a line (the new line
//                indented like it) and its undo; each runs the incremental reparse and the tag
//                update before handle() returns.
// Prints p50/p99/max (wall clock) per operation against the 5 ms target, and the CPU time of the
// thread that ran handle() (p50/p99: the same work without the waits of a busy machine);
// --json writes the figures too.
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/model.h"
#include "lsp/json_rpc.h"
#include "lsp/positions.h"
#include "lsp/protocol.h"
#include "lsp/server.h"

using namespace ponder;
using namespace ponder::lsp;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr double kTargetMs = 5.0;

// A large, plausible C++ file: functions of three shapes, each calling the one before.
std::string generate_cpp(int lines) {
  std::ostringstream out;
  out << "#include <map>\n#include <string>\n#include <vector>\n\nnamespace bench {\n\n";
  int written = 6;
  for (int i = 0; written < lines - 2; ++i) {
    const std::string f = "step_" + std::to_string(i), prev = i ? "step_" + std::to_string(i - 1) : "";
    switch (i % 3) {
      case 0:
        out << "// " << f << ": the sum of the elements above a threshold.\n"
            << "int " << f << "(const std::vector<int>& values, int threshold) {\n"
            << "  int total = 0;\n"
            << "  for (int value : values) {\n"
            << "    if (value > threshold) total += value;\n"
            << "  }\n"
            << "  return " << (prev.empty() ? "total" : prev + "(values, total % 7)") << ";\n"
            << "}\n\n";
        written += 9;
        break;
      case 1:
        out << "struct Counter" << i << " {\n"
            << "  std::map<std::string, int> counts;\n"
            << "  int add(const std::string& word) { return ++counts[word]; }\n"
            << "};\n\n"
            << "int " << f << "(const std::vector<int>& values, int threshold) {\n"
            << "  Counter" << i << " counter;\n"
            << "  for (int value : values) counter.add(std::to_string(value % 10));\n"
            << "  return " << prev << "(values, threshold) + static_cast<int>(counter.counts.size());\n"
            << "}\n\n";
        written += 11;
        break;
      default:
        out << "int " << f << "(const std::vector<int>& values, int threshold) {\n"
            << "  std::vector<int> kept;\n"
            << "  kept.reserve(values.size());\n"
            << "  for (std::size_t i = 0; i < values.size(); ++i) {\n"
            << "    if (values[i] % 2 == 0 && values[i] < threshold) kept.push_back(values[i]);\n"
            << "  }\n"
            << "  return " << prev << "(kept, threshold - 1);\n"
            << "}\n\n";
        written += 9;
    }
  }
  out << "}  // namespace bench\n";
  return out.str();
}

// What the server sends, by request id (notifications and its own requests are dropped). take()
// only keeps the body, so the time handle() takes includes no parsing on the client's side.
class Inbox {
 public:
  void take(const std::string& body) {
    std::lock_guard lock(mu_);
    unread_.push_back(body);
    cv_.notify_all();
  }
  // The response to `id`, waiting up to `seconds`; null on timeout.
  json wait(int id, double seconds) {
    std::unique_lock lock(mu_);
    const std::string key = json(id).dump();
    if (!cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return read_locked().count(key) > 0; }))
      return nullptr;
    json j = std::move(responses_[key]);
    responses_.erase(key);
    return j;
  }
  bool has(int id) {
    std::lock_guard lock(mu_);
    return read_locked().count(json(id).dump()) > 0;
  }

 private:
  const std::map<std::string, json>& read_locked() {
    for (const std::string& body : unread_) {
      json j = json::parse(body, nullptr, false);
      if (j.is_discarded() || !j.contains("id") || j.contains("method")) continue;
      const std::string id = j["id"].dump();
      responses_[id] = std::move(j);
    }
    unread_.clear();
    return responses_;
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> unread_;
  std::map<std::string, json> responses_;
};

// One message's time: wall clock, and the CPU time of the thread that ran handle() (the same
// work, without the waits a busy machine adds).
struct Sample {
  double wall_ms = 0, cpu_ms = 0;
};

struct Figures {
  std::string op;
  std::size_t count = 0;
  double p50 = 0, p99 = 0, max = 0;  // wall ms
  double cpu_p50 = 0, cpu_p99 = 0;   // thread CPU ms
};

Figures figures_of(const std::string& op, const std::vector<Sample>& samples) {
  Figures f;
  f.op = op;
  f.count = samples.size();
  if (samples.empty()) return f;
  std::vector<double> wall, cpu;
  for (const Sample& x : samples) {
    wall.push_back(x.wall_ms);
    cpu.push_back(x.cpu_ms);
  }
  std::sort(wall.begin(), wall.end());
  std::sort(cpu.begin(), cpu.end());
  auto p99 = [](const std::vector<double>& v) { return v[std::min(v.size() - 1, v.size() * 99 / 100)]; };
  f.p50 = wall[wall.size() / 2];
  f.p99 = p99(wall);
  f.max = wall.back();
  f.cpu_p50 = cpu[cpu.size() / 2];
  f.cpu_p99 = p99(cpu);
  return f;
}

double thread_cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "bench_lsp: %s\n", message.c_str());
  std::exit(1);
}

std::string request(int id, const std::string& method, const json& params) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}}.dump();
}
std::string notification(const std::string& method, const json& params) {
  return json{{"jsonrpc", "2.0"}, {"method", method}, {"params", params}}.dump();
}
json position_json(Position p) { return {{"line", p.line}, {"character", p.character}}; }

// The names of the functions defined in `text` (`int name(` at a line's start).
std::vector<std::pair<std::string, std::size_t>> function_names(const std::string& text) {
  std::vector<std::pair<std::string, std::size_t>> out;
  for (std::size_t at = text.find("\nint "); at != std::string::npos; at = text.find("\nint ", at + 1)) {
    const std::size_t begin = at + 5, paren = text.find('(', begin);
    if (paren != std::string::npos && paren - begin < 64) out.emplace_back(text.substr(begin, paren - begin), begin);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_path, file, json_path;
  int lines = 5000, iterations = 1000;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail(a + " needs a value");
      return argv[++i];
    };
    if (a == "--model") model_path = value();
    else if (a == "--file") file = value();
    else if (a == "--lines") lines = std::atoi(value().c_str());
    else if (a == "--iterations") iterations = std::atoi(value().c_str());
    else if (a == "--json") json_path = value();
    else if (a == "-h" || a == "--help") {
      std::puts("usage: bench_lsp [--model M.gguf] [--file PATH] [--lines N] [--iterations N] [--json FILE]");
      return 0;
    } else fail("unknown argument " + a);
  }
  if (lines < 100 || iterations < 10) fail("--lines wants at least 100, --iterations at least 10");

  // The workspace: one file.
  const std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("ponder-bench-lsp-" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root / "src");
  std::string text;
  std::string name = "src/big.cpp";
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    if (!in) fail("cannot read " + file);
    text.assign(std::istreambuf_iterator<char>(in), {});
    name = "src/" + std::filesystem::path(file).filename().string();
  } else {
    text = generate_cpp(lines);
  }
  std::ofstream(root / name, std::ios::binary) << text;
  const std::string uri = path_to_uri((root / name).string());
  const std::uint32_t n_lines = static_cast<std::uint32_t>(std::count(text.begin(), text.end(), '\n')) + 1;

  // The forced answer an explain gets: a short R1 answer (reasoning, </think>, the explanation).
  const std::string explanation = "It keeps the values that pass the test and hands them on to the previous step.";
  ServerOptions options;
  options.index_threads = 1;
  options.forced_answer = "The function filters values, then calls the previous step.\n</think>\n\n" + explanation + "\n";
  options.loader = [](const ModelSettings& s, const LoadProgress&, std::string* error) -> std::unique_ptr<Engine> {
    auto model = Model::open(s.model, error);
    if (!model) return nullptr;
    EngineOptions eo;
    eo.backend.context = s.context;
    return Engine::create(std::move(model), eo, error);
  };
  options.model_override = model_path;
  Inbox inbox;
  Server server(options, [&inbox](const std::string& body) { inbox.take(body); });
  int next_id = 1;
  auto call = [&](const std::string& method, const json& params, double seconds = 120) {
    const int id = next_id++;
    server.handle(request(id, method, params));
    json r = inbox.wait(id, seconds);
    if (r.is_null()) fail(method + ": no answer in " + std::to_string(seconds) + " s");
    if (r.contains("error")) fail(method + ": " + r["error"].dump());
    return r["result"];
  };
  const json caps = {
      {"textDocument",
       {{"codeAction",
         {{"codeActionLiteralSupport", {{"codeActionKind", {{"valueSet", {"quickfix", "refactor"}}}}}},
          {"resolveSupport", {{"properties", {"edit"}}}}}},
        {"hover", {{"contentFormat", {"markdown", "plaintext"}}}}}}};
  call("initialize", {{"processId", nullptr},
                      {"rootUri", path_to_uri(root.string())},
                      {"capabilities", caps},
                      {"initializationOptions",
                       {{"context", 2048}, {"maxTokens", 200}, {"hoverWaitsForModel", true}, {"suggestions", false}}}});
  server.handle(notification("initialized", json::object()));
  std::int64_t version = 1;
  server.handle(notification("textDocument/didOpen",
                             {{"textDocument", {{"uri", uri}, {"languageId", "cpp"}, {"version", version}, {"text", text}}}}));
  server.wait_idle();  // the index is built

  std::mt19937 rng(42);
  // Times one message; a request (id > 0) must have been answered when handle() returns (a hover
  // that is not cached is answered later, from the job thread): its response goes to `last`.
  json last;
  auto timed = [&](const std::string& body, int id) {
    const double cpu0 = thread_cpu_ms();
    const auto t0 = clock_type::now();
    server.handle(body);
    const Sample sample{ms_since(t0), thread_cpu_ms() - cpu0};
    if (id > 0 && !inbox.has(id)) fail("request " + std::to_string(id) + " was not answered at once");
    if (id > 0) last = inbox.wait(id, 0);
    return sample;
  };

  // codeAction: the listing at a random line, cursor at the line's first non-blank character.
  std::vector<Sample> listing;
  std::size_t listed = 0;
  for (int i = 0; i < iterations + 20; ++i) {
    const std::uint32_t line = static_cast<std::uint32_t>(rng() % n_lines);
    const std::uint32_t at = offset_at(text, {line, 0}, Encoding::utf16);
    const std::uint32_t column = static_cast<std::uint32_t>(std::min(text.find_first_not_of(" \t", at), text.size()) - at);
    const Position p{line, column};
    const int id = next_id++;
    const Sample ms = timed(request(id, "textDocument/codeAction",
                                    {{"textDocument", {{"uri", uri}}},
                                     {"range", {{"start", position_json(p)}, {"end", position_json(p)}}},
                                     {"context", {{"diagnostics", json::array()}}}}),
                            id);
    if (!last.contains("result")) fail("codeAction: " + last.dump());
    listed += last["result"].size();
    if (i >= 20) listing.push_back(ms);  // the first 20 warm up
  }

  // hover: explanations of up to 16 functions cached first (forced explains, waited for).
  std::vector<Sample> hovers;
  std::size_t hover_symbols = 0;
  std::string hover_note;
  const auto names = function_names(text);
  if (model_path.empty()) hover_note = " (no --model: hover skipped)";
  else if (names.empty()) hover_note = " (no `int name(` definition in the file: hover skipped)";
  if (hover_note.empty()) {
    std::vector<Position> targets;  // each explained function's name, and a call of it
    for (std::size_t k = 0; k < names.size() && hover_symbols < 16; k += std::max<std::size_t>(1, names.size() / 16)) {
      const auto& [fname, at] = names[k];
      const Position def = position_at(text, static_cast<std::uint32_t>(at + 1), Encoding::utf16);
      const json h = call("textDocument/hover", {{"textDocument", {{"uri", uri}}}, {"position", position_json(def)}}, 300);
      const std::string md = h.is_object() ? h["contents"]["value"].get<std::string>() : "";
      if (md.find(explanation) == std::string::npos) fail("hover over " + fname + " did not explain it: " + h.dump());
      ++hover_symbols;
      targets.push_back(def);
      const std::size_t call_at = text.find(fname + "(", at + fname.size());
      if (call_at != std::string::npos && text.compare(call_at - 4, 4, "int ") != 0)
        targets.push_back(position_at(text, static_cast<std::uint32_t>(call_at + 1), Encoding::utf16));
    }
    for (int i = 0; i < iterations + 20; ++i) {
      const Position p = targets[static_cast<std::size_t>(i) % targets.size()];
      const int id = next_id++;
      const Sample ms = timed(request(id, "textDocument/hover", {{"textDocument", {{"uri", uri}}}, {"position", position_json(p)}}), id);
      if (i >= 20) hovers.push_back(ms);
    }
    if (last["result"]["contents"]["value"].get<std::string>().find(explanation) == std::string::npos)
      fail("the last hover did not show the explanation: " + last.dump());
  }

  // didChange: a letter typed inside an identifier, then deleted; Enter at a line's end, then undone.
  auto change = [&](Position start, Position end, const std::string& replacement) {
    ++version;
    return notification("textDocument/didChange",
                        {{"textDocument", {{"uri", uri}, {"version", version}}},
                         {"contentChanges",
                          {{{"range", {{"start", position_json(start)}, {"end", position_json(end)}}}, {"text", replacement}}}}});
  };
  std::vector<Sample> letters, enters;
  for (int i = 0; i < iterations / 2 + 10; ++i) {
    std::uint32_t at;
    do at = 1 + static_cast<std::uint32_t>(rng() % (text.size() - 1));
    while (!std::isalpha(static_cast<unsigned char>(text[at - 1])) || !std::isalpha(static_cast<unsigned char>(text[at])));
    const Position p = position_at(text, at, Encoding::utf16), after{p.line, p.character + 1};
    const Sample typed = timed(change(p, p, "q"), 0);
    const Sample deleted = timed(change(p, after, ""), 0);
    if (i >= 10) letters.insert(letters.end(), {typed, deleted});
  }
  for (int i = 0; i < iterations / 2 + 10; ++i) {
    const std::uint32_t line = static_cast<std::uint32_t>(rng() % (n_lines - 1));
    const std::uint32_t begin = offset_at(text, {line, 0}, Encoding::utf16);
    const std::uint32_t end = static_cast<std::uint32_t>(text.find('\n', begin));
    // The new line keeps the line's indentation, as an editor's autoindent does.
    const std::string indent = text.substr(begin, std::min<std::size_t>(text.find_first_not_of(" \t", begin), end) - begin);
    const Position p = position_at(text, end, Encoding::utf16);
    const Sample entered = timed(change(p, p, "\n" + indent), 0);
    const Sample undone = timed(change(p, {p.line + 1, static_cast<std::uint32_t>(indent.size())}, ""), 0);
    if (i >= 10) enters.insert(enters.end(), {entered, undone});
  }
  // Every change was taken (the listing's data names the last version) and undone (the server's
  // text is the original: a cached explanation, keyed by its function's text, is found again).
  if (!names.empty()) {
    const Position p = position_at(text, static_cast<std::uint32_t>(names[0].second + 1), Encoding::utf16);
    const json actions = call("textDocument/codeAction", {{"textDocument", {{"uri", uri}}},
                                                          {"range", {{"start", position_json(p)}, {"end", position_json(p)}}},
                                                          {"context", {{"diagnostics", json::array()}}}});
    if (actions.empty() || actions[0]["data"]["version"] != version) fail("the listing after the changes is wrong: " + actions.dump());
    if (hover_note.empty()) {
      const int id = next_id++;
      timed(request(id, "textDocument/hover", {{"textDocument", {{"uri", uri}}}, {"position", position_json(p)}}), id);
      if (last["result"]["contents"]["value"].get<std::string>().find(explanation) == std::string::npos)
        fail("after the changes and their undoing, the hover is not the cached one: " + last.dump());
    }
  }

  const std::vector<Figures> results = {
      figures_of("codeAction (listing)", listing),
      figures_of("hover (cached)", hovers),
      figures_of("didChange: letter typed/deleted", letters),
      figures_of("didChange: Enter at line end/undone", enters),
  };
  std::printf("file: %s, %u lines, %zu bytes; %zu actions listed (%.1f per listing); %zu symbols explained for hover%s\n",
              file.empty() ? "generated C++" : file.c_str(), n_lines, text.size(), listed,
              static_cast<double>(listed) / static_cast<double>(iterations + 20), hover_symbols, hover_note.c_str());
  // Hovers over calls look names up in the index, which builds its name tables; from then on
  // every change updates them too (as in an editor session after the first hover or task).
  std::printf("didChange ran %s\n", hover_note.empty() ? "after hovers: the index's name tables are built and updated on each change"
                                                        : "with no name looked up yet: the index's name tables are not built");
  std::printf("%-38s %7s %9s %9s %9s  %-10s %9s %9s\n", "operation", "count", "p50 ms", "p99 ms", "max ms", "p99 < 5 ms",
              "cpu p50", "cpu p99");
  for (const Figures& f : results) {
    if (f.count == 0) {
      std::printf("%-38s %7s\n", f.op.c_str(), "skipped");
      continue;
    }
    std::printf("%-38s %7zu %9.3f %9.3f %9.3f  %-10s %9.3f %9.3f\n", f.op.c_str(), f.count, f.p50, f.p99, f.max,
                f.p99 < kTargetMs ? "yes" : "NO", f.cpu_p50, f.cpu_p99);
  }
  if (!json_path.empty()) {
    json out = {{"file", file.empty() ? "generated" : file}, {"lines", n_lines}, {"bytes", text.size()},
                {"target_p99_ms", kTargetMs}, {"operations", json::array()}};
    for (const Figures& f : results)
      out["operations"].push_back({{"op", f.op}, {"count", f.count}, {"p50_ms", f.p50}, {"p99_ms", f.p99}, {"max_ms", f.max},
                                   {"cpu_p50_ms", f.cpu_p50}, {"cpu_p99_ms", f.cpu_p99}});
    std::ofstream(json_path) << out.dump(2) << "\n";
  }
  server.handle(request(next_id++, "shutdown", nullptr));
  server.handle(notification("exit", nullptr));
  std::filesystem::remove_all(root);
  return 0;
}
