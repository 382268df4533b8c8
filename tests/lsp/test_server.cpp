// The language server through an in-process client (clangd's habit): every method, with a
// generated random-weight model — free sampling (noise: "no valid edit") and forced decoding of a
// realistic R1 answer (the edit path end to end through the real engine).
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "engine/engine.h"
#include "lsp/json_rpc.h"
#include "lsp/protocol.h"
#include "lsp/server.h"
#include "support/temp_dir.h"
#include "support/test_model.h"

using namespace ponder;
using namespace ponder::lsp;

namespace {

std::string fixture(const char* name) {
  std::ifstream in(std::string(PONDER_FIXTURES) + "/lsp/" + name, std::ios::binary);
  if (!in) throw std::runtime_error(std::string("missing fixture tests/fixtures/lsp/") + name);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The fixture file (tests/fixtures/lsp/sum.cpp; the node and Neovim tests use it too).
const std::string kSum = fixture("sum.cpp");

// An answer as R1 distills write it: reasoning, </think>, summary, rationale, an edit block.
const std::string kAnswer = fixture("r1_answer.txt");

const std::filesystem::path& model_file() {
  static test::TempDir dir;
  static std::filesystem::path path = [] {
    std::string error;
    const std::filesystem::path p = dir.path() / "m.gguf";
    if (!test::write_gguf(test::TestModelSpec::like_r1(Arch::qwen2), GgmlType::q8_0, p.string(), &error))
      throw std::runtime_error(error);
    return p;
  }();
  return path;
}

EngineLoader tiny_loader(std::atomic<int>* loads = nullptr) {
  return [loads](const ModelSettings& s, const LoadProgress& progress, std::string* error) -> std::unique_ptr<Engine> {
    if (loads) ++*loads;
    progress("mapping", 10);
    auto model = Model::open(model_file().string(), error);
    if (!model) return nullptr;
    EngineOptions eo;
    eo.backend.context = s.context;
    return Engine::create(std::move(model), eo, error);
  };
}

json client_caps(bool resolve = true) {
  json caps = {
      {"window", {{"workDoneProgress", true}, {"showDocument", {{"support", false}}}}},
      {"workspace",
       {{"applyEdit", true},
        {"workspaceEdit", {{"documentChanges", true}, {"changeAnnotationSupport", json::object()}}},
        {"didChangeWatchedFiles", {{"dynamicRegistration", true}}}}},
      {"textDocument",
       {{"codeAction", {{"codeActionLiteralSupport", {{"codeActionKind", {{"valueSet", {"quickfix", "refactor"}}}}}}}},
        {"hover", {{"contentFormat", {"markdown", "plaintext"}}}}}}};
  if (resolve) caps["textDocument"]["codeAction"]["resolveSupport"] = {{"properties", {"edit"}}};
  return caps;
}

// The client: sends messages to the server, answers the server's requests (applyEdit and the
// rest) and keeps everything it received.
class Client {
 public:
  explicit Client(ServerOptions options) {
    options.on_exit = [this] {
      std::lock_guard lock(mu_);
      exit_called_ = true;
    };
    server_ = std::make_unique<Server>(std::move(options), [this](const std::string& body) {
      json j = json::parse(body);
      std::lock_guard lock(mu_);
      inbox_.push_back(j);
      all_.push_back(j);
      cv_.notify_all();
    });
  }
  ~Client() { server_.reset(); }

  Server& server() { return *server_; }
  void send(const json& j) { server_->handle(j.dump()); }
  void notify(const std::string& method, const json& params) {
    send({{"jsonrpc", "2.0"}, {"method", method}, {"params", params}});
  }
  int start(const std::string& method, const json& params) {
    const int id = next_id_++;
    send({{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}});
    return id;
  }
  // The response to request `id` (waiting while answering the server's requests).
  json wait_response(int id, double seconds = 120) {
    return wait([&](const json& m) { return m.contains("id") && m["id"] == id && !m.contains("method"); }, seconds);
  }
  json call(const std::string& method, const json& params) { return wait_response(start(method, params)); }
  // The first message (received or to come) that matches.
  json wait(const std::function<bool(const json&)>& match, double seconds = 120) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    std::unique_lock lock(mu_);
    while (true) {
      bool rescan = false;
      for (auto it = inbox_.begin(); it != inbox_.end(); ++it) {
        json m = *it;
        if (m.contains("method") && m.contains("id")) {  // a server request: answer it
          inbox_.erase(it);
          lock.unlock();
          answer(m);
          lock.lock();
          if (match(m)) return m;
          rescan = true;
          break;
        }
        if (match(m)) {
          inbox_.erase(it);
          return m;
        }
      }
      if (rescan) continue;
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
        if (seconds < 1) {  // clear()
          inbox_.clear();
          return nullptr;
        }
        FAIL("timed out waiting for a message");
      }
    }
  }
  // Forgets what came so far (but answers the server's requests).
  void clear() {
    wait([](const json&) { return false; }, 0.05);
  }
  std::vector<json> received(const std::string& method) {
    std::lock_guard lock(mu_);
    std::vector<json> out;
    for (const json& m : all_)
      if (m.value("method", "") == method) out.push_back(m);
    return out;
  }
  bool exit_called() {
    std::lock_guard lock(mu_);
    return exit_called_;
  }
  bool apply_edits = true;  // what the client answers to workspace/applyEdit
  bool refuse_progress = false;  // answer window/workDoneProgress/create with an error
  std::set<std::string> refused;  // the tokens refused so

