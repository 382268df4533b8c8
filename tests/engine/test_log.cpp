#include <catch2/catch.hpp>
#include <cstdio>
#include <string>

#include "engine/log.h"

using namespace ponder;

TEST_CASE("log levels parse and filter", "[log]") {
  log::Level l;
  REQUIRE(log::parse_level("debug", &l));
  CHECK(l == log::Level::debug);
  REQUIRE(log::parse_level("off", &l));
  CHECK(l == log::Level::off);
  CHECK_FALSE(log::parse_level("verbose", &l));

  std::FILE* sink = std::tmpfile();
  REQUIRE(sink);
  log::set_sink(sink);
  log::set_level(log::Level::warn);
  log::info("hidden ", 1);
  log::warn("shown ", 2, " and ", 3.5);
  log::error("also shown");
  log::set_sink(nullptr);
  log::set_level(log::Level::warn);

  std::rewind(sink);
  std::string text;
  char buf[256];
  while (std::fgets(buf, sizeof buf, sink)) text += buf;
  std::fclose(sink);
  CHECK(text.find("hidden") == std::string::npos);
  CHECK(text.find("ponder[warn] shown 2 and 3.5\n") != std::string::npos);
  CHECK(text.find("ponder[error] also shown\n") != std::string::npos);
}
