// The ponder executable, run as a user would.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "support/temp_dir.h"

using ponder::test::TempDir;

namespace {

struct Run {
  int status;
  std::string out;
};

// Runs `ponder ARGS` capturing stdout (stderr goes to a file whose text is appended if asked).
Run run_ponder(const std::string& args, bool with_stderr = false) {
  std::string cmd = std::string(PONDER_BINARY) + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
  Run r{-1, {}};
  std::FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

void workspace(const TempDir& dir) {
  dir.write("src/shapes.cpp",
            "namespace geo {\n"
            "class Circle {\n"
            " public:\n"
            "  double area() const;\n"
            "};\n"
            "double Circle::area() const { return 3.14; }\n"
            "}\n");
  dir.write("src/main.cpp", "int main() { geo::Circle c; return (int)c.area(); }\n");
}

}  // namespace

TEST_CASE("ponder --help and --version", "[cli]") {
  Run help = run_ponder("--help");
  CHECK(help.status == 0);
  CHECK(help.out.find("Usage: ponder") != std::string::npos);
  CHECK(help.out.find("index DIR") != std::string::npos);
  Run version = run_ponder("--version");
  CHECK(version.status == 0);
  CHECK(version.out.rfind("ponder 0.", 0) == 0);
  CHECK(version.out.find("backends: cpu") != std::string::npos);
  Run index_help = run_ponder("index --help");
  CHECK(index_help.status == 0);
  CHECK(index_help.out.find("--symbols") != std::string::npos);
}

TEST_CASE("ponder index prints symbols and the map", "[cli]") {
  TempDir dir, cache;
  workspace(dir);
  std::string common = " --cache-dir " + cache.str();
  Run symbols = run_ponder("index " + dir.str() + " --symbols" + common);
  REQUIRE(symbols.status == 0);
  CHECK(symbols.out.find("src/shapes.cpp:1\tmodule\tgeo\n") != std::string::npos);
  CHECK(symbols.out.find("src/shapes.cpp:2\tclass\tgeo::Circle\n") != std::string::npos);
  CHECK(symbols.out.find("src/shapes.cpp:4\tmethod\tgeo::Circle::area\n") != std::string::npos);
  CHECK(symbols.out.find("src/shapes.cpp:6\tmethod\tgeo::Circle::area\n") != std::string::npos);
  CHECK(symbols.out.find("src/main.cpp:1\tcall\tmain::area\n") != std::string::npos);

  Run map = run_ponder("index " + dir.str() + " --map 200" + common);
  REQUIRE(map.status == 0);
  CHECK(map.out.find("src/shapes.cpp:\n") != std::string::npos);
  CHECK(map.out.find("2│   class Circle {\n") != std::string::npos);  // indented: inside geo

  Run json = run_ponder("index " + dir.str() + " --symbols --format json" + common);
  REQUIRE(json.status == 0);
  auto doc = nlohmann::json::parse(json.out);
  CHECK(doc["stats"]["files"] == 2);
  CHECK(doc["stats"]["from_cache"] == 2);  // the runs above filled the cache
  bool found = false;
  for (const auto& s : doc["symbols"])
    if (s["name"] == "Circle" && s["kind"] == "class" && s["line"] == 2) found = true;
  CHECK(found);

  Run map_json = run_ponder("index " + dir.str() + " --format json --focus src/main.cpp" + common);
  REQUIRE(map_json.status == 0);
  auto m = nlohmann::json::parse(map_json.out);
  CHECK(m["map"].get<std::string>().find("Circle") != std::string::npos);
  CHECK(m["tokens"].get<int>() <= 1024);
}

TEST_CASE("ponder reports bad usage and bad folders", "[cli]") {
  Run missing = run_ponder("index /no/such/dir --no-cache", true);
  CHECK(missing.status == 1);
  CHECK(missing.out.find("/no/such/dir") != std::string::npos);
  CHECK(run_ponder("index").status == 2);
  CHECK(run_ponder("index . --format yaml").status == 2);
  CHECK(run_ponder("index . --bogus").status == 2);
  CHECK(run_ponder("frobnicate").status == 2);
  CHECK(run_ponder("--log-level loud index .").status == 2);
}
