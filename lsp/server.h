#pragma once
// The language server: JSON-RPC messages in, JSON-RPC messages out. Transport-agnostic — the
// stdio transport (transport.h) and the tests' in-process client both feed handle() and take
// what `send` gets.
//
// Threads: handle() is called from one thread, in message order; it answers document changes,
// code-action listings, cached hovers and cancellations at once. Model work runs on two job
// threads — one for what the user asked for, one for background work (explanations for hover,
// suggestions on save), which user requests pre-empt. `send` is called from any of them (one
// message at a time).
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "lsp/engine_host.h"

namespace ponder::lsp {

struct ServerOptions {
  EngineLoader loader;            // loads the model (the CLI: find, map, check memory)
  std::string model_override;     // --model: wins over every setting
  std::string cache_dir;          // the tag cache's folder ("" = none)
  unsigned index_threads = 0;     // 0 = every core
  /// For tests: every generation is forced to this output (reasoning, `</think>`, answer), so
  /// the whole path runs through the real engine with a known answer. "" = sample.
  std::string forced_answer;
  /// Where `ponder.showReasoning` writes its markdown documents ("" = the system's temp folder).
  std::string reasoning_dir;
  /// Called once when the server is done: after `exit`, or when the editor process is gone.
  std::function<void()> on_exit;
};

class Server {
 public:
  using Send = std::function<void(const std::string& body)>;
  Server(ServerOptions options, Send send);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// One message body (JSON). Never throws; bad input gets an error reply or a log line.
  void handle(std::string_view body);
  /// A framing problem the transport found (no Content-Length, a body over the limit...).
  void transport_error(std::string_view message);
  /// After `exit`: 0 when `shutdown` came first, else 1.
  bool exited() const;
  int exit_code() const;
  /// Waits until no job is queued or running and the index is built (tests, benchmarks).
  void wait_idle();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ponder::lsp