 private:
  void answer(const json& m) {
    if (refuse_progress && m["method"] == "window/workDoneProgress/create") {
      refused.insert(m["params"]["token"].get<std::string>());
      send({{"jsonrpc", "2.0"}, {"id", m["id"]}, {"error", {{"code", -32603}, {"message", "no"}}}});
      return;
    }
    json result = nullptr;
    if (m["method"] == "workspace/applyEdit") result = {{"applied", apply_edits}};
    send({{"jsonrpc", "2.0"}, {"id", m["id"]}, {"result", result}});
  }
  std::unique_ptr<Server> server_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<json> inbox_;
  std::vector<json> all_;
  int next_id_ = 1;
  bool exit_called_ = false;
};

struct Fixture {
  test::TempDir dir;
  std::string uri;
  std::unique_ptr<Client> client;

  explicit Fixture(bool forced, json init = json::object(), bool resolve = true, EngineLoader loader = tiny_loader(),
                   const std::string& answer = kAnswer) {
    dir.write("src/sum.cpp", kSum);
    dir.write("src/util.py", "def helper(x):\n    return x + 1\n");
    uri = path_to_uri((dir.path() / "src/sum.cpp").string());
    ServerOptions o;
    o.loader = std::move(loader);
    o.index_threads = 1;
    if (forced) o.forced_answer = answer;
    client = std::make_unique<Client>(o);
    if (!init.contains("context")) init["context"] = 2048;
    if (!init.contains("maxTokens")) init["maxTokens"] = 400;
    const json r = client->call("initialize", {{"processId", nullptr},
                                               {"rootUri", path_to_uri(dir.str())},
                                               {"capabilities", client_caps(resolve)},
                                               {"initializationOptions", init}});
    REQUIRE(r.contains("result"));
    client->notify("initialized", json::object());
    client->notify("textDocument/didOpen",
                   {{"textDocument", {{"uri", uri}, {"languageId", "cpp"}, {"version", 1}, {"text", kSum}}}});
  }
  json position(int line, int character) { return {{"line", line}, {"character", character}}; }
  json code_actions(int line, int character, json diagnostics = json::array()) {
    const json r = client->call("textDocument/codeAction",
                                {{"textDocument", {{"uri", uri}}},
                                 {"range", {{"start", position(line, character)}, {"end", position(line, character)}}},
                                 {"context", {{"diagnostics", diagnostics}}}});
    REQUIRE(r.contains("result"));
    return r["result"];
  }
  static json find_action(const json& actions, const std::string& prefix) {
    for (const json& a : actions)
      if (a["title"].get<std::string>().rfind(prefix, 0) == 0) return a;
    FAIL("no action titled " << prefix << "... in " << actions.dump());
    return nullptr;
  }
};

}  // namespace

