// The GGUF reader and the scalar dequantizers.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/mapped_file.h"
#include "engine/quant.h"
#include "support/gguf_writer.h"
#include "support/temp_dir.h"

using namespace ponder;
using ponder::test::GgufWriter;

namespace {
const std::string kTestdata = std::string(PONDER_SHARED_DIR) + "/testdata/";

std::vector<float> as_floats(const gguf::TensorInfo& t) {
  std::vector<float> v(t.elements);
  std::memcpy(v.data(), t.data, t.bytes);
  return v;
}
}  // namespace

TEST_CASE("dequantizers reproduce llama.cpp's known answers", "[gguf][quant]") {
  std::string error;
  auto file = gguf::File::open(kTestdata + "quant_known_answers.gguf", &error);
  INFO(error);  // the test data comes from ../shared/testdata (PONDER_SHARED_DIR)
  REQUIRE(file);
  CHECK(file->version() == 3);
  for (const char* type : {"Q4_0", "Q8_0", "Q4_K", "Q5_K", "Q6_K"}) {
    INFO(type);
    const gguf::TensorInfo* raw = file->tensor(std::string(type) + ".raw");
    const gguf::TensorInfo* expected = file->tensor(std::string(type) + ".expected");
    const gguf::TensorInfo* source = file->tensor(std::string(type) + ".source");
    REQUIRE(raw);
    REQUIRE(expected);
    REQUIRE(source);
    REQUIRE(expected->type == GgmlType::f32);
    REQUIRE(raw->elements == expected->elements);
    std::vector<float> got(raw->elements);
    REQUIRE(dequantize(raw->type, raw->data, got.data(), got.size(), &error));
    std::vector<float> want = as_floats(*expected);
    std::size_t exact = 0;
    float worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      if (got[i] == want[i]) ++exact;
      worst = std::max(worst, std::fabs(got[i] - want[i]) / std::max(1e-30f, std::fabs(want[i])));
    }
    INFO("exact " << exact << " of " << got.size() << ", worst relative difference " << worst);
    CHECK(exact == got.size());  // bit for bit: same operations in the same order as ggml
    CHECK(worst == 0.0f);
    // And the quantization is close to the original values (a sanity check of the layout).
    std::vector<float> orig = as_floats(*source);
    double err = 0, norm = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      err += (got[i] - orig[i]) * (got[i] - orig[i]);
      norm += orig[i] * orig[i];
    }
    CHECK(std::sqrt(err / norm) < 0.12);
  }
}

