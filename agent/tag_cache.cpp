#include "agent/tag_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "engine/log.h"

namespace ponder::agent {
namespace {

constexpr char kMagic[8] = {'P', 'N', 'D', 'R', 'T', 'A', 'G', 'S'};
constexpr char kEndMagic[8] = {'P', 'N', 'D', 'R', 'T', 'E', 'N', 'D'};
constexpr std::uint32_t kFormatVersion = 3;
constexpr std::size_t kHeaderSize = 24;  // magic, fingerprint, count
constexpr std::size_t kFooterSize = 24;  // table offset, count, end mark

// Little writer/reader for the cache's binary layout. The reader checks every length against
// the bytes that are left, so a truncated or corrupt file is detected, not read out of bounds.
// Writes the cache's binary layout through a buffer to a FILE.
class Writer {
 public:
  explicit Writer(std::FILE* out) : out_(out) { buf_.reserve(kFlushAt + 4096); }
  ~Writer() { flush(); }
  void u8(std::uint8_t v) { buf_.push_back(static_cast<char>(v)); maybe_flush(); }
  void u32(std::uint32_t v) { raw(&v, 4); }
  void u64(std::uint64_t v) { raw(&v, 8); }
  void str(const std::string& s) {
    u32(static_cast<std::uint32_t>(s.size()));
    buf_.append(s);
    maybe_flush();
  }
  void range(const Range& r) {
    u32(r.start_byte); u32(r.end_byte);
    u32(r.start.line); u32(r.start.column); u32(r.end.line); u32(r.end.column);
  }
  std::uint64_t position() const { return written_ + buf_.size(); }
  bool flush() {
    written_ += buf_.size();
    if (!buf_.empty() && std::fwrite(buf_.data(), 1, buf_.size(), out_) != buf_.size()) ok_ = false;
    buf_.clear();
    return ok_;
  }

 private:
  static constexpr std::size_t kFlushAt = 1 << 20;
  void raw(const void* p, std::size_t n) {
    buf_.append(static_cast<const char*>(p), n);
    maybe_flush();
  }
  void maybe_flush() {
    if (buf_.size() >= kFlushAt) flush();
  }
  std::FILE* out_;
  std::string buf_;
  std::uint64_t written_ = 0;
  bool ok_ = true;
};

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool ok() const { return ok_; }
  void fail() { ok_ = false; }
  std::uint8_t u8() { std::uint8_t v = 0; raw(&v, 1); return v; }
  std::uint32_t u32() { std::uint32_t v = 0; raw(&v, 4); return v; }
  std::uint64_t u64() { std::uint64_t v = 0; raw(&v, 8); return v; }
  std::string str() {
    std::uint32_t n = u32();
    if (!ok_ || n > data_.size()) { ok_ = false; return {}; }
    std::string s(data_.substr(0, n));
    data_.remove_prefix(n);
    return s;
  }
  Range range() {
    Range r;
    r.start_byte = u32(); r.end_byte = u32();
    r.start.line = u32(); r.start.column = u32(); r.end.line = u32(); r.end.column = u32();
    return r;
  }
  std::size_t left() const { return data_.size(); }

