#include "engine/gguf.h"

#include <cstring>
#include <unordered_set>

namespace ponder::gguf {
namespace {

constexpr int kMaxArrayDepth = 8;

std::size_t fixed_size(ValueType t) {
  switch (t) {
    case ValueType::u8: case ValueType::i8: case ValueType::boolean: return 1;
    case ValueType::u16: case ValueType::i16: return 2;
    case ValueType::u32: case ValueType::i32: case ValueType::f32: return 4;
    case ValueType::u64: case ValueType::i64: case ValueType::f64: return 8;
    default: return 0;  // string, array
  }
}

// Reads little-endian values from [begin, end), remembering the first failure.
class Cursor {
 public:
  Cursor(std::string_view bytes) : base_(reinterpret_cast<const unsigned char*>(bytes.data())), size_(bytes.size()) {}
  std::size_t pos() const { return pos_; }
  std::size_t left() const { return size_ - pos_; }
  const unsigned char* here() const { return base_ + pos_; }
  bool take(void* out, std::size_t n) {
    if (left() < n) return false;
    std::memcpy(out, base_ + pos_, n);
    pos_ += n;
    return true;
  }
  bool skip(std::size_t n) {
    if (left() < n) return false;
    pos_ += n;
    return true;
  }
  bool u32(std::uint32_t* v) { return take(v, 4); }
  bool u64(std::uint64_t* v) { return take(v, 8); }
  bool str(std::string_view* s) {
    std::uint64_t n;
    if (!u64(&n) || n > left()) return false;
    *s = std::string_view(reinterpret_cast<const char*>(base_ + pos_), static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return true;
  }

 private:
  const unsigned char* base_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

std::string hex_offset(std::size_t pos) { return "byte " + std::to_string(pos); }

bool read_scalar(Cursor& c, ValueType t, Value* v) {
  unsigned char buf[8] = {};
  std::size_t n = fixed_size(t);
  if (!c.take(buf, n)) return false;
  auto as = [&](auto x) {
    std::memcpy(&x, buf, sizeof x);
    return x;
  };
  switch (t) {
    case ValueType::u8: v->u = as(std::uint8_t{}); v->i = static_cast<std::int64_t>(v->u); break;
    case ValueType::u16: v->u = as(std::uint16_t{}); v->i = static_cast<std::int64_t>(v->u); break;
    case ValueType::u32: v->u = as(std::uint32_t{}); v->i = static_cast<std::int64_t>(v->u); break;
    case ValueType::u64: v->u = as(std::uint64_t{}); v->i = static_cast<std::int64_t>(v->u); break;
    case ValueType::i8: v->i = as(std::int8_t{}); v->u = static_cast<std::uint64_t>(v->i); break;
    case ValueType::i16: v->i = as(std::int16_t{}); v->u = static_cast<std::uint64_t>(v->i); break;
    case ValueType::i32: v->i = as(std::int32_t{}); v->u = static_cast<std::uint64_t>(v->i); break;
    case ValueType::i64: v->i = as(std::int64_t{}); v->u = static_cast<std::uint64_t>(v->i); break;
    case ValueType::f32: v->f = as(float{}); break;
    case ValueType::f64: v->f = as(double{}); break;
    case ValueType::boolean: v->b = buf[0] != 0; v->u = buf[0]; break;
    default: return false;
  }
  return true;
}

// Reads a value of type `t` (already read). On failure `error` says what and where.
bool read_value(Cursor& c, ValueType t, Value* v, int depth, std::string* error) {
  v->type = t;
  const std::size_t at = c.pos();
  if (t == ValueType::string) {
    if (!c.str(&v->str)) {
      *error = "string at " + hex_offset(at) + " runs past the end of the file";
      return false;
    }
    return true;
  }
  if (t != ValueType::array) {
    if (static_cast<std::uint32_t>(t) > 12) {
      *error = "unknown value type " + std::to_string(static_cast<std::uint32_t>(t)) + " at " + hex_offset(at);
      return false;
    }
    if (!read_scalar(c, t, v)) {
      *error = std::string(value_type_name(t)) + " at " + hex_offset(at) + " runs past the end of the file";
      return false;
    }
    return true;
  }
  std::uint32_t element;
  if (!c.u32(&element) || !c.u64(&v->count)) {
    *error = "array header at " + hex_offset(at) + " runs past the end of the file";
    return false;
  }
  if (element > 12) {
    *error = "array at " + hex_offset(at) + " has unknown element type " + std::to_string(element);
    return false;
  }
  v->element = static_cast<ValueType>(element);
  // Every element takes at least this many bytes: a count the rest of the file cannot hold is
  // rejected before anything is allocated for it.
  const std::size_t min_bytes = v->element == ValueType::string  ? 8
                                : v->element == ValueType::array ? 12
                                                                 : fixed_size(v->element);
  if (v->count > c.left() / min_bytes) {
    *error = "array at " + hex_offset(at) + " claims " + std::to_string(v->count) + " " +
             std::string(value_type_name(v->element)) + " elements; only " +
             std::to_string(c.left()) + " bytes are left";
    return false;
  }
  if (v->element == ValueType::string) {
    v->strings.resize(static_cast<std::size_t>(v->count));
    for (auto& s : v->strings)
      if (!c.str(&s)) {
        *error = "string in array at " + hex_offset(at) + " runs past the end of the file";
        return false;
      }
    return true;
  }
  if (v->element == ValueType::array) {
    if (depth >= kMaxArrayDepth) {
      *error = "arrays nested deeper than " + std::to_string(kMaxArrayDepth) + " at " + hex_offset(at);
      return false;
    }
    v->items.resize(static_cast<std::size_t>(v->count));
    for (auto& item : v->items)
      if (!read_value(c, ValueType::array, &item, depth + 1, error)) return false;
    return true;
  }
  v->raw = c.here();
  c.skip(static_cast<std::size_t>(v->count) * min_bytes);
  return true;
}

}  // namespace

std::string_view value_type_name(ValueType t) {
  static constexpr std::string_view names[] = {"u8",  "i8",   "u16",    "i16",    "u32", "i32", "f32",
                                               "bool", "string", "array", "u64", "i64", "f64"};
  auto i = static_cast<std::size_t>(t);
  return i < std::size(names) ? names[i] : "unknown";
}

double Value::number_at(std::uint64_t k) const {
  if (!raw || k >= count) return 0;
  Value v;
  Cursor c(std::string_view(reinterpret_cast<const char*>(raw) + k * fixed_size(element), fixed_size(element)));
  read_scalar(c, element, &v);
  return element == ValueType::f32 || element == ValueType::f64 ? v.f : static_cast<double>(v.i);
}

std::int64_t Value::integer_at(std::uint64_t k) const {
  if (!raw || k >= count) return 0;
  Value v;
  Cursor c(std::string_view(reinterpret_cast<const char*>(raw) + k * fixed_size(element), fixed_size(element)));
  read_scalar(c, element, &v);
  return element == ValueType::f32 || element == ValueType::f64 ? static_cast<std::int64_t>(v.f) : v.i;
}

std::unique_ptr<File> File::open(const std::string& path, std::string* error) {
  auto mapping = MappedFile::open(path, error);
  if (!mapping) return nullptr;
  std::unique_ptr<File> f(new File());
  std::string_view bytes = mapping->bytes();
  f->mapping_ = std::move(mapping);
  if (!f->parse_all(bytes, path, error)) return nullptr;
  return f;
}

std::unique_ptr<File> File::parse(std::string_view bytes, const std::string& name, std::string* error) {
  std::unique_ptr<File> f(new File());
  if (!f->parse_all(bytes, name, error)) return nullptr;
  return f;
}

bool File::parse_all(std::string_view bytes, const std::string& name, std::string* error) {
  auto fail = [&](const std::string& what) {
    if (error) *error = name + ": " + what;
    return false;
  };
  Cursor c(bytes);
  char magic[4];
  if (!c.take(magic, 4) || std::memcmp(magic, "GGUF", 4) != 0)
    return fail("not a GGUF file (the first four bytes are not \"GGUF\")");
  if (!c.u32(&version_)) return fail("truncated header (no version)");
  if (version_ == 0x03000000u || version_ == 0x02000000u) return fail("big-endian GGUF files are not supported");
  if (version_ != 2 && version_ != 3)
    return fail("GGUF version " + std::to_string(version_) + " is not supported (only 2 and 3)");
  std::uint64_t n_tensors, n_kv;
  if (!c.u64(&n_tensors) || !c.u64(&n_kv)) return fail("truncated header (no tensor or key/value count)");
  // A key/value takes at least 13 bytes, a tensor info at least 28: refuse counts the file
  // cannot hold before allocating anything for them.
  if (n_kv > c.left() / 13)
    return fail("header claims " + std::to_string(n_kv) + " key/value pairs; the file is only " +
                std::to_string(bytes.size()) + " bytes");
  if (n_tensors > c.left() / 28)
    return fail("header claims " + std::to_string(n_tensors) + " tensors; the file is only " +
                std::to_string(bytes.size()) + " bytes");

  kv_.resize(static_cast<std::size_t>(n_kv));
  std::string why;
  for (std::uint64_t i = 0; i < n_kv; ++i) {
    KeyValue& kv = kv_[i];
    const std::size_t at = c.pos();
    if (!c.str(&kv.key)) return fail("key/value " + std::to_string(i) + " at " + hex_offset(at) + ": key runs past the end of the file");
    std::uint32_t type;
    if (!c.u32(&type)) return fail("key '" + std::string(kv.key) + "': truncated before its type");
    if (!read_value(c, static_cast<ValueType>(type), &kv.value, 0, &why))
      return fail("key '" + std::string(kv.key) + "': " + why);
  }

  if (const Value* a = find("general.alignment")) {
    if (a->type != ValueType::u32 || a->u == 0 || (a->u & (a->u - 1)) != 0)
      return fail("general.alignment must be a power of two (u32)");
    alignment_ = a->u;
  }

  tensors_.resize(static_cast<std::size_t>(n_tensors));
  std::unordered_set<std::string_view> names;
  for (std::uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo& t = tensors_[i];
    const std::size_t at = c.pos();
    if (!c.str(&t.name)) return fail("tensor " + std::to_string(i) + " at " + hex_offset(at) + ": name runs past the end of the file");
    const std::string tn = "tensor '" + std::string(t.name) + "': ";
    if (!names.insert(t.name).second) return fail(tn + "appears twice");
    if (!c.u32(&t.n_dims)) return fail(tn + "truncated");
    if (t.n_dims == 0 || t.n_dims > 4) return fail(tn + std::to_string(t.n_dims) + " dimensions (1 to 4 allowed)");
    for (std::uint32_t d = 0; d < t.n_dims; ++d)
      if (!c.u64(&t.dims[d])) return fail(tn + "truncated in its shape");
    std::uint32_t type;
    if (!c.u32(&type) || !c.u64(&t.offset)) return fail(tn + "truncated");
    const GgmlTypeInfo* info = ggml_type_info(type);
    if (!info) return fail(tn + "unknown tensor type " + std::to_string(type));
    t.type = info->type;
    t.elements = 1;
    for (std::uint32_t d = 0; d < 4; ++d)
      if (__builtin_mul_overflow(t.elements, t.dims[d], &t.elements))
        return fail(tn + "shape overflows 64 bits");
    if (t.dims[0] % info->block_elements != 0)
      return fail(tn + "rows of " + std::to_string(t.dims[0]) + " are not a whole number of " +
                  std::string(info->name) + " blocks (" + std::to_string(info->block_elements) + ")");
    if (__builtin_mul_overflow(t.elements / info->block_elements, std::uint64_t{info->block_bytes}, &t.bytes))
      return fail(tn + "size overflows 64 bits");
  }

  // The data section starts at the next multiple of the alignment.
  std::uint64_t data = c.pos();
  data = (data + alignment_ - 1) / alignment_ * alignment_;
  if (n_tensors > 0 && data > bytes.size()) return fail("truncated before the tensor data");
  data_offset_ = data;
  const std::uint64_t data_size = bytes.size() > data ? bytes.size() - data : 0;
  for (TensorInfo& t : tensors_) {
    const std::string tn = "tensor '" + std::string(t.name) + "': ";
    if (t.offset % alignment_ != 0)
      return fail(tn + "data offset " + std::to_string(t.offset) + " is not aligned to " + std::to_string(alignment_));
    if (t.offset > data_size || t.bytes > data_size - t.offset)
      return fail(tn + "data [" + std::to_string(data + t.offset) + ", " + std::to_string(data + t.offset + t.bytes) +
                  ") lies outside the file (" + std::to_string(bytes.size()) + " bytes)");
    t.data = reinterpret_cast<const unsigned char*>(bytes.data()) + data + t.offset;
  }
  return true;
}

const Value* File::find(std::string_view key) const {
  for (const auto& kv : kv_)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

bool File::get_string(std::string_view key, std::string_view* out) const {
  const Value* v = find(key);
  if (!v || v->type != ValueType::string) return false;
  *out = v->str;
  return true;
}

bool File::get_uint(std::string_view key, std::uint64_t* out) const {
  const Value* v = find(key);
  if (!v) return false;
  switch (v->type) {
    case ValueType::u8: case ValueType::u16: case ValueType::u32: case ValueType::u64:
      *out = v->u;
      return true;
    case ValueType::i8: case ValueType::i16: case ValueType::i32: case ValueType::i64:
      if (v->i < 0) return false;
      *out = static_cast<std::uint64_t>(v->i);
      return true;
    default:
      return false;
  }
}

bool File::get_float(std::string_view key, double* out) const {
  const Value* v = find(key);
  if (!v) return false;
  if (v->type == ValueType::f32 || v->type == ValueType::f64) *out = v->f;
  else if (fixed_size(v->type) && v->type != ValueType::boolean) *out = static_cast<double>(v->i);
  else return false;
  return true;
}

const TensorInfo* File::tensor(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace ponder::gguf