TEST_CASE("lsp server: lifecycle, errors before initialize, unknown methods, shutdown and exit", "[lsp][server]") {
  ServerOptions o;
  o.loader = tiny_loader();
  Client c(o);
  json r = c.call("textDocument/hover", json::object());
  CHECK(r["error"]["code"] == error_code::server_not_initialized);
  test::TempDir dir;
  r = c.call("initialize", {{"processId", nullptr},
                            {"rootUri", path_to_uri(dir.str())},
                            {"capabilities", {{"general", {{"positionEncodings", {"utf-8", "utf-16"}}}}}}});
  const json& caps = r["result"]["capabilities"];
  CHECK(caps["positionEncoding"] == "utf-8");
  CHECK(caps["codeActionProvider"]["resolveProvider"] == true);
  CHECK(caps["textDocumentSync"]["change"] == 2);
  CHECK(caps["hoverProvider"] == true);
  CHECK(r["result"]["serverInfo"]["name"] == "ponder");
  CHECK(c.call("initialize", json::object())["error"]["code"] == error_code::invalid_request);
  CHECK(c.call("textDocument/definition", json::object())["error"]["code"] == error_code::method_not_found);
  // Garbage gets an error reply, and the server goes on.
  c.server().handle("{not json");
  CHECK(c.wait([](const json& m) { return m.contains("error") && m["error"]["code"] == error_code::parse_error; }).size() > 0);
  c.server().handle(R"({"jsonrpc":"2.0","id":7,"method":"textDocument/codeAction","params":{"textDocument":5}})");
  CHECK(c.wait_response(7)["error"]["code"] == error_code::invalid_params);
  CHECK(c.call("shutdown", nullptr).contains("result"));
  CHECK(c.call("textDocument/hover", json::object())["error"]["code"] == error_code::invalid_request);
  c.notify("exit", nullptr);
  CHECK(c.server().exited());
  CHECK(c.server().exit_code() == 0);
  CHECK(c.exit_called());
}

TEST_CASE("lsp server: exit without shutdown exits with 1", "[lsp][server]") {
  ServerOptions o;
  o.loader = tiny_loader();
  Client c(o);
  c.notify("exit", nullptr);
  CHECK(c.server().exited());
  CHECK(c.server().exit_code() == 1);
}

TEST_CASE("lsp server: code actions list refactor, explain and fix from the index at once", "[lsp][server]") {
  Fixture f(true);
  const json actions = f.code_actions(4, 10, json::array({{{"range", {{"start", f.position(5, 4)}, {"end", f.position(5, 14)}}},
                                                            {"message", "out-of-bounds read"},
                                                            {"source", "clang-tidy"},
                                                            {"severity", 2}}}));
  REQUIRE(actions.size() == 3);
  const json refactor = Fixture::find_action(actions, "Ponder: improve `sum`");
  CHECK(refactor["kind"] == "refactor.rewrite");
  CHECK(refactor["data"]["firstLine"] == 3);
  CHECK(refactor["data"]["lastLine"] == 9);
  CHECK(refactor["data"]["version"] == 1);
  CHECK(!refactor.contains("edit"));  // thinking is lazy
  CHECK(Fixture::find_action(actions, "Ponder: explain `sum`")["kind"] == "refactor.explain");
  const json fix = Fixture::find_action(actions, "Ponder: fix");
  CHECK(fix["kind"] == "quickfix");
  CHECK(fix["diagnostics"][0]["message"] == "out-of-bounds read");
  CHECK(fix["data"]["diagnostic"].get<std::string>().find("line 6: out-of-bounds read") != std::string::npos);
  // Outside any definition: nothing to do but fixes.
  CHECK(f.code_actions(1, 0).empty());
  // A selection is a target of its own.
  const json sel = f.client->call("textDocument/codeAction",
                                  {{"textDocument", {{"uri", f.uri}}},
                                   {"range", {{"start", f.position(3, 0)}, {"end", f.position(7, 0)}}},
                                   {"context", {{"diagnostics", json::array()}}}})["result"];
  const json improve = Fixture::find_action(sel, "Ponder: improve the selection");
  CHECK(improve["data"]["firstLine"] == 4);
  CHECK(improve["data"]["lastLine"] == 7);
}

