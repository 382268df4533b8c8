// The ponder executable, run as a user would.
#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/run_ponder.h"
#include "support/temp_dir.h"
#include "support/test_model.h"

using ponder::test::Run;
using ponder::test::run_ponder;
using ponder::test::TempDir;

namespace {

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

TEST_CASE("ponder tokenize: ids, pieces, count, decode, from a file or stdin", "[cli][tokenize]") {
  const std::string vocab = std::string(PONDER_SHARED_DIR) + "/testdata/r1_qwen_vocab.gguf";
  TempDir dir;
  const std::string file = dir.write("in.txt", "Hello world\n<think>日本</think>").string();
  Run ids = run_ponder("tokenize --model " + vocab + " " + file);
  CHECK(ids.status == 0);
  CHECK(ids.out == "9707\n1879\n198\n151648\n101059\n151649\n");
  Run pieces = run_ponder("tokenize --model " + vocab + " --pieces " + file);
  CHECK(pieces.out == "9707\tHello\n1879\t world\n198\t\\n\n151648\t<think>\n101059\t日本\n151649\t</think>\n");
  Run count = run_ponder("tokenize --model " + vocab + " --count --format json < " + file);
  CHECK(nlohmann::json::parse(count.out)["count"] == 6);
  Run plain = run_ponder("tokenize --model " + vocab + " --no-special --count " + file);
  CHECK(std::stoi(plain.out) > 6);  // <think> spelled out in pieces
  Run json = run_ponder("tokenize --model " + vocab + " --format json --pieces " + file);
  auto j = nlohmann::json::parse(json.out);
  CHECK(j["pieces"][4]["piece"] == "日本");
  // Back from ids to text, with the ids in any of the usual shapes.
  const std::string ids_file = dir.write("ids.txt", "[9707, 1879,198\n151648 101059 151649]").string();
  Run text = run_ponder("tokenize --model " + vocab + " --decode " + ids_file);
  CHECK(text.status == 0);
  CHECK(text.out == "Hello world\n<think>日本</think>");
  // $PONDER_MODEL names the model when --model does not.
  Run via_env = run_ponder("tokenize --count in.txt", false, "cd " + dir.str() + " && PONDER_MODEL=" + vocab + " ");
  CHECK(via_env.status == 0);
  CHECK(via_env.out == "6\n");
}

TEST_CASE("ponder tokenize: bad models and bad ids are clear errors", "[cli][tokenize]") {
  const std::string vocab = std::string(PONDER_SHARED_DIR) + "/testdata/r1_qwen_vocab.gguf";
  TempDir dir;
  Run missing = run_ponder("tokenize --model " + dir.str() + "/none.gguf /dev/null", true);
  CHECK(missing.status == 1);
  CHECK(missing.out.find("none.gguf: no such file or folder") != std::string::npos);
  const std::string junk = dir.write("junk.gguf", "GGUF\x03\0\0\0garbage").string();
  Run bad = run_ponder("tokenize --model " + junk + " /dev/null", true);
  CHECK(bad.status == 1);
  CHECK(bad.out.find("junk.gguf: ") != std::string::npos);
  const std::string ids = dir.write("ids.txt", "12 abc").string();
  Run not_ids = run_ponder("tokenize --model " + vocab + " --decode " + ids, true);
  CHECK(not_ids.status == 1);
  CHECK(not_ids.out.find("not a token id: 'abc'") != std::string::npos);
  const std::string big = dir.write("big.txt", "999999999").string();
  Run outside = run_ponder("tokenize --model " + vocab + " --decode " + big, true);
  CHECK(outside.status == 1);
  CHECK(outside.out.find("outside the vocabulary") != std::string::npos);
  CHECK(run_ponder("tokenize --model " + vocab + " --format yaml /dev/null").status == 2);
  CHECK(run_ponder("tokenize --bogus").status == 2);
  Run help = run_ponder("tokenize --help");
  CHECK(help.status == 0);
  CHECK(help.out.find("--decode") != std::string::npos);
}

TEST_CASE("ponder models lists the R1 distills in Ollama's store and the Hugging Face cache", "[cli][models]") {
  TempDir dir;
  std::string error;
  ponder::test::TestModelSpec spec;
  const std::string digest(64, 'e');
  REQUIRE(ponder::test::write_gguf(spec, ponder::GgmlType::q8_0,
                                   dir.write("ollama/blobs/sha256-" + digest, "").string(), &error));
  const std::string manifest =
      R"({"schemaVersion":2,"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:)" + digest +
      R"("}]})";
  dir.write("ollama/manifests/registry.ollama.ai/library/deepseek-r1/1.5b", manifest);
  spec.arch = ponder::Arch::qwen3;
  REQUIRE(ponder::test::write_snapshot(
      spec, (dir.path() / "hf/models--deepseek-ai--DeepSeek-R1-0528-Qwen3-8B/snapshots/r1").string(), 1, &error));
  const std::string env = "HOME=" + dir.str() + "/home OLLAMA_MODELS=" + dir.str() + "/ollama HF_HUB_CACHE=" +
                          dir.str() + "/hf XDG_CACHE_HOME= HF_HOME= ";
  auto run_env = [&](const std::string& args) { return run_ponder(args, true, env); };
  Run text = run_env("models");
  INFO(text.out);
  CHECK(text.status == 0);
  CHECK(text.out.find("ollama:deepseek-r1:1.5b") != std::string::npos);
  CHECK(text.out.find("Q8_0") != std::string::npos);
  CHECK(text.out.find("hf:deepseek-ai/DeepSeek-R1-0528-Qwen3-8B") != std::string::npos);
  CHECK(text.out.find("qwen3") != std::string::npos);
  CHECK(text.out.find("* the default") != std::string::npos);
  Run json = run_env("models --format json");
  auto j = nlohmann::json::parse(json.out);
  REQUIRE(j["models"].size() == 2);
  int defaults = 0;
  for (const auto& m : j["models"]) {
    CHECK(m["bytes"].get<std::uint64_t>() > 0);
    CHECK(m["max_context"].get<std::uint32_t>() > 0);
    defaults += m["default"].get<bool>();
  }
  CHECK(defaults == 1);
  // ollama: specs work wherever a model is named.
  Run count = run_env("tokenize --model ollama:deepseek-r1:1.5b --count /dev/null");
  CHECK(count.status == 0);
  CHECK(count.out == "0\n");
  // An empty machine: a message that says what to do.
  Run empty = run_ponder("models", true, "HOME=" + dir.str() + "/nothing OLLAMA_MODELS= HF_HUB_CACHE= HF_HOME= XDG_CACHE_HOME= ");
  CHECK(empty.out.find("No DeepSeek-R1 distills found") != std::string::npos);
  CHECK(empty.out.find("ollama pull") != std::string::npos);
}

