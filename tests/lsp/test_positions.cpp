// LSP positions: UTF-16 and UTF-8 columns, clamping, and the JSON-RPC message reader.
#include <catch2/catch.hpp>

#include "lsp/json_rpc.h"
#include "lsp/positions.h"
#include "lsp/protocol.h"

using namespace ponder::lsp;

TEST_CASE("positions: UTF-16 columns count surrogate pairs as two, UTF-8 columns count bytes", "[lsp][positions]") {
  const std::string text = "a😀b\r\nxé\n";  // 😀 is 4 bytes, 2 UTF-16 units; é 2 bytes, 1 unit
  CHECK(offset_at(text, {0, 0}, Encoding::utf16) == 0);
  CHECK(offset_at(text, {0, 1}, Encoding::utf16) == 1);
  CHECK(offset_at(text, {0, 3}, Encoding::utf16) == 5);  // after the emoji
  CHECK(offset_at(text, {0, 2}, Encoding::utf16) == 1);  // inside the pair: its start
  CHECK(offset_at(text, {0, 4}, Encoding::utf16) == 6);  // end of line, before \r\n
  CHECK(offset_at(text, {0, 99}, Encoding::utf16) == 6);  // past the end of the line: its end
  CHECK(offset_at(text, {1, 2}, Encoding::utf16) == 11);
  CHECK(offset_at(text, {1, 2}, Encoding::utf8) == 9);    // inside é: its start
  CHECK(offset_at(text, {1, 3}, Encoding::utf8) == 11);
  CHECK(offset_at(text, {7, 0}, Encoding::utf16) == text.size());  // past the last line: the end
  CHECK(position_at(text, 5, Encoding::utf16) == Position{0, 3});
  CHECK(position_at(text, 5, Encoding::utf8) == Position{0, 5});
  CHECK(position_at(text, 11, Encoding::utf16) == Position{1, 2});
  CHECK(position_at(text, 1000, Encoding::utf16) == Position{2, 0});
  for (std::uint32_t off = 0; off <= text.size(); ++off) {
    for (Encoding e : {Encoding::utf16, Encoding::utf8}) {
      const std::uint32_t back = offset_at(text, position_at(text, off, e), e);
      CHECK(back <= off);  // a round trip lands on the character's start
    }
  }
  // Invalid UTF-8 bytes count one unit each.
  const std::string bad = "\xff\xfe" "x";
  CHECK(offset_at(bad, {0, 2}, Encoding::utf16) == 2);
  CHECK(position_at(bad, 3, Encoding::utf16) == Position{0, 3});
}

TEST_CASE("json-rpc: requests, notifications, responses and what is not a message", "[lsp][jsonrpc]") {
  Message m;
  int code = 0;
  std::string error;
  json id;
  REQUIRE(parse_message(R"({"jsonrpc":"2.0","id":3,"method":"shutdown"})", &m, &code, &error, &id));
  CHECK(m.kind == Message::Kind::request);
  CHECK(m.id == 3);
  REQUIRE(parse_message(R"({"jsonrpc":"2.0","method":"exit"})", &m, &code, &error, &id));
  CHECK(m.kind == Message::Kind::notification);
  REQUIRE(parse_message(R"({"jsonrpc":"2.0","id":"ponder-1","result":{"applied":true}})", &m, &code, &error, &id));
  CHECK(m.kind == Message::Kind::response);
  CHECK(m.result["applied"] == true);
  CHECK(!parse_message("{", &m, &code, &error, &id));
  CHECK(code == error_code::parse_error);
  CHECK(!parse_message(R"({"jsonrpc":"2.0","id":4,"method":7})", &m, &code, &error, &id));
  CHECK(code == error_code::invalid_request);
  CHECK(id == 4);
  CHECK(!parse_message(R"({"id":5,"method":"x"})", &m, &code, &error, &id));
  CHECK(!parse_message(R"([1,2])", &m, &code, &error, &id));
  CHECK(!parse_message(R"({"jsonrpc":"2.0","id":{"a":1},"method":"x"})", &m, &code, &error, &id));
  CHECK(!parse_message(R"({"jsonrpc":"2.0","id":1,"method":"x","params":3})", &m, &code, &error, &id));
  // Replies never throw on invalid UTF-8 in a message.
  CHECK(make_error(1, -1, "bad \xff byte").find("bad ") != std::string::npos);
}

TEST_CASE("uris: file URIs and paths, percent-encoding both ways", "[lsp][protocol]") {
  CHECK(uri_to_path("file:///home/u/a%20b/c%23.cpp") == "/home/u/a b/c#.cpp");
  CHECK(uri_to_path("file://localhost/tmp/x") == "/tmp/x");
  CHECK(uri_to_path("untitled:Untitled-1").empty());
  CHECK(path_to_uri("/home/u/a b/c#.cpp") == "file:///home/u/a%20b/c%23.cpp");
  CHECK(uri_to_path(path_to_uri("/tmp/ü é/x.py")) == "/tmp/ü é/x.py");
}
