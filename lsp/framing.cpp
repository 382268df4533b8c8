#include "lsp/framing.h"

#include <charconv>

namespace ponder::lsp {
namespace {
bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

constexpr std::string_view kLengthHeader = "content-length";

// Where the next Content-Length header name starts in `s` (any case), or npos.
std::size_t find_length_header(std::string_view s) {
  for (std::size_t at = 0; at + kLengthHeader.size() <= s.size(); ++at)
    if (iequals(s.substr(at, kLengthHeader.size()), kLengthHeader)) return at;
  return std::string_view::npos;
}
}  // namespace

FrameReader::Status FrameReader::next(std::string* body, std::string* error) {
  if (skip_ > 0) {
    std::size_t n = std::min(skip_, buffer_.size());
    buffer_.erase(0, n);
    skip_ -= n;
    if (skip_ > 0) return Status::need_more;
  }
  if (resync_) {
    const std::size_t at = find_length_header(buffer_);
    if (at == std::string::npos) {  // keep what may be the start of the header name
      buffer_.erase(0, buffer_.size() - std::min(buffer_.size(), kLengthHeader.size() - 1));
      return Status::need_more;
    }
    buffer_.erase(0, at);
    resync_ = false;
  }
  std::size_t end = buffer_.find("\r\n\r\n");
  if (end == std::string::npos) {
    if (buffer_.size() > 64 * 1024) {  // no header block is this long
      buffer_.clear();
      resync_ = true;
      if (error) *error = "header block longer than 64 KiB without a blank line";
      return Status::error;
    }
    return Status::need_more;
  }
  std::string_view headers(buffer_.data(), end);
  std::optional<std::size_t> length;
  std::string problem;
  while (!headers.empty()) {
    std::size_t eol = headers.find("\r\n");
    std::string_view line = headers.substr(0, eol);
    headers.remove_prefix(eol == std::string_view::npos ? headers.size() : eol + 2);
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      problem = "malformed header line: " + std::string(line.substr(0, 80));
      continue;
    }
    std::string_view name = line.substr(0, colon), value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
    if (iequals(name, "Content-Length")) {
      std::size_t n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || p != value.data() + value.size())
        problem = "invalid Content-Length: " + std::string(value.substr(0, 40));
      else
        length = n;
    }
  }
  if (!length) {
    buffer_.erase(0, end + 4);
    resync_ = true;  // its body, if it had one, is not a header block
    if (error) *error = problem.empty() ? "message without Content-Length" : problem;
    return Status::error;
  }
  if (*length > max_body_) {
    buffer_.erase(0, end + 4);
    skip_ = *length;
    if (error)
      *error = "message of " + std::to_string(*length) + " bytes exceeds the limit of " +
               std::to_string(max_body_);
    return Status::error;
  }
  if (buffer_.size() < end + 4 + *length) return Status::need_more;
  body->assign(buffer_, end + 4, *length);
  buffer_.erase(0, end + 4 + *length);
  return Status::message;
}

std::string frame(std::string_view body) {
  std::string out = "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  out.append(body);
  return out;
}

}  // namespace ponder::lsp
