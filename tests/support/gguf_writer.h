#pragma once
// Writes GGUF files for tests: metadata of every value type (nested arrays included) and
// tensors of any ggml type, laid out as llama.cpp's writer does (aligned data section).
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace ponder::test {

class GgufWriter {
 public:
  explicit GgufWriter(std::uint32_t version = 3, std::uint32_t alignment = 32)
      : version_(version), alignment_(alignment) {}

  // Metadata. Raw encoders are public so tests can build arrays and odd values by hand.
  void kv_string(std::string_view key, std::string_view v) { begin(key, 8); str(kv_, v); }
  void kv_u32(std::string_view key, std::uint32_t v) { begin(key, 4); put(kv_, v); }
  void kv_i32(std::string_view key, std::int32_t v) { begin(key, 5); put(kv_, v); }
  void kv_u64(std::string_view key, std::uint64_t v) { begin(key, 10); put(kv_, v); }
  void kv_i64(std::string_view key, std::int64_t v) { begin(key, 11); put(kv_, v); }
  void kv_u8(std::string_view key, std::uint8_t v) { begin(key, 0); put(kv_, v); }
  void kv_i8(std::string_view key, std::int8_t v) { begin(key, 1); put(kv_, v); }
  void kv_u16(std::string_view key, std::uint16_t v) { begin(key, 2); put(kv_, v); }
  void kv_i16(std::string_view key, std::int16_t v) { begin(key, 3); put(kv_, v); }
  void kv_f32(std::string_view key, float v) { begin(key, 6); put(kv_, v); }
  void kv_f64(std::string_view key, double v) { begin(key, 12); put(kv_, v); }
  void kv_bool(std::string_view key, bool v) { begin(key, 7); put(kv_, std::uint8_t{v}); }
  void kv_strings(std::string_view key, const std::vector<std::string>& v) {
    begin(key, 9);
    put(kv_, std::uint32_t{8});
    put(kv_, std::uint64_t{v.size()});
    for (const auto& s : v) str(kv_, s);
  }
  template <class T>
  void kv_numbers(std::string_view key, std::uint32_t element_type, const std::vector<T>& v) {
    begin(key, 9);
    put(kv_, element_type);
    put(kv_, std::uint64_t{v.size()});
    for (const T& x : v) put(kv_, x);
  }
  /// A key whose value bytes are given whole (type id first), for hand-made arrays.
  void kv_raw(std::string_view key, std::uint32_t type, const std::string& value_bytes) {
    begin(key, type);
    kv_ += value_bytes;
  }

  void tensor(std::string_view name, std::vector<std::uint64_t> dims, std::uint32_t type,
              const void* data, std::size_t bytes) {
    str(info_, name);
    put(info_, static_cast<std::uint32_t>(dims.size()));
    for (auto d : dims) put(info_, d);
    put(info_, type);
    while (data_.size() % alignment_) data_.push_back('\0');
    put(info_, std::uint64_t{data_.size()});
    data_.append(static_cast<const char*>(data), bytes);
    ++n_tensors_;
  }

  std::string bytes() const {
    std::string out = "GGUF";
    put(out, version_);
    put(out, n_tensors_);
    put(out, n_kv_);
    out += kv_;
    out += info_;
    while (out.size() % alignment_) out.push_back('\0');
    out += data_;
    return out;
  }

  template <class T>
  static void put(std::string& out, T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  static void str(std::string& out, std::string_view s) {
    put(out, std::uint64_t{s.size()});
    out.append(s);
  }

 private:
  void begin(std::string_view key, std::uint32_t type) {
    str(kv_, key);
    put(kv_, type);
    ++n_kv_;
  }
  std::uint32_t version_, alignment_;
  std::uint64_t n_tensors_ = 0, n_kv_ = 0;
  std::string kv_, info_, data_;
};

}  // namespace ponder::test