TEST_CASE("lsp server: resolve runs the task through the engine and returns the checked edit with its reasoning",
          "[lsp][server]") {
  Fixture f(true);
  const json action = Fixture::find_action(f.code_actions(4, 10), "Ponder: improve `sum`");
  const json r = f.client->call("codeAction/resolve", action);
  REQUIRE(r.contains("result"));
  const json& edit = r["result"]["edit"];
  REQUIRE(edit["documentChanges"].size() == 1);
  const json& change = edit["documentChanges"][0];
  CHECK(change["textDocument"]["uri"] == f.uri);
  CHECK(change["textDocument"]["version"] == 1);
  const json& te = change["edits"][0];
  CHECK(te["range"]["start"] == f.position(4, 0));
  CHECK(te["range"]["end"] == f.position(6, 0));  // whole lines, and only those that change
  CHECK(te["newText"] == "  for (int x : v) {\n    s += x;\n");
  const std::string ann = te["annotationId"];
  CHECK(edit["changeAnnotations"][ann]["label"] == "Iterate over the vector's elements instead of an index bound by n.");
  CHECK(edit["changeAnnotations"][ann]["needsConfirmation"] == true);
  CHECK(edit["changeAnnotations"][ann]["description"].get<std::string>().find("one past the end") != std::string::npos);
  CHECK(r["result"]["command"]["command"] == "ponder.showReasoning");
  // Progress: created by the server, begin (cancellable), reports, end.
  const auto progress = f.client->received("$/progress");
  REQUIRE(progress.size() >= 2);
  CHECK(f.client->received("window/workDoneProgress/create").size() >= 1);
  bool began = false, ended = false;
  for (const json& p : progress) {
    if (p["params"]["value"]["kind"] == "begin" && p["params"]["value"]["title"] == "Ponder: improve `sum`") {
      began = true;
      CHECK(p["params"]["value"]["cancellable"] == true);
    }
    if (began && p["params"]["value"]["kind"] == "end") ended = true;
  }
  CHECK(began);
  CHECK(ended);
  // The reasoning streamed, ending with done.
  std::string streamed;
  bool done = false;
  for (const json& n : f.client->received("ponder/reasoning")) {
    streamed += n["params"]["text"].get<std::string>();
    done = done || n["params"]["done"] == true;
  }
  CHECK(done);
  CHECK(streamed.find("one past the end") != std::string::npos);
  // The reasoning is there to show.
  const json shown = f.client->call("workspace/executeCommand", r["result"]["command"]);
  CHECK(shown["result"]["markdown"].get<std::string>().find("## Reasoning") != std::string::npos);
  // After the edit is applied, a hover over the new code shows why.
  f.client->notify("textDocument/didChange",
                   {{"textDocument", {{"uri", f.uri}, {"version", 2}}},
                    {"contentChanges", {{{"range", te["range"]}, {"text", te["newText"]}}}}});
  const json hover = f.client->call("textDocument/hover", {{"textDocument", {{"uri", f.uri}}}, {"position", f.position(5, 6)}});
  CHECK(hover["result"]["contents"]["value"].get<std::string>().find("Iterate over the vector") != std::string::npos);
  // The action listed for version 1 is stale now.
  const json stale = f.client->call("codeAction/resolve", action);
  CHECK(stale["error"]["code"] == error_code::content_modified);
}

TEST_CASE("lsp server: free sampling gives noise, reported as no valid edit", "[lsp][server]") {
  Fixture f(false, {{"maxTokens", 48}, {"temperature", 1.0}});
  const json action = Fixture::find_action(f.code_actions(4, 10), "Ponder: improve `sum`");
  const json r = f.client->call("codeAction/resolve", action);
  REQUIRE(r.contains("error"));
  CHECK(r["error"]["code"] == error_code::request_failed);
  CHECK(r["error"]["message"].get<std::string>().rfind("ponder: no valid edit (", 0) == 0);
  CHECK(!f.client->received("window/showMessage").empty());
  // Still serving.
  CHECK(f.code_actions(4, 10).size() == 2);
}

