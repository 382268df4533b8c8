#pragma once
// LSP base protocol framing: messages are `Content-Length: N\r\n` (other headers allowed),
// a blank line, then N bytes of JSON. This layer knows nothing of JSON.
//
// FrameReader is fed bytes as they arrive (any chunking) and yields whole message bodies.
// Malformed headers are reported once, and the reader resynchronises at the next Content-Length
// header: what followed the bad header block (its body, the rest of a garbled stream) is dropped
// up to there, so a bad client message neither takes the server down nor swallows the messages
// after it.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ponder::lsp {

class FrameReader {
 public:
  /// Largest body accepted; a larger Content-Length is an error (and the body is skipped).
  explicit FrameReader(std::size_t max_body = 64u << 20) : max_body_(max_body) {}

  /// Appends received bytes.
  void feed(std::string_view bytes) { buffer_.append(bytes); }

  enum class Status { message, need_more, error };
  /// Extracts the next message into `body`. On Status::error, `error` says what was wrong
  /// with the header block, which has been dropped; call again to continue.
  Status next(std::string* body, std::string* error);

 private:
  std::string buffer_;
  std::size_t max_body_;
  std::size_t skip_ = 0;  // bytes of an oversized body still to discard
  bool resync_ = false;   // after a bad header block: drop bytes up to the next Content-Length
};

/// Frames `body` for sending.
std::string frame(std::string_view body);

}  // namespace ponder::lsp
