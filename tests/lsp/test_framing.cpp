#include <catch2/catch.hpp>
#include <string>

#include "lsp/framing.h"

using ponder::lsp::frame;
using ponder::lsp::FrameReader;
using Status = FrameReader::Status;

TEST_CASE("framing round-trips messages fed byte by byte", "[lsp][framing]") {
  std::string wire = frame(R"({"a":1})") + frame("") + frame(R"({"text":"héllo ✓"})");
  FrameReader reader;
  std::vector<std::string> got;
  std::string body, error;
  for (char c : wire) {
    reader.feed(std::string_view(&c, 1));
    while (reader.next(&body, &error) == Status::message) got.push_back(body);
  }
  REQUIRE(got.size() == 3);
  CHECK(got[0] == R"({"a":1})");
  CHECK(got[1].empty());
  CHECK(got[2] == R"({"text":"héllo ✓"})");
}

TEST_CASE("framing accepts other headers and any case", "[lsp][framing]") {
  FrameReader reader;
  reader.feed("content-length: 2\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{}");
  std::string body, error;
  REQUIRE(reader.next(&body, &error) == Status::message);
  CHECK(body == "{}");
  CHECK(reader.next(&body, &error) == Status::need_more);
}

TEST_CASE("framing reports bad headers and recovers", "[lsp][framing]") {
  FrameReader reader(100);
  std::string body, error;
  reader.feed("Content-Length: abc\r\n\r\n");
  CHECK(reader.next(&body, &error) == Status::error);
  CHECK(error.find("invalid Content-Length") != std::string::npos);
  reader.feed("X: 1\r\n\r\n");
  CHECK(reader.next(&body, &error) == Status::error);
  CHECK(error.find("without Content-Length") != std::string::npos);
  reader.feed("Content-Length: 500\r\n\r\n" + std::string(500, 'x'));
  CHECK(reader.next(&body, &error) == Status::error);
  CHECK(error.find("exceeds") != std::string::npos);
  reader.feed(frame("[1]"));
  REQUIRE(reader.next(&body, &error) == Status::message);
  CHECK(body == "[1]");
}