TEST_CASE("lsp server: $/cancelRequest and progress cancel stop generation, a newer request supersedes",
          "[lsp][server]") {
  // A long generation (a forced reasoning of 12K tokens), to be stopped while it runs.
  std::string thinking;
  for (int i = 0; i < 3000; ++i) thinking += "step " + std::to_string(i) + " ";
  Fixture f(true, {{"context", 16384}, {"maxTokens", 14000}, {"reasoningBudget", -1}}, true, tiny_loader(), thinking);
  const json action = Fixture::find_action(f.code_actions(4, 10), "Ponder: improve `sum`");
  int id = f.client->start("codeAction/resolve", action);
  f.client->wait([](const json& m) { return m.value("method", "") == "$/progress" && m["params"]["value"]["kind"] == "report"; });
  f.client->notify("$/cancelRequest", {{"id", id}});
  json r = f.client->wait_response(id, 30);
  CHECK(r["error"]["code"] == error_code::request_cancelled);

  // Cancel through the progress token.
  f.client->clear();
  id = f.client->start("codeAction/resolve", action);
  const json begin = f.client->wait([](const json& m) {
    return m.value("method", "") == "$/progress" && m["params"]["value"]["kind"] == "begin";
  });
  f.client->notify("window/workDoneProgress/cancel", {{"token", begin["params"]["token"]}});
  r = f.client->wait_response(id, 30);
  INFO(r.dump());
  CHECK(r["error"]["code"] == error_code::request_cancelled);

  // The same request twice: the first is superseded.
  f.client->clear();
  const int first = f.client->start("codeAction/resolve", action);
  f.client->wait([](const json& m) { return m.value("method", "") == "$/progress" && m["params"]["value"]["kind"] == "report"; });
  const int second = f.client->start("codeAction/resolve", action);
  r = f.client->wait_response(first, 30);
  CHECK(r["error"]["code"] == error_code::request_cancelled);
  CHECK(r["error"]["message"].get<std::string>().find("superseded") != std::string::npos);
  f.client->call("workspace/executeCommand", {{"command", "ponder.cancel"}});
  CHECK(f.client->wait_response(second, 30).contains("error"));
}

TEST_CASE("lsp server: without resolve support, actions carry a command that applies the edit", "[lsp][server]") {
  Fixture f(true, json::object(), /*resolve=*/false);
  const json action = Fixture::find_action(f.code_actions(4, 10), "Ponder: improve `sum`");
  REQUIRE(action.contains("command"));
  CHECK(!action.contains("data"));
  CHECK(action["command"]["command"] == "ponder.run");
  const json r = f.client->call("workspace/executeCommand", action["command"]);
  CHECK(r["result"]["applied"] == true);
  const auto apply = f.client->received("workspace/applyEdit");
  REQUIRE(apply.size() == 1);
  CHECK(apply[0]["params"]["label"] == "Iterate over the vector's elements instead of an index bound by n.");
  CHECK(apply[0]["params"]["edit"]["documentChanges"][0]["edits"][0]["newText"] == "  for (int x : v) {\n    s += x;\n");
}

TEST_CASE("lsp server: ponder.ask runs a free-form instruction on the selection", "[lsp][server]") {
  Fixture f(true);
  const json ask = {{"uri", f.uri},
                    {"range", {{"start", f.position(4, 0)}, {"end", f.position(7, 0)}}},
                    {"instruction", "use a range-for loop"}};
  const json r = f.client->call("workspace/executeCommand", {{"command", "ponder.ask"}, {"arguments", json::array({ask})}});
  CHECK(r["result"]["applied"] == true);
  const json blank = {{"uri", f.uri}, {"instruction", " "}};
  CHECK(f.client->call("workspace/executeCommand", {{"command", "ponder.ask"}, {"arguments", json::array({blank})}})
            ["error"]["code"] == error_code::invalid_params);
}

TEST_CASE("lsp server: hover answers at once with the signature, then with the cached explanation", "[lsp][server]") {
  Fixture f(true);
  // On a call of sum (line 11): the definition's signature and where it is.
  const json params = {{"textDocument", {{"uri", f.uri}}}, {"position", f.position(10, 51)}};
  json h = f.client->call("textDocument/hover", params);
  std::string text = h["result"]["contents"]["value"];
  CHECK(text.find("int sum(const std::vector<int>& v, int n) {") != std::string::npos);
  CHECK(text.find("src/sum.cpp:3") != std::string::npos);
  CHECK(text.find("writing an explanation") != std::string::npos);
  f.client->server().wait_idle();
  h = f.client->call("textDocument/hover", params);
  text = h["result"]["contents"]["value"];
  CHECK(text.find("Iterate over the vector") != std::string::npos);  // the (forced) answer
  CHECK(h["result"]["range"]["start"] == f.position(10, 50));
  // Nothing under the cursor: no hover.
  CHECK(f.client->call("textDocument/hover", {{"textDocument", {{"uri", f.uri}}}, {"position", f.position(1, 0)}})["result"].is_null());
}

