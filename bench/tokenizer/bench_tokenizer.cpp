// bench_tokenizer: encode speed of the BPE tokenizer on source code, one core.
//
//   bench_tokenizer VOCAB.gguf [FILE...]
//
// Reads the files (default: the C++ headers of /usr/include/c++/12/bits, about 4 MB), encodes
// each whole file, and prints MB/s, tokens and bytes per token; checks decode(encode(x)) == x
// for valid UTF-8 input in NFC.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/gguf.h"
#include "engine/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_tokenizer VOCAB.gguf [FILE...]\n");
    return 2;
  }
  std::string error;
  auto file = ponder::gguf::File::open(argv[1], &error);
  if (!file) {
    std::fprintf(stderr, "bench_tokenizer: %s\n", error.c_str());
    return 1;
  }
  auto t0 = std::chrono::steady_clock::now();
  auto tok = ponder::Tokenizer::from_gguf(*file, &error);
  double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!tok) {
    std::fprintf(stderr, "bench_tokenizer: %s\n", error.c_str());
    return 1;
  }
  std::vector<std::string> paths(argv + 2, argv + argc);
  if (paths.empty())
    for (const auto& e : std::filesystem::directory_iterator("/usr/include/c++/12/bits"))
      if (e.is_regular_file()) paths.push_back(e.path().string());
  std::vector<std::string> texts;
  std::size_t bytes = 0;
  for (const auto& p : paths) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    texts.push_back(ss.str());
    bytes += texts.back().size();
  }
  std::size_t tokens = 0, mismatches = 0;
  t0 = std::chrono::steady_clock::now();
  for (const auto& t : texts) tokens += tok->encode(t).size();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& t : texts)
    if (tok->decode(tok->encode(t)) != t) ++mismatches;
  std::printf("files %zu, %.2f MB, %zu tokens (%.2f bytes/token)\n", texts.size(), bytes / 1e6,
              tokens, double(bytes) / double(tokens));
  std::printf("encode %.3f s = %.2f MB/s on one core; vocabulary load %.3f s; round-trip mismatches %zu\n",
              s, bytes / 1e6 / s, load_s, mismatches);
  return 0;
}