TEST_CASE("f16 and bf16 convert bit-exactly", "[quant]") {
  CHECK(f16_to_f32(0x3C00) == 1.0f);
  CHECK(f16_to_f32(0xC000) == -2.0f);
  CHECK(f16_to_f32(0x7BFF) == 65504.0f);
  CHECK(f16_to_f32(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(f16_to_f32(0x03FF) == std::ldexp(1023.0f, -24));
  CHECK(std::isinf(f16_to_f32(0x7C00)));
  CHECK(std::isnan(f16_to_f32(0x7E00)));
  CHECK(std::signbit(f16_to_f32(0x8000)));
  CHECK(bf16_to_f32(0x3F80) == 1.0f);
  CHECK(bf16_to_f32(0xC0A0) == -5.0f);
  // Every f16 value round-trips through float (checked against the hardware-free definition).
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    float f = f16_to_f32(static_cast<std::uint16_t>(h));
    if (std::isnan(f)) continue;
    std::uint32_t e = (h >> 10) & 0x1F, m = h & 0x3FF;
    double want = e == 0 ? std::ldexp(double(m), -24) : e == 31 ? INFINITY : std::ldexp(1.0 + m / 1024.0, int(e) - 15);
    if (h & 0x8000) want = -want;
    REQUIRE(double(f) == want);
  }
}

TEST_CASE("dequantize refuses partial blocks and unsupported types", "[quant]") {
  std::vector<unsigned char> block(34, 0);
  std::vector<float> out(64);
  std::string error;
  CHECK_FALSE(dequantize(GgmlType::q8_0, block.data(), out.data(), 31, &error));
  CHECK(error.find("whole number") != std::string::npos);
  CHECK_FALSE(dequantize(GgmlType::q2_k, block.data(), out.data(), 256, &error));
  CHECK(error.find("q2_K") != std::string::npos);
}

TEST_CASE("the vocabulary written by llama.cpp reads whole", "[gguf]") {
  std::string error;
  auto file = gguf::File::open(kTestdata + "r1_qwen_vocab.gguf", &error);
  INFO(error);  // the test data comes from ../shared/testdata (PONDER_SHARED_DIR)
  REQUIRE(file);
  CHECK(file->tensors().empty());
  std::string_view pre;
  REQUIRE(file->get_string("tokenizer.ggml.pre", &pre));
  CHECK(pre == "deepseek-r1-qwen");
  const gguf::Value* tokens = file->find("tokenizer.ggml.tokens");
  REQUIRE(tokens);
  CHECK(tokens->element == gguf::ValueType::string);
  CHECK(tokens->strings.size() == 151936);
  const gguf::Value* merges = file->find("tokenizer.ggml.merges");
  REQUIRE(merges);
  CHECK(merges->strings.size() == 151387);
  const gguf::Value* types = file->find("tokenizer.ggml.token_type");
  REQUIRE(types);
  CHECK(types->count == 151936);
  std::uint64_t bos;
  CHECK(file->get_uint("tokenizer.ggml.bos_token_id", &bos));
}

namespace {

GgufWriter sample_writer() {
  GgufWriter w;
  w.kv_string("general.architecture", "qwen2");
  w.kv_u32("general.alignment", 32);
  w.kv_u8("t.u8", 200);
  w.kv_i8("t.i8", -5);
  w.kv_u16("t.u16", 60000);
  w.kv_i16("t.i16", -30000);
  w.kv_i32("t.i32", -7);
  w.kv_u64("t.u64", 1ull << 40);
  w.kv_i64("t.i64", -(1ll << 40));
  w.kv_f32("t.f32", 0.5f);
  w.kv_f64("t.f64", 1e-6);
  w.kv_bool("t.bool", true);
  w.kv_strings("t.strings", {"a", "", "ünïcode"});
  w.kv_numbers<float>("t.floats", 6, {1.5f, -2.0f});
  // An array of two arrays of i32: [[1, 2], [3]].
  std::string outer;
  GgufWriter::put(outer, std::uint32_t{9});
  GgufWriter::put(outer, std::uint64_t{2});
  // each element of an array of arrays is itself (element type, count, data)
  auto i32_array = [](std::vector<std::int32_t> v) {
    std::string a;
    GgufWriter::put(a, std::uint32_t{5});
    GgufWriter::put(a, std::uint64_t{v.size()});
    for (auto x : v) GgufWriter::put(a, x);
    return a;
  };
  w.kv_raw("t.nested", 9, outer + i32_array({1, 2}) + i32_array({3}));
  std::vector<float> f32 = {1, 2, 3, 4, 5, 6, 7, 8};
  w.tensor("a.weight", {4, 2}, 0, f32.data(), f32.size() * 4);
  std::vector<std::uint16_t> f16(64, 0x3C00);
  w.tensor("b.weight", {64}, 1, f16.data(), f16.size() * 2);
  std::vector<unsigned char> q8(34 * 2, 1);
  w.tensor("c.weight", {32, 2}, 8, q8.data(), q8.size());
  return w;
}

}  // namespace

TEST_CASE("every metadata type, nested arrays and tensors read back", "[gguf]") {
  std::string bytes = sample_writer().bytes();
  std::string error;
  auto f = gguf::File::parse(bytes, "sample.gguf", &error);
  INFO(error);
  REQUIRE(f);
  std::string_view s;
  REQUIRE(f->get_string("general.architecture", &s));
  CHECK(s == "qwen2");
  std::uint64_t u;
  double d;
  CHECK((f->get_uint("t.u8", &u) && u == 200));
  CHECK((f->get_uint("t.u16", &u) && u == 60000));
  CHECK((f->get_uint("t.u64", &u) && u == (1ull << 40)));
  CHECK_FALSE(f->get_uint("t.i8", &u));  // negative
  CHECK(f->find("t.i16")->i == -30000);
  CHECK(f->find("t.i64")->i == -(1ll << 40));
  CHECK((f->get_float("t.f32", &d) && d == 0.5));
  CHECK((f->get_float("t.f64", &d) && d == 1e-6));
  CHECK((f->get_float("t.i32", &d) && d == -7));
  CHECK(f->find("t.bool")->b);
  CHECK(f->find("t.strings")->strings == std::vector<std::string_view>{"a", "", "ünïcode"});
  CHECK(f->find("t.floats")->number_at(1) == -2.0);
  const gguf::Value* nested = f->find("t.nested");
  REQUIRE(nested);
  REQUIRE(nested->items.size() == 2);
  CHECK(nested->items[0].count == 2);
  CHECK(nested->items[0].integer_at(1) == 2);
  CHECK(nested->items[1].integer_at(0) == 3);
  CHECK(f->find("missing") == nullptr);

  REQUIRE(f->tensors().size() == 3);
  const gguf::TensorInfo* a = f->tensor("a.weight");
  REQUIRE(a);
  CHECK(a->n_dims == 2);
  CHECK(a->dims[0] == 4);
  CHECK(a->dims[1] == 2);
  CHECK(a->elements == 8);
  CHECK(a->bytes == 32);
  CHECK(as_floats(*a)[7] == 8.0f);
  const gguf::TensorInfo* c = f->tensor("c.weight");
  REQUIRE(c);
  CHECK(c->type == GgmlType::q8_0);
  CHECK(c->bytes == 68);
  CHECK((c->data - a->data) % 32 == 0);  // aligned data section
}

TEST_CASE("malformed files: every truncation and many corruptions fail cleanly", "[gguf][bad-input]") {
  const std::string good = sample_writer().bytes();
  std::string error;
  // Every prefix of the file: a clear error, no crash (the full file parses).
  for (std::size_t n = 0; n < good.size(); ++n) {
    std::string cut = good.substr(0, n);
    error.clear();
    auto f = gguf::File::parse(cut, "cut.gguf", &error);
    INFO("length " << n);
    CHECK_FALSE(f);
    CHECK(error.rfind("cut.gguf: ", 0) == 0);
  }
  // Flipped bytes anywhere in the header and tensor infos: either a valid file or an error.
  std::mt19937 rng(3);
  for (std::size_t pos = 0; pos < good.size() - 100; ++pos) {
    for (unsigned char value : {0x00, 0xFF, 0x7F, 0x80}) {
      std::string bad = good;
      bad[pos] = static_cast<char>(value);
      error.clear();
      auto f = gguf::File::parse(bad, "flip.gguf", &error);
      if (!f) CHECK_FALSE(error.empty());
    }
  }
}

TEST_CASE("malformed files: precise errors", "[gguf][bad-input]") {
  std::string error;
  CHECK_FALSE(gguf::File::parse("GGML\x03\0\0\0", "x", &error));
  CHECK(error == "x: not a GGUF file (the first four bytes are not \"GGUF\")");

  GgufWriter v1(1);
  CHECK_FALSE(gguf::File::parse(v1.bytes(), "x", &error));
  CHECK(error.find("version 1 is not supported") != std::string::npos);

  // 2^60 tensors: refused before any allocation.
  std::string huge = "GGUF";
  GgufWriter::put(huge, std::uint32_t{3});
  GgufWriter::put(huge, std::uint64_t{1} << 60);
  GgufWriter::put(huge, std::uint64_t{0});
  CHECK_FALSE(gguf::File::parse(huge, "x", &error));
  CHECK(error.find("claims 1152921504606846976 tensors") != std::string::npos);

  // An array claiming more elements than the file holds.
  GgufWriter arr;
  std::string value;
  GgufWriter::put(value, std::uint32_t{6});
  GgufWriter::put(value, std::uint64_t{1} << 40);
  arr.kv_raw("big", 9, value);
  CHECK_FALSE(gguf::File::parse(arr.bytes(), "x", &error));
  CHECK(error.find("key 'big': array at byte") != std::string::npos);

  // Unknown tensor type; data outside the file; misaligned offset; bad alignment.
  std::vector<float> data(4, 1.0f);
  GgufWriter unknown;
  unknown.tensor("w", {4}, 99, data.data(), 16);
  CHECK_FALSE(gguf::File::parse(unknown.bytes(), "x", &error));
  CHECK(error == "x: tensor 'w': unknown tensor type 99");

  GgufWriter outside;
  outside.tensor("w", {4}, 0, data.data(), 16);
  std::string bytes = outside.bytes();
  bytes.resize(bytes.size() - 4);
  CHECK_FALSE(gguf::File::parse(bytes, "x", &error));
  CHECK(error.find("tensor 'w': data [") != std::string::npos);
  CHECK(error.find("lies outside the file") != std::string::npos);

  GgufWriter partial;
  partial.tensor("q", {31}, 8, data.data(), 16);
  CHECK_FALSE(gguf::File::parse(partial.bytes(), "x", &error));
  CHECK(error.find("not a whole number of q8_0 blocks") != std::string::npos);

  GgufWriter align;
  align.kv_u32("general.alignment", 24);
  CHECK_FALSE(gguf::File::parse(align.bytes(), "x", &error));
  CHECK(error.find("power of two") != std::string::npos);

  GgufWriter twice;
  twice.tensor("w", {4}, 0, data.data(), 16);
  twice.tensor("w", {4}, 0, data.data(), 16);
  CHECK_FALSE(gguf::File::parse(twice.bytes(), "x", &error));
  CHECK(error == "x: tensor 'w': appears twice");

  CHECK_FALSE(gguf::File::open("/no/such/model.gguf", &error));
  CHECK(error.find("/no/such/model.gguf: ") == 0);
}

TEST_CASE("mapped files: map_in_huge_pages faults the weights in and keeps their bytes", "[gguf]") {
  // 70 MiB written and synced (clean pages, which MADV_PAGEOUT may drop and read again), then
  // mapped as a model is: the bytes must be the same after whatever the call did.
  test::TempDir dir;
  const std::size_t size = std::size_t{70} << 20;
  std::string bytes(size, '\0');
  std::uint32_t h = 2166136261u;
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((h = (h ^ (i & 0xff)) * 16777619u) >> 24);
  // Written 4 KiB at a time, odd pages before even ones: the page cache then holds it in small
  // pieces (written whole, it can already be in 2 MiB ones), so the call reads it again.
  const std::string path = (dir.path() / "weights.bin").string();
  {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    bool written = true;
    for (int odd = 1; odd >= 0; --odd)
      for (std::size_t at = std::size_t(odd) << 12; at < size; at += 8192)
        written &= ::pwrite(fd, bytes.data() + at, 4096, static_cast<off_t>(at)) == 4096;
    REQUIRE(written);
    ::fsync(fd);
    ::close(fd);
  }
  std::string error;
  auto file = MappedFile::open(path, &error);
  REQUIRE(file);
  // Below 64 MiB of whole 2 MiB pages: nothing is done.
  CHECK_FALSE(map_in_huge_pages(file->data(), std::size_t{32} << 20).tried);
  // Both ways: with PAGEMAP_SCAN where the kernel has it (Linux 6.7), each block found; without,
  // the whole range read again.
  const bool scan = GENERATE(false, true);
  detail::use_pagemap_scan(scan);
  const HugePageReport r = map_in_huge_pages(file->data(), file->size());
  detail::use_pagemap_scan(true);
  INFO("resident " << r.resident << ", in 2 MiB pages " << r.huge_before << " -> " << r.huge_after
                   << ", blocks read again " << r.blocks_reread);
#if defined(__linux__)
  // (Linux 5.14 or later: MADV_POPULATE_READ. Debian 12 has 6.1.)
  REQUIRE(r.tried);
  CHECK(r.resident >= (std::size_t{64} << 20));  // faulted in: the whole 2 MiB pages of the range
  CHECK(r.huge_after <= r.resident);
  // Written in small pieces: read again, and where the file system caches in 2 MiB pieces (ext4
  // on Linux 6.18 here: 0% -> 100%) mapped in them; never fewer than before.
  CHECK(r.blocks_reread > 0);
  CHECK(r.huge_after >= r.huge_before);
  if (!scan) CHECK_FALSE(r.scanned);
  if (r.scanned) CHECK(r.small_blocks > 0);
  CHECK(r.blocks_reread >= 32);  // at least the trial's 64 MiB
#endif
  CHECK(std::memcmp(file->data(), bytes.data(), size) == 0);
  // Memory that is not a file's (a model parsed from bytes in memory): faulted in, nothing else.
  CHECK_FALSE(map_in_huge_pages(reinterpret_cast<const unsigned char*>(bytes.data()), size).tried);
}

TEST_CASE("mapped files: map_in_huge_pages reads again only the 2 MiB blocks held in small pieces", "[gguf]") {
#if defined(__linux__)
  // 70 MiB written whole and synced, then mapped and put in 2 MiB pages where the file system
  // allows; then two 2 MiB blocks are dropped from the page cache and written again 4 KiB at a
  // time (the same bytes), so that the page cache holds just those two in small pieces.
  test::TempDir dir;
  const std::size_t size = std::size_t{70} << 20, kHuge = std::size_t{2} << 20;
  std::string bytes(size, '\0');
  std::uint32_t h = 2166136261u;
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((h = (h ^ (i & 0xff)) * 16777619u) >> 24);
  const std::string path = (dir.path() / "weights.bin").string();
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    REQUIRE(f);
    REQUIRE(std::fwrite(bytes.data(), 1, size, f) == size);
    REQUIRE(std::fflush(f) == 0);
    ::fsync(::fileno(f));
    std::fclose(f);
  }
  std::string error;
  auto file = MappedFile::open(path, &error);
  REQUIRE(file);
  const HugePageReport first = map_in_huge_pages(file->data(), size);
  REQUIRE(first.tried);
  const auto data = reinterpret_cast<std::uintptr_t>(file->data());
  const std::uintptr_t lo = (data + kHuge - 1) & ~(kHuge - 1);
  const std::size_t whole = ((data + size) & ~(kHuge - 1)) - lo;  // bytes in whole 2 MiB blocks
  if (first.huge_after < whole) {
    WARN("the file system here does not cache this file in 2 MiB pieces: " << first.huge_after << " of " << whole
                                                                             << " bytes; not checked");
    return;
  }
  CHECK(first.blocks_reread <= first.small_blocks);
  const int fd = ::open(path.c_str(), O_WRONLY);
  REQUIRE(fd >= 0);
  for (std::size_t block : {5, 20}) {
    const std::uintptr_t at = lo + block * kHuge;
    REQUIRE(::madvise(reinterpret_cast<void*>(at), kHuge, MADV_PAGEOUT) == 0);
    const std::size_t offset = at - data;
    bool written = true;
    for (int odd = 1; odd >= 0; --odd)
      for (std::size_t page = std::size_t(odd) << 12; page < kHuge; page += 8192)
        written &= ::pwrite(fd, bytes.data() + offset + page, 4096, static_cast<off_t>(offset + page)) == 4096;
    REQUIRE(written);
  }
  ::fsync(fd);
  ::close(fd);
  const HugePageReport second = map_in_huge_pages(file->data(), size);
  if (!second.scanned) {
    WARN("no PAGEMAP_SCAN here (Linux before 6.7): the blocks in small pieces are not found; not checked");
    return;
  }
  INFO("resident " << second.resident << ", in 2 MiB pages " << second.huge_before << " -> " << second.huge_after
                   << ", blocks in small pieces " << second.small_blocks << ", read again " << second.blocks_reread);
  REQUIRE(second.tried);
  CHECK(second.small_blocks == 2);  // blocks 5 and 20, and no other
  CHECK(second.blocks_reread >= 2);
  CHECK(second.blocks_reread <= 4);  // each at most twice
  CHECK(second.huge_after == whole);
  // Nothing left to do: nothing read again.
  const HugePageReport third = map_in_huge_pages(file->data(), size);
  CHECK(third.small_blocks == 0);
  CHECK(third.blocks_reread == 0);
  CHECK(std::memcmp(file->data(), bytes.data(), size) == 0);
#endif
}