TEST_CASE("lsp server: suggestions on save become diagnostics with their edit, withdrawn when the code changes",
          "[lsp][server]") {
  Fixture f(true, {{"suggestionDebounceMs", 0}});
  // Change sum (a comment inside it), save: sum changed, so it is looked at.
  f.client->notify("textDocument/didChange",
                   {{"textDocument", {{"uri", f.uri}, {"version", 2}}},
                    {"contentChanges", {{{"range", {{"start", f.position(3, 12)}, {"end", f.position(3, 12)}}}, {"text", "  // total"}}}}});
  f.client->notify("textDocument/didSave", {{"textDocument", {{"uri", f.uri}}}});
  const json published = f.client->wait([](const json& m) {
    return m.value("method", "") == "textDocument/publishDiagnostics" && !m["params"]["diagnostics"].empty();
  });
  const json& d = published["params"]["diagnostics"][0];
  CHECK(d["source"] == "ponder");
  CHECK(d["severity"] == 4);
  CHECK(d["message"] == "Iterate over the vector's elements instead of an index bound by n.");
  CHECK(d["range"]["start"] == f.position(4, 0));
  // Its code action carries the edit.
  const json fix = Fixture::find_action(f.code_actions(5, 2), "Ponder: Iterate");
  CHECK(fix["edit"]["documentChanges"][0]["textDocument"]["version"] == 2);
  CHECK(fix["isPreferred"] == true);
  // Edit the loop away: the suggestion no longer applies and is withdrawn.
  f.client->notify("textDocument/didChange",
                   {{"textDocument", {{"uri", f.uri}, {"version", 3}}},
                    {"contentChanges", {{{"range", {{"start", f.position(4, 0)}, {"end", f.position(7, 0)}}}, {"text", ""}}}}});
  const json withdrawn = f.client->wait([](const json& m) {
    return m.value("method", "") == "textDocument/publishDiagnostics" && m["params"]["diagnostics"].empty();
  });
  CHECK(withdrawn["params"]["version"] == 3);
}

TEST_CASE("lsp server: documents follow incremental UTF-16 changes, bad changes keep the text", "[lsp][server]") {
  Fixture f(true);
  // An emoji (two UTF-16 units) before `sum`'s call on the last line: positions after it shift.
  f.client->notify("textDocument/didChange",
                   {{"textDocument", {{"uri", f.uri}, {"version", 2}}},
                    {"contentChanges", {{{"range", {{"start", f.position(10, 0)}, {"end", f.position(10, 0)}}}, {"text", "/*😀*/"}}}}});
  json h = f.client->call("textDocument/hover", {{"textDocument", {{"uri", f.uri}}}, {"position", f.position(10, 57)}});
  REQUIRE(h["result"].is_object());
  CHECK(h["result"]["range"]["start"] == f.position(10, 56));
  // A stale version, a position past the end, a document that is not open: logged, no crash.
  f.client->notify("textDocument/didChange", {{"textDocument", {{"uri", f.uri}, {"version", 1}}},
                                              {"contentChanges", {{{"text", "lost"}}}}});
  f.client->notify("textDocument/didChange",
                   {{"textDocument", {{"uri", f.uri}, {"version", 3}}},
                    {"contentChanges", {{{"range", {{"start", f.position(99, 99)}, {"end", f.position(120, 0)}}}, {"text", "\n// end\n"}}}}});
  f.client->notify("textDocument/didChange", {{"textDocument", {{"uri", f.uri + "x"}, {"version", 3}}},
                                              {"contentChanges", {{{"text", "x"}}}}});
  CHECK(f.client->received("window/logMessage").size() >= 2);
  // The text is intact (the stale full replacement was refused) and the tail edit landed.
  const json actions = f.code_actions(4, 10);
  CHECK(Fixture::find_action(actions, "Ponder: improve `sum`")["data"]["version"] == 3);
}

TEST_CASE("lsp server: no model gives a clear error, the model unloads when idle and loads again", "[lsp][server]") {
  {
    EngineLoader none = [](const ModelSettings&, const LoadProgress&, std::string* error) -> std::unique_ptr<Engine> {
      *error = "no DeepSeek-R1 distill found";
      return nullptr;
    };
    Fixture f(true, json::object(), true, none);
    const json r = f.client->call("codeAction/resolve", Fixture::find_action(f.code_actions(4, 10), "Ponder: improve"));
    CHECK(r["error"]["code"] == error_code::request_failed);
    CHECK(r["error"]["message"].get<std::string>().find("no DeepSeek-R1 distill found") != std::string::npos);
    CHECK(!f.client->received("window/showMessage").empty());
  }
  std::atomic<int> loads{0};
  Fixture f(true, {{"idleUnloadSeconds", 1}}, true, tiny_loader(&loads));
  const json action = Fixture::find_action(f.code_actions(4, 10), "Ponder: improve `sum`");
  CHECK(f.client->call("codeAction/resolve", action).contains("result"));
  f.client->wait([](const json& m) { return m.value("method", "") == "ponder/status" && m["params"]["state"] == "unloaded"; }, 10);
  const int before = loads.load();
  CHECK(f.client->call("codeAction/resolve", action).contains("result"));
  CHECK(loads.load() == before + 1);
}

