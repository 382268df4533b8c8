#pragma once
// safetensors files (Hugging Face), memory-mapped and read in place.
//
// Layout: u64 little-endian header length N, N bytes of JSON ({"name": {"dtype", "shape",
// "data_offsets": [begin, end]}, "__metadata__": {...}}), then the data. open() checks every
// entry against the file (offsets inside the data section, size = product(shape) x dtype size,
// no overlaps) before returning; tensor data are views into the mapping.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/mapped_file.h"

namespace ponder::safetensors {

enum class DType { f32, f16, bf16, f64, i64, i32, i16, i8, u8, boolean, f8_e4m3, f8_e5m2, unknown };
std::string_view dtype_name(DType t);
std::size_t dtype_size(DType t);

struct TensorInfo {
  std::string name;
  DType dtype = DType::unknown;
  std::vector<std::uint64_t> shape;  // outermost first (row-major), as PyTorch writes it
  std::uint64_t elements = 1;
  std::uint64_t bytes = 0;
  const unsigned char* data = nullptr;  // into the mapping
};

class File {
 public:
  /// Maps and validates `path`. Null with `error` set ("<path>: tensor 'x': ...") on any problem.
  static std::unique_ptr<File> open(const std::string& path, std::string* error);
  /// Validates bytes already in memory (tests); they must outlive the File.
  static std::unique_ptr<File> parse(std::string_view bytes, const std::string& name, std::string* error);

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* tensor(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& metadata() const { return metadata_; }
  const std::string& path() const { return name_; }

 private:
  File() = default;
  bool parse_all(std::string_view bytes, const std::string& name, std::string* error);

  std::unique_ptr<MappedFile> mapping_;
  std::string name_;
  std::vector<TensorInfo> tensors_;  // sorted by name
  std::vector<std::pair<std::string, std::string>> metadata_;
};

}  // namespace ponder::safetensors