namespace {
// The VmFlags of the mapping that holds `at` and that mapping's range, from /proc/self/smaps;
// empty flags when it cannot be read.
std::string vm_flags_of(const void* at, std::uintptr_t* lo_out, std::uintptr_t* hi_out) {
  std::FILE* f = std::fopen("/proc/self/smaps", "r");
  if (!f) return {};
  const auto p = reinterpret_cast<std::uintptr_t>(at);
  char line[512];
  bool in = false;
  std::string flags;
  while (std::fgets(line, sizeof line, f)) {
    unsigned long lo = 0, hi = 0;
    char perms[8] = {};
    if (std::sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && std::strchr(line, ':') != nullptr &&
        std::strncmp(line, "VmFlags", 7) != 0) {
      if (in) break;
      in = p >= lo && p < hi;
      if (in) *lo_out = lo, *hi_out = hi;
      continue;
    }
    if (in && std::strncmp(line, "VmFlags:", 8) == 0) flags = line + 8;
  }
  std::fclose(f);
  return flags;
}
}  // namespace

TEST_CASE("page buffers: zeroed, 2 MiB-aligned, advised for 2 MiB pages, movable", "[gguf]") {
  CHECK(PageBuffer().data() == nullptr);
  CHECK(PageBuffer(0).data() == nullptr);
  CHECK(PageBuffer(0).size() == 0);
  // Far more than any address space: refused, not thrown.
  CHECK(PageBuffer(SIZE_MAX - 1).data() == nullptr);
  CHECK(PageBuffer(std::size_t{1} << 62).data() == nullptr);

  const std::size_t size = (std::size_t{5} << 20) + 3;
  PageBuffer b(size);
  REQUIRE(b.data() != nullptr);
  CHECK(b.size() == size);
  const std::string zeros(size, '\0');
  CHECK(std::memcmp(b.data(), zeros.data(), size) == 0);
  for (std::size_t i = 0; i < size; i += 4093) b.data()[i] = static_cast<unsigned char>(i * 7 + 1);
  b.data()[size - 1] = 0xab;
#if defined(__linux__)
  CHECK(reinterpret_cast<std::uintptr_t>(b.data()) % (std::size_t{2} << 20) == 0);
  std::uintptr_t lo = 0, hi = 0;
  const std::string flags = vm_flags_of(b.data(), &lo, &hi);
  INFO("VmFlags:" << flags);
  REQUIRE_FALSE(flags.empty());
  // The mapping covers the buffer rounded up to whole 2 MiB pages (6 MiB).
  CHECK(lo <= reinterpret_cast<std::uintptr_t>(b.data()));
  CHECK(hi >= reinterpret_cast<std::uintptr_t>(b.data()) + (std::size_t{6} << 20));
  // Advised MADV_HUGEPAGE ("hg") where the kernel has transparent huge pages.
  if (std::FILE* thp = std::fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r")) {
    std::fclose(thp);
    CHECK(flags.find(" hg") != std::string::npos);
  }
#endif
  // Moves carry the memory; the source is left empty.
  unsigned char* const at = b.data();
  PageBuffer c(std::move(b));
  CHECK(b.data() == nullptr);
  CHECK(b.size() == 0);
  CHECK(c.data() == at);
  CHECK(c.size() == size);
  PageBuffer d(std::size_t{4096});
  d.data()[0] = 1;
  d = std::move(c);
  CHECK(c.data() == nullptr);
  REQUIRE(d.data() == at);
  bool same = d.data()[size - 1] == 0xab;
  for (std::size_t i = 0; i < size - 1; i += 4093) same &= d.data()[i] == static_cast<unsigned char>(i * 7 + 1);
  CHECK(same);
}