TEST_CASE("ponder generate runs a model end to end", "[cli][generate]") {
  TempDir dir;
  std::string error;
  const std::string path = (dir.path() / "m.gguf").string();
  REQUIRE(ponder::test::write_gguf(ponder::test::TestModelSpec{}, ponder::GgmlType::q8_0, path, &error));
  // Greedy ids: exactly -n of them, the same twice.
  Run a = run_ponder("generate --model " + path + " --prompt 'def main():' -n 12 --temp 0 --ids");
  CHECK(a.status == 0);
  CHECK(std::count(a.out.begin(), a.out.end(), '\n') == 12);
  Run b = run_ponder("generate --model " + path + " --prompt 'def main():' -n 12 --temp 0 --ids");
  CHECK(a.out == b.out);
  // A Q8_0 KV cache runs too; an unknown cache type is bad usage.
  Run q8 = run_ponder("generate --model " + path + " --prompt 'def main():' -n 12 --temp 0 --ids --kv q8_0");
  CHECK(q8.status == 0);
  CHECK(std::count(q8.out.begin(), q8.out.end(), '\n') == 12);
  CHECK(run_ponder("generate --model " + path + " --prompt x --kv q4_0").status == 2);
  // Sampling with a seed is reproducible; the chat template and the statistics line work.
  Run c = run_ponder("generate --model " + path + " --chat 'Explain this.' -n 8 --seed 7 --stats --show-thinking", true);
  Run d = run_ponder("generate --model " + path + " --chat 'Explain this.' -n 8 --seed 7 --stats --show-thinking", true);
  CHECK(c.status == 0);
  const std::string stats = "[" + path + " · Q8_0 · cpu] prompt ";
  REQUIRE(c.out.find(stats) != std::string::npos);
  CHECK(c.out.substr(0, c.out.find(stats)) == d.out.substr(0, d.out.find(stats)));  // timings differ
  CHECK(c.out.find("generated 8 tokens") != std::string::npos);
  CHECK(c.out.find("seed 7") != std::string::npos);
  // A reasoning budget of 0: "\n</think>\n\n" is forced at once, so the reasoning is closed.
  Run budget = run_ponder("generate --model " + path + " --chat 'Explain this.' -n 6 --temp 0 --reasoning-budget 0 --stats", true);
  CHECK(budget.status == 0);
  CHECK(budget.out.find("(1 reasoning)") != std::string::npos);
  CHECK(budget.out.find("without </think>") == std::string::npos);
  // Bad usage and bad models.
  CHECK(run_ponder("generate --model " + path).status == 2);
  CHECK(run_ponder("generate --model " + path + " --prompt x --reasoning-budget -3").status == 2);
  CHECK(run_ponder("generate --model " + path + " --prompt x --top-p 7").status == 2);
  CHECK(run_ponder("generate --model " + path + " --prompt x -n 0").status == 2);
  Run missing = run_ponder("generate --model " + dir.str() + "/none.gguf --prompt x", true);
  CHECK(missing.status == 1);
  CHECK(missing.out.find("no such file") != std::string::npos);
  const std::string vocab = std::string(PONDER_SHARED_DIR) + "/testdata/r1_qwen_vocab.gguf";
  Run no_weights = run_ponder("generate --model " + vocab + " --prompt x", true);
  CHECK(no_weights.status == 1);
  CHECK(no_weights.out.find("has no tensors") != std::string::npos);
}

