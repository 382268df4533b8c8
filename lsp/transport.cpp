#include "lsp/transport.h"

#include <unistd.h>

#include <asio.hpp>
#include <cerrno>

#include "lsp/framing.h"

namespace ponder::lsp {

struct StdioTransport::Impl {
  asio::io_context io;
  int in_fd;
  FrameReader reader;
  std::atomic<bool> stopped{false};
  Impl(int fd, std::size_t max_body) : in_fd(fd), reader(max_body) {}
};

StdioTransport::StdioTransport(int in_fd, int out_fd, std::size_t max_body)
    : impl_(std::make_unique<Impl>(in_fd, max_body)), out_fd_(out_fd) {}

StdioTransport::~StdioTransport() = default;

bool StdioTransport::run(const std::function<void(std::string_view)>& on_message,
                         const std::function<void(std::string_view)>& on_error) {
  Impl& m = *impl_;
  auto drain = [&] {
    std::string body, error;
    while (!m.stopped) {
      const FrameReader::Status st = m.reader.next(&body, &error);
      if (st == FrameReader::Status::need_more) break;
      if (st == FrameReader::Status::message) on_message(body);
      else on_error(error);
    }
  };
  char buffer[65536];
  asio::posix::stream_descriptor in(m.io);
  asio::error_code ec;
  in.assign(::dup(m.in_fd), ec);
  if (ec) {
    // Not pollable (a regular file): plain blocking reads, which never wait on a file.
    while (!m.stopped) {
      const ssize_t n = ::read(m.in_fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return !m.stopped;
      m.reader.feed(std::string_view(buffer, static_cast<std::size_t>(n)));
      drain();
    }
    return false;
  }
  bool at_end = false;
  std::function<void()> read_more = [&] {
    in.async_read_some(asio::buffer(buffer), [&](const asio::error_code& err, std::size_t n) {
      if (n > 0) {
        m.reader.feed(std::string_view(buffer, n));
        drain();
      }
      if (m.stopped) return;
      if (err) {
        at_end = true;  // end of input or a broken pipe: the editor is gone
        return;
      }
      read_more();
    });
  };
  read_more();
  m.io.run();
  return at_end && !m.stopped;
}

void StdioTransport::stop() {
  impl_->stopped = true;
  impl_->io.stop();
}

void StdioTransport::write(const std::string& body) {
  const std::string framed = frame(body);
  std::lock_guard lock(write_mu_);
  std::size_t at = 0;
  while (at < framed.size()) {
    const ssize_t n = ::write(out_fd_, framed.data() + at, framed.size() - at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    at += static_cast<std::size_t>(n);
  }
}

}  // namespace ponder::lsp