 private:
  void raw(void* p, std::size_t n) {
    if (!ok_ || data_.size() < n) { ok_ = false; return; }
    std::memcpy(p, data_.data(), n);
    data_.remove_prefix(n);
  }
  std::string_view data_;
  bool ok_ = true;
};

// One file's entry; false when it is malformed.
bool decode_entry(Reader& r, CachedFile* e) {
  e->size = r.u64();
  e->stamp = r.u64();
  FileTags& f = e->tags;
  f.path = r.str();
  f.language = static_cast<Language>(r.u8());
  f.content_hash = r.u64();
  f.bytes = r.u64();
  f.lines = r.u32();
  f.has_syntax_errors = r.u8() != 0;
  std::uint32_t ntags = r.u32();
  // Each tag takes at least 61 bytes: a count beyond that is corruption, not a reason to
  // allocate.
  if (!r.ok() || ntags > r.left() / 61 || static_cast<int>(f.language) >= kLanguageCount) return false;
  f.tags.resize(ntags);
  for (Tag& t : f.tags) {
    t.name = r.str();
    std::uint8_t kind = r.u8();
    if (kind >= kTagKindCount) return false;
    t.kind = static_cast<TagKind>(kind);
    t.range = r.range();
    t.name_range = r.range();
    t.scope = r.str();
    t.signature = r.str();
    t.qualifier_size = static_cast<std::uint16_t>(r.u32());
  }
  return r.ok();
}

std::string hex(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

std::uint64_t tag_format_fingerprint() {
  static const std::uint64_t fp = [] {
    std::string all = "format" + std::to_string(kFormatVersion);
    for (int i = 1; i < kLanguageCount; ++i) all += tag_query_source(static_cast<Language>(i));
    return hash_content(all);
  }();
  return fp;
}

TagCache::TagCache(std::string dir, const std::string& identity, unsigned threads)
    : dir_(std::move(dir)), threads_(threads ? threads : std::max(1u, std::thread::hardware_concurrency())) {
  path_ = dir_ + "/tags-" + hex(hash_content(identity)) + ".bin";
}

void TagCache::load() {
  entries_.clear();
  by_path_.clear();
  by_hash_.clear();
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;  // no cache yet
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
    ::close(fd);
    return;
  }
  const std::size_t mapped_size = static_cast<std::size_t>(st.st_size);
  void* mapped = ::mmap(nullptr, mapped_size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapped == MAP_FAILED) {
    log::warn("tag cache ", path_, ": cannot map it: ", std::strerror(errno));
    return;
  }
  ::madvise(mapped, mapped_size, MADV_SEQUENTIAL);
  struct Unmap {
    void* p;
    std::size_t n;
    ~Unmap() { ::munmap(p, n); }
  } unmap{mapped, mapped_size};
  std::string_view data(static_cast<const char*>(mapped), mapped_size);
  if (data.size() < 24 || std::memcmp(data.data(), kMagic, 8) != 0) {
    log::warn("tag cache ", path_, ": not a ponder tag cache; ignoring it");
    return;
  }
  Reader r(data.substr(8));
  if (r.u64() != tag_format_fingerprint()) {
    log::info("tag cache ", path_, ": made by another version of the tag queries; rebuilding");
    return;
  }
  const std::uint64_t count = r.u64();
  // The footer: the offset of each entry, the table's own offset, the count again, an end mark.
  // Every number is checked against the file's size before anything is allocated for it.
  auto corrupt = [&] { log::warn("tag cache ", path_, ": truncated or corrupt; ignoring it"); };
  if (data.size() < kHeaderSize + kFooterSize ||
      std::memcmp(data.data() + data.size() - 8, kEndMagic, 8) != 0)
    return corrupt();
  Reader footer(data.substr(data.size() - kFooterSize));
  const std::uint64_t table = footer.u64();
  if (footer.u64() != count || table < kHeaderSize || table > data.size() - kFooterSize ||
      (data.size() - kFooterSize - table) / 8 != count || (data.size() - kFooterSize - table) % 8 != 0)
    return corrupt();
  std::vector<std::uint64_t> offsets(static_cast<std::size_t>(count) + 1);
  for (std::uint64_t i = 0; i < count; ++i) std::memcpy(&offsets[i], data.data() + table + 8 * i, 8);
  offsets[count] = table;
  for (std::uint64_t i = 0; i < count; ++i)
    if (offsets[i] < kHeaderSize || offsets[i] > offsets[i + 1]) return corrupt();

  // Entries are independent: decode them on every allowed thread.
  std::vector<CachedFile> entries(static_cast<std::size_t>(count));
  std::atomic<bool> ok{true};
  auto decode = [&](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to && ok.load(std::memory_order_relaxed); ++i) {
      Reader e(data.substr(offsets[i], offsets[i + 1] - offsets[i]));
      if (!decode_entry(e, &entries[i]) || e.left() != 0) ok = false;
    }
  };
  unsigned threads = std::max(1u, std::min<unsigned>(threads_, static_cast<unsigned>(count / 64 + 1)));
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t)
    pool.emplace_back(decode, count * t / threads, count * (t + 1) / threads);
  decode(0, count / threads);
  for (auto& t : pool) t.join();
  if (!ok) return corrupt();
  entries_ = std::move(entries);
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    by_path_.emplace(entries_[i].tags.path, i);
    by_hash_.emplace(entries_[i].tags.content_hash, i);
  }
}

bool TagCache::take(const SourceFile& file, FileTags* out) {
  auto it = by_path_.find(file.path);
  if (it == by_path_.end()) return false;
  CachedFile& e = entries_[it->second];
  if (e.taken || e.size != file.size || e.stamp != file.stamp) return false;
  *out = std::move(e.tags);
  e.taken = true;
  return true;
}

const FileTags* TagCache::by_content(std::uint64_t hash, Language lang) const {
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return nullptr;
  const CachedFile& e = entries_[it->second];
  return !e.taken && e.tags.language == lang ? &e.tags : nullptr;
}

bool TagCache::save(const std::vector<CacheRecord>& files, std::string* error) const {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    if (error) *error = dir_ + ": " + ec.message();
    return false;
  }
  std::string tmp = path_ + ".tmp" + std::to_string(::getpid());
  std::FILE* out = std::fopen(tmp.c_str(), "wb");
  if (!out) {
    if (error) *error = tmp + ": " + std::strerror(errno);
    return false;
  }
  bool ok;
  {
    Writer w(out);
    for (char c : kMagic) w.u8(static_cast<std::uint8_t>(c));
    w.u64(tag_format_fingerprint());
    w.u64(files.size());
    std::vector<std::uint64_t> offsets;
    offsets.reserve(files.size());
    for (const CacheRecord& e : files) {
      offsets.push_back(w.position());
      const FileTags& f = *e.tags;
      w.u64(e.size);
      w.u64(e.stamp);
      w.str(f.path);
      w.u8(static_cast<std::uint8_t>(f.language));
      w.u64(f.content_hash);
      w.u64(f.bytes);
      w.u32(f.lines);
      w.u8(f.has_syntax_errors ? 1 : 0);
      w.u32(static_cast<std::uint32_t>(f.tags.size()));
      for (const Tag& t : f.tags) {
        w.str(t.name);
        w.u8(static_cast<std::uint8_t>(t.kind));
        w.range(t.range);
        w.range(t.name_range);
        w.str(t.scope);
        w.str(t.signature);
        w.u32(t.qualifier_size);
      }
    }
    const std::uint64_t table = w.position();
    for (std::uint64_t off : offsets) w.u64(off);
    w.u64(table);
    w.u64(files.size());
    for (char c : kEndMagic) w.u8(static_cast<std::uint8_t>(c));
    ok = w.flush();
  }
  ok = (std::fclose(out) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path_.c_str()) != 0) {
    if (error) *error = path_ + ": " + std::strerror(errno);
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace ponder::agent