TEST_CASE("ponder bench reports prefill and decode speed against the bandwidth limit", "[cli][bench]") {
  TempDir dir;
  std::string error;
  const std::string path = (dir.path() / "m.gguf").string();
  REQUIRE(ponder::test::write_gguf(ponder::test::TestModelSpec{}, ponder::GgmlType::q4_k, path, &error));
  Run json = run_ponder("bench --model " + path + " -p 32 -n 4 -t 1 --format json");
  REQUIRE(json.status == 0);
  auto j = nlohmann::json::parse(json.out);
  CHECK(j["prompt_tokens"] == 32);
  CHECK(j["generated_tokens"] == 4);
  CHECK(j["threads"] == 1);
  for (const char* key : {"prefill_tokens_per_s", "decode_tokens_per_s", "bandwidth_gb_per_s", "decode_limit_tokens_per_s",
                          "decode_at_depth_tokens_per_s", "decode_at_depth_limit_tokens_per_s"})
    CHECK(j[key].get<double>() > 0);
  CHECK(j["peak_rss_bytes"].get<std::uint64_t>() > j["weight_bytes"].get<std::uint64_t>());
  // The CPU kernels that ran: the best this CPU has, or what PONDER_CPU_ISA caps them to.
  const std::string kernels = j["cpu_kernels"].get<std::string>();
  CHECK((kernels == "portable" || kernels == "avx2" || kernels == "avx512" || kernels == "amx"));
  Run capped = run_ponder("bench --model " + path + " -p 8 -n 2 -t 1 --format json", false, "PONDER_CPU_ISA=portable ");
  REQUIRE(capped.status == 0);
  CHECK(nlohmann::json::parse(capped.out)["cpu_kernels"] == "portable");
  Run unknown = run_ponder("bench --model " + path + " -p 8 -n 2 -t 1", true, "PONDER_CPU_ISA=sse9 ");
  CHECK(unknown.status == 0);
  CHECK(unknown.out.find("PONDER_CPU_ISA=sse9 is not one of portable, avx2, avx512, amx") != std::string::npos);
  CHECK(unknown.out.find("| cpu " + kernels + " |") != std::string::npos);
  Run text = run_ponder("bench --model " + path + " -p 16 -n 2 -t 1");
  CHECK(text.status == 0);
  CHECK(text.out.find("| pp16 |") != std::string::npos);
  CHECK(text.out.find("| tg2 |") != std::string::npos);
  CHECK(text.out.find("| tg2 @ d16 |") != std::string::npos);
  // Time to first token, cold and with a shared prefix: only the new tokens are prefilled.
  Run ttft = run_ponder("bench --model " + path + " -p 64 --shared 60 -t 1 --format json");
  REQUIRE(ttft.status == 0);
  auto t = nlohmann::json::parse(ttft.out);
  CHECK(t["warm_reused_tokens"] == 60);
  CHECK(t["warm_prefilled_tokens"] == 4);
  CHECK(t["ttft_cold_s"].get<double>() > 0);
  CHECK(t["ttft_warm_s"].get<double>() > 0);
  CHECK(t["warm_cache_s"].get<double>() >= 0);
  CHECK(t["warm_cache_s"].get<double>() <= t["ttft_warm_s"].get<double>());
  CHECK(run_ponder("bench --model " + path + " -p 64 --shared 64").status == 2);
  CHECK(run_ponder("bench --model " + path + " -p 16 -n 2 -t 1 --kv q8_0").status == 0);
  CHECK(run_ponder("bench --model " + path + " -p 16 -n 2 --kv q4_0").status == 2);
  CHECK(run_ponder("bench --model " + path + " -p 0").status == 2);
  CHECK(run_ponder("bench --model " + path + " -p 64 -n 64 --ctx 100").status == 2);
}

