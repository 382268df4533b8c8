#pragma once
// The stdio transport: reads framed messages from a file descriptor with Asio and writes framed
// replies to another. stdout belongs to the protocol; nothing else may write there.
#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace ponder::lsp {

class StdioTransport {
 public:
  StdioTransport(int in_fd, int out_fd, std::size_t max_body = 64u << 20);
  ~StdioTransport();

  /// Reads until end of input or stop(): each whole message body goes to `on_message`, each
  /// framing problem to `on_error` (reading goes on after it). Returns true at end of input,
  /// false after stop().
  bool run(const std::function<void(std::string_view body)>& on_message,
           const std::function<void(std::string_view problem)>& on_error);
  /// Makes run() return (from any thread, or from a callback).
  void stop();
  /// Frames and writes one message (from any thread; messages never interleave). A closed
  /// output is ignored (the editor is gone; run() will see its input end).
  void write(const std::string& body);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int out_fd_;
  std::mutex write_mu_;
};

}  // namespace ponder::lsp
