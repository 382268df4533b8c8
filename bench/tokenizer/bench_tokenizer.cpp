// bench_tokenizer: encode speed of the BPE tokenizer, one core.
//
//   bench_tokenizer VOCAB [--corpus CORPUS.json] [--passes N] [FILE...]
//
// VOCAB is a GGUF file or a Hugging Face tokenizer.json. The texts: the documents of CORPUS.json
// ([{"name", "text"}], as tests/reference/make_corpus.mjs writes it, so that the reference
// tokenizer can be run on the same corpus with tests/reference/tokenize.mjs), or the FILEs, or by
// default the C++ headers of /usr/include/c++/12/bits (about 4 MB). Each text is encoded whole,
// N times (default 3); prints MB/s of the first and of the best pass, tokens and bytes per token,
// and how many texts do not come back from decode(encode(x)) (texts not in NFC do not, with a
// normalising vocabulary).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "engine/gguf.h"
#include "engine/tokenizer.h"

namespace {
int usage() {
  std::fprintf(stderr, "usage: bench_tokenizer VOCAB.gguf|tokenizer.json [--corpus CORPUS.json] [--passes N] [FILE...]\n");
  return 2;
}

bool ends_with(const std::string& s, const char* suffix) {
  const std::size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string vocab = argv[1];
  std::string corpus;
  int passes = 3;
  std::vector<std::string> paths;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--corpus" && i + 1 < argc) corpus = argv[++i];
    else if (a == "--passes" && i + 1 < argc) passes = std::max(1, std::atoi(argv[++i]));
    else if (a.rfind("--", 0) == 0) return usage();
    else paths.push_back(a);
  }

  std::string error;
  std::unique_ptr<ponder::gguf::File> file;
  auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<ponder::Tokenizer> tok;
  if (ends_with(vocab, ".json")) {
    tok = ponder::Tokenizer::from_json_file(vocab, &error);
  } else {
    file = ponder::gguf::File::open(vocab, &error);
    if (file) tok = ponder::Tokenizer::from_gguf(*file, &error);
  }
  double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!tok) {
    std::fprintf(stderr, "bench_tokenizer: %s\n", error.c_str());
    return 1;
  }

  std::vector<std::string> texts;
  if (!corpus.empty()) {
    std::ifstream in(corpus, std::ios::binary);
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_array()) {
      std::fprintf(stderr, "bench_tokenizer: %s: not a JSON array of {\"name\", \"text\"}\n", corpus.c_str());
      return 1;
    }
    for (const auto& d : j) {
      if (!d.is_object() || !d.contains("text") || !d.at("text").is_string()) {
        std::fprintf(stderr, "bench_tokenizer: %s: a document without \"text\"\n", corpus.c_str());
        return 1;
      }
      texts.push_back(d.at("text").get<std::string>());
    }
  } else {
    if (paths.empty())
      for (const auto& e : std::filesystem::directory_iterator("/usr/include/c++/12/bits"))
        if (e.is_regular_file()) paths.push_back(e.path().string());
    for (const auto& p : paths) {
      std::ifstream in(p, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      texts.push_back(ss.str());
    }
  }
  std::size_t bytes = 0;
  for (const auto& t : texts) bytes += t.size();

  std::size_t tokens = 0, mismatches = 0;
  double first_s = 0, best_s = 0;
  for (int pass = 0; pass < passes; ++pass) {
    tokens = 0;
    t0 = std::chrono::steady_clock::now();
    for (const auto& t : texts) tokens += tok->encode(t).size();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (pass == 0) first_s = best_s = s;
    best_s = std::min(best_s, s);
  }
  for (const auto& t : texts)
    if (tok->decode(tok->encode(t)) != t) ++mismatches;
  std::printf("texts %zu, %.2f MB, %zu tokens (%.2f bytes/token)\n", texts.size(), bytes / 1e6, tokens,
              double(bytes) / double(tokens));
  std::printf("encode on one core: first pass %.3f s = %.2f MB/s, best of %d %.3f s = %.2f MB/s; "
              "vocabulary load %.3f s; round-trip mismatches %zu\n",
              first_s, bytes / 1e6 / first_s, passes, best_s, bytes / 1e6 / best_s, load_s, mismatches);
  return 0;
}