TEST_CASE("ponder bench reads the bandwidth beside its decode windows from the weights in place", "[cli][bench]") {
  // 365 MB of F16 weights (12 layers of 1024 x 4096): past the 256 MiB under which bench reads
  // its limit only before and after the run.
  TempDir dir;
  std::string error;
  const std::string path = (dir.path() / "m.gguf").string();
  ponder::test::TestModelSpec spec;
  spec.n_embd = 1024, spec.n_ff = 4096, spec.n_layer = 12, spec.n_head = 8, spec.n_head_kv = 2;
  REQUIRE(ponder::test::write_gguf(spec, ponder::GgmlType::f16, path, &error));
  Run json = run_ponder("bench --model " + path + " -p 4 -n 20 -t 2 --format json");
  REQUIRE(json.status == 0);
  auto j = nlohmann::json::parse(json.out);
  CHECK(j["bandwidth_read"] == "beside decode");
  // Windows of 8 steps: 8, 8, 4; a reading before each and after the last.
  const auto readings = j["bandwidth_readings_gb_per_s"].get<std::vector<double>>();
  REQUIRE(readings.size() == 4);
  for (double r : readings) CHECK(r > 0);
  // The limit is the mean of each window's two neighbouring readings, weighted by time
  // (window_bandwidth, tested in test_cpu_backend): within the readings, and at most the limit
  // from the higher reading of each pair.
  const double bandwidth = j["bandwidth_gb_per_s"].get<double>();
  CHECK(bandwidth >= *std::min_element(readings.begin(), readings.end()) * (1 - 1e-9));
  CHECK(bandwidth <= *std::max_element(readings.begin(), readings.end()) * (1 + 1e-9));
  CHECK(j["bandwidth_best_gb_per_s"].get<double>() >= bandwidth * (1 - 1e-9));
  CHECK(j["decode_limit_tokens_per_s"].get<double>() == Approx(bandwidth * 1e9 / j["decode_step_bytes"].get<double>()));
  CHECK(j["decode_limit_higher_readings_tokens_per_s"].get<double>() >=
        j["decode_limit_tokens_per_s"].get<double>() * (1 - 1e-9));
  CHECK(j["decode_at_depth_limit_higher_readings_tokens_per_s"].get<double>() >=
        j["decode_at_depth_limit_tokens_per_s"].get<double>() * (1 - 1e-9));
  // tg @ d4, the same steps after the prompt, has readings and a limit of its own; its steps read
  // the prompt's K and V rows on top: 2 (K, V) x 12 layers x 512 bytes (2 F16 heads of 128) x 4.
  const auto depth_readings = j["decode_at_depth_bandwidth_readings_gb_per_s"].get<std::vector<double>>();
  REQUIRE(depth_readings.size() == 4);
  const double depth_bandwidth = j["decode_at_depth_bandwidth_gb_per_s"].get<double>();
  CHECK(depth_bandwidth >= *std::min_element(depth_readings.begin(), depth_readings.end()) * (1 - 1e-9));
  CHECK(depth_bandwidth <= *std::max_element(depth_readings.begin(), depth_readings.end()) * (1 + 1e-9));
  CHECK(j["decode_at_depth_limit_tokens_per_s"].get<double>() ==
        Approx(depth_bandwidth * 1e9 / j["decode_at_depth_step_bytes"].get<double>()));
  CHECK(j["decode_at_depth_step_bytes"].get<double>() - j["decode_step_bytes"].get<double>() == Approx(2 * 12 * 512 * 4));
  CHECK(j["depth_tokens"] == 4);
  // The readings add nothing to the RSS: they read the weights in place (a buffer of their 512
  // MiB would).
  const auto weights = j["weight_bytes"].get<double>();
  CHECK(j["peak_rss_bytes"].get<double>() < 1.1 * weights + 100e6);
  Run text = run_ponder("bench --model " + path + " -p 4 -n 8 -t 2");
  REQUIRE(text.status == 0);
  // One window each for tg8 and tg8 @ d4: a reading before and after each.
  CHECK(text.out.find("beside the decode windows of 8 steps (4 readings") != std::string::npos);
  CHECK(text.out.find("against the higher reading beside each window, tg ÷ limit ") != std::string::npos);
  CHECK(text.out.find("| tg8 | ") != std::string::npos);
  CHECK(text.out.find("| tg8 @ d4 | ") != std::string::npos);
}
