#pragma once
// A read-only memory mapping of a whole file. Model weights stay in the page cache and are read
// in place: nothing is copied.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace ponder {

class MappedFile {
 public:
  /// Maps `path` read-only. Returns null with `error` set ("<path>: <reason>") when the file
  /// cannot be opened, is not a regular file, or cannot be mapped. An empty file maps to an
  /// empty view.
  static std::unique_ptr<MappedFile> open(const std::string& path, std::string* error);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::string_view bytes() const { return {reinterpret_cast<const char*>(data_), size_}; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const unsigned char* data, std::size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  const unsigned char* data_;
  std::size_t size_;
};

}  // namespace ponder