TEST_CASE("lsp server: what the user asks for pre-empts background work, which runs again after", "[lsp][server]") {
  std::string thinking;  // a long forced reasoning, so the background explanation is still running
  for (int i = 0; i < 300; ++i) thinking += "step " + std::to_string(i) + " ";
  Fixture f(true, {{"context", 4096}, {"maxTokens", 3000}, {"reasoningBudget", -1}}, true, tiny_loader(),
            thinking + "\n</think>\n\nIt adds the first n + 1 elements.\n");
  const json hover_params = {{"textDocument", {{"uri", f.uri}}}, {"position", f.position(10, 51)}};
  json h = f.client->call("textDocument/hover", hover_params);
  CHECK(h["result"]["contents"]["value"].get<std::string>().find("writing an explanation") != std::string::npos);
  // The explanation is being generated in the background; the user's request goes first.
  f.client->wait([](const json& m) {
    return m.value("method", "") == "ponder/status" && m["params"]["state"] == "thinking" && m["params"]["background"] == true;
  });
  const json action = Fixture::find_action(f.code_actions(4, 10), "Ponder: improve `sum`");
  const json r = f.client->call("codeAction/resolve", action);
  CHECK(r["error"]["message"].get<std::string>().rfind("ponder: no valid edit", 0) == 0);  // this answer has no edit
  h = f.client->call("textDocument/hover", hover_params);
  CHECK(h["result"]["contents"]["value"].get<std::string>().find("writing an explanation") != std::string::npos);
  // The pre-empted explanation ran again afterwards.
  f.client->server().wait_idle();
  h = f.client->call("textDocument/hover", hover_params);
  CHECK(h["result"]["contents"]["value"].get<std::string>().find("It adds the first n + 1 elements.") != std::string::npos);
}

TEST_CASE("lsp server: the server exits when the editor's process is gone", "[lsp][server]") {
  const pid_t editor = ::fork();
  REQUIRE(editor >= 0);
  if (editor == 0) {
    ::pause();
    ::_exit(0);
  }
  ServerOptions o;
  o.loader = tiny_loader();
  Client c(o);
  test::TempDir dir;
  c.call("initialize", {{"processId", editor}, {"rootUri", path_to_uri(dir.str())}, {"capabilities", json::object()}});
  c.notify("initialized", json::object());
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  CHECK(!c.exit_called());
  ::kill(editor, SIGKILL);
  ::waitpid(editor, nullptr, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!c.exit_called() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(c.exit_called());
}

TEST_CASE("lsp server: progress waits for the client to accept its token, and a refused token stays silent",
          "[lsp][server]") {
  Fixture f(true);
  f.client->refuse_progress = true;
  const json actions = f.code_actions(4, 10);
  CHECK(f.client->call("codeAction/resolve", Fixture::find_action(actions, "Ponder: improve `sum`")).contains("result"));
  f.client->refuse_progress = false;
  CHECK(f.client->call("codeAction/resolve", Fixture::find_action(actions, "Ponder: explain `sum`")).contains("result"));
  REQUIRE(!f.client->refused.empty());
  std::set<std::string> used;
  for (const json& p : f.client->received("$/progress")) used.insert(p["params"]["token"].get<std::string>());
  REQUIRE(!used.empty());  // the explain's token, accepted
  for (const std::string& t : used) {
    CHECK(f.client->refused.count(t) == 0);  // nothing on a refused token
    std::vector<std::string> kinds;  // begin first, end last
    for (const json& p : f.client->received("$/progress"))
      if (p["params"]["token"] == t) kinds.push_back(p["params"]["value"]["kind"]);
    CHECK(kinds.front() == "begin");
    CHECK(kinds.back() == "end");
  }
}
