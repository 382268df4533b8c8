#include "engine/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

namespace ponder::safetensors {
namespace {

struct DTypeName {
  DType type;
  std::string_view name;
  std::size_t size;
};
constexpr DTypeName kDTypes[] = {
    {DType::f32, "F32", 4},  {DType::f16, "F16", 2},         {DType::bf16, "BF16", 2},
    {DType::f64, "F64", 8},  {DType::i64, "I64", 8},         {DType::i32, "I32", 4},
    {DType::i16, "I16", 2},  {DType::i8, "I8", 1},           {DType::u8, "U8", 1},
    {DType::boolean, "BOOL", 1}, {DType::f8_e4m3, "F8_E4M3", 1}, {DType::f8_e5m2, "F8_E5M2", 1},
};

// The header may not claim more than this: real ones are a few hundred KiB.
constexpr std::uint64_t kMaxHeader = std::uint64_t{100} << 20;
constexpr std::size_t kMaxDims = 8;

}  // namespace

std::string_view dtype_name(DType t) {
  for (const auto& d : kDTypes)
    if (d.type == t) return d.name;
  return "unknown";
}

std::size_t dtype_size(DType t) {
  for (const auto& d : kDTypes)
    if (d.type == t) return d.size;
  return 0;
}

std::unique_ptr<File> File::open(const std::string& path, std::string* error) {
  auto mapping = MappedFile::open(path, error);
  if (!mapping) return nullptr;
  std::unique_ptr<File> f(new File());
  f->mapping_ = std::move(mapping);
  if (!f->parse_all(f->mapping_->bytes(), path, error)) return nullptr;
  return f;
}

std::unique_ptr<File> File::parse(std::string_view bytes, const std::string& name, std::string* error) {
  std::unique_ptr<File> f(new File());
  if (!f->parse_all(bytes, name, error)) return nullptr;
  return f;
}

const TensorInfo* File::tensor(std::string_view name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const TensorInfo& t, std::string_view n) { return t.name < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

bool File::parse_all(std::string_view bytes, const std::string& name, std::string* error) {
  name_ = name;
  auto fail = [&](const std::string& what) {
    if (error) *error = name + ": " + what;
    return false;
  };
  if (bytes.size() < 8) return fail("not a safetensors file (shorter than its 8-byte header length)");
  std::uint64_t header_len;
  std::memcpy(&header_len, bytes.data(), 8);
  if (header_len > kMaxHeader)
    return fail("not a safetensors file (header length " + std::to_string(header_len) + " is absurd)");
  if (header_len > bytes.size() - 8)
    return fail("truncated: the header claims " + std::to_string(header_len) + " bytes; the file has " +
                std::to_string(bytes.size() - 8) + " after the length");
  std::string_view header = bytes.substr(8, header_len);
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data()) + 8 + header_len;
  const std::uint64_t data_size = bytes.size() - 8 - header_len;

  nlohmann::json j = nlohmann::json::parse(header.begin(), header.end(), nullptr, false);
  if (j.is_discarded()) return fail("the header is not valid JSON");
  if (!j.is_object()) return fail("the header is not a JSON object");

  std::vector<std::pair<std::uint64_t, std::uint64_t>> spans;  // [begin, end) per tensor
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const auto& v = it.value();
    if (key == "__metadata__") {
      if (!v.is_object()) return fail("__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m)
        if (m.value().is_string()) metadata_.emplace_back(m.key(), m.value().get<std::string>());
      continue;
    }
    const std::string tn = "tensor '" + key + "': ";
    if (!v.is_object()) return fail(tn + "its entry is not an object");
    auto dtype = v.find("dtype");
    auto shape = v.find("shape");
    auto offsets = v.find("data_offsets");
    if (dtype == v.end() || !dtype->is_string()) return fail(tn + "no dtype");
    if (shape == v.end() || !shape->is_array()) return fail(tn + "no shape");
    if (offsets == v.end() || !offsets->is_array() || offsets->size() != 2 ||
        !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned())
      return fail(tn + "data_offsets is not [begin, end]");

    TensorInfo t;
    t.name = key;
    const std::string dt = dtype->get<std::string>();
    for (const auto& d : kDTypes)
      if (d.name == dt) t.dtype = d.type;
    if (t.dtype == DType::unknown) return fail(tn + "unknown dtype '" + dt + "'");
    if (shape->size() > kMaxDims) return fail(tn + std::to_string(shape->size()) + " dimensions");
    for (const auto& d : *shape) {
      if (!d.is_number_unsigned()) return fail(tn + "a dimension is not a non-negative integer");
      std::uint64_t n = d.get<std::uint64_t>();
      if (n != 0 && t.elements > UINT64_MAX / n) return fail(tn + "shape overflows 64 bits");
      t.shape.push_back(n);
      t.elements *= n;
    }
    const std::uint64_t begin = (*offsets)[0].get<std::uint64_t>(), end = (*offsets)[1].get<std::uint64_t>();
    if (t.elements > UINT64_MAX / dtype_size(t.dtype)) return fail(tn + "size overflows 64 bits");
    t.bytes = t.elements * dtype_size(t.dtype);
    if (begin > end || end > data_size)
      return fail(tn + "data [" + std::to_string(begin) + ", " + std::to_string(end) +
                  ") lies outside the data section of " + std::to_string(data_size) + " bytes");
    if (end - begin != t.bytes)
      return fail(tn + "holds " + std::to_string(end - begin) + " bytes but its shape and dtype need " +
                  std::to_string(t.bytes));
    t.data = data + begin;
    spans.emplace_back(begin, end);
    tensors_.push_back(std::move(t));
  }
  std::sort(spans.begin(), spans.end());
  for (std::size_t i = 1; i < spans.size(); ++i)
    if (spans[i].first < spans[i - 1].second && spans[i].first != spans[i].second)
      return fail("tensors overlap at data offset " + std::to_string(spans[i].first));
  std::sort(tensors_.begin(), tensors_.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
  return true;
}

}  // namespace ponder::safetensors
