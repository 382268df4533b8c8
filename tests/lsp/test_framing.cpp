#include <catch2/catch.hpp>
#include <string>
#include <vector>

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
  reader.feed(frame("[0]"));  // read from its Content-Length on
  REQUIRE(reader.next(&body, &error) == Status::message);
  CHECK(body == "[0]");
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

TEST_CASE("framing drops the body of a bad header block and finds the next message", "[lsp][framing]") {
  // A bad Content-Length with its body, then good messages: the body is not read as the next
  // header block (which would glue it to the next header and lose every message after it).
  // Then garbage after a header block without Content-Length, and 70 KiB without a blank line.
  const std::vector<std::string> parts = {
      "Content-Length: x7\r\n\r\n" + std::string(R"({"a":1})") + frame("[1]") + "X: 1\r\n\r\ngarbage" + frame("[2]") +
          std::string(70 * 1024, 'y'),
      frame("[3]")};
  for (const bool bytewise : {false, true}) {
    FrameReader reader;
    std::vector<std::string> got, errors;
    std::string body, error;
    auto drain = [&] {
      while (true) {
        const Status st = reader.next(&body, &error);
        if (st == Status::need_more) break;
        if (st == Status::message) got.push_back(body);
        else errors.push_back(error);
      }
    };
    for (const std::string& part : parts) {
      if (!bytewise) {
        reader.feed(part);
        drain();
        continue;
      }
      for (char c : part) {
        reader.feed(std::string_view(&c, 1));
        drain();
      }
    }
    INFO("byte by byte: " << bytewise);
    CHECK(got == std::vector<std::string>{"[1]", "[2]", "[3]"});
    REQUIRE(errors.size() == 3);
    CHECK(errors[0] == "invalid Content-Length: x7");
    CHECK(errors[1] == "message without Content-Length");
    CHECK(errors[2].find("longer than 64 KiB") != std::string::npos);
  }
}
