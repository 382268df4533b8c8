#pragma once
// GGUF model files (versions 2 and 3), memory-mapped and read in place.
//
// open() validates the whole header before returning: every length, count, offset and shape
// is checked against the file's size first, so a malformed or hostile file gets a precise error
// ("<path>: tensor 'blk.0.attn_q.weight': data [off, off+size) lies outside the file") and
// never a crash or a huge allocation. Strings and tensor data are views into the mapping: valid
// as long as the GgufFile lives.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/mapped_file.h"
#include "engine/quant.h"

namespace ponder::gguf {

enum class ValueType : std::uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8,
  array = 9, u64 = 10, i64 = 11, f64 = 12,
};
std::string_view value_type_name(ValueType t);

/// One metadata value. Scalars are held as numbers; strings and arrays view the mapping.
struct Value {
  ValueType type = ValueType::u8;
  // scalars (the field matching `type` is set; integers also fill `i` or `u` as fitting)
  std::uint64_t u = 0;
  std::int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string_view str;                 // string
  // arrays
  ValueType element = ValueType::u8;    // element type
  std::uint64_t count = 0;              // elements
  const unsigned char* raw = nullptr;   // fixed-size elements, little-endian, packed
  std::vector<std::string_view> strings;  // string elements
  std::vector<Value> items;             // array elements (nested arrays)

  /// Numeric element `k` of an array of numbers (as double / int64); 0 when out of range or
  /// not an array of numbers.
  double number_at(std::uint64_t k) const;
  std::int64_t integer_at(std::uint64_t k) const;
};

struct KeyValue {
  std::string_view key;
  Value value;
};

struct TensorInfo {
  std::string_view name;
  std::uint32_t n_dims = 0;
  std::uint64_t dims[4] = {1, 1, 1, 1};  // ne0 first (ne0 = the contiguous dimension)
  GgmlType type = GgmlType::f32;
  std::uint64_t offset = 0;              // from the start of the data section
  std::uint64_t elements = 0;
  std::uint64_t bytes = 0;
  const unsigned char* data = nullptr;   // into the mapping
};

class File {
 public:
  /// Maps and validates `path`. Null with `error` set on any problem.
  static std::unique_ptr<File> open(const std::string& path, std::string* error);
  /// Validates bytes already in memory (tests, fuzzing). `name` appears in error messages. The
  /// bytes must outlive the File.
  static std::unique_ptr<File> parse(std::string_view bytes, const std::string& name,
                                     std::string* error);

  std::uint32_t version() const { return version_; }
  std::uint64_t alignment() const { return alignment_; }
  const std::vector<KeyValue>& metadata() const { return kv_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

  /// The value of `key`, or null.
  const Value* find(std::string_view key) const;
  /// Typed look-ups: false when the key is missing or of another type.
  bool get_string(std::string_view key, std::string_view* out) const;
  bool get_uint(std::string_view key, std::uint64_t* out) const;   // any unsigned or non-negative signed integer
  bool get_float(std::string_view key, double* out) const;         // f32/f64 or any integer
  const TensorInfo* tensor(std::string_view name) const;

 private:
  File() = default;
  bool parse_all(std::string_view bytes, const std::string& name, std::string* error);

  std::unique_ptr<MappedFile> mapping_;
  std::uint32_t version_ = 0;
  std::uint64_t alignment_ = 32;
  std::uint64_t data_offset_ = 0;
  std::vector<KeyValue> kv_;
  std::vector<TensorInfo> tensors_;
};

}  // namespace ponder::gguf
