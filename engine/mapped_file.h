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

/// How much of a file mapping the MMU maps in 2 MiB pages.
struct HugePageReport {
  bool tried = false;           // the range was large enough and the kernel took the advice
  std::size_t resident = 0;     // bytes of the mapping resident (smaps Rss) before / after
  std::size_t huge_before = 0;  // bytes mapped by 2 MiB pages (smaps FilePmdMapped), before
  std::size_t huge_after = 0;   // ... and after
  bool scanned = false;           // the blocks mapped with 4 KiB pages were found (Linux 6.7+)
  std::size_t small_blocks = 0;   // 2 MiB blocks of the range mapped with 4 KiB pages (if scanned)
  std::size_t blocks_reread = 0;  // 2 MiB blocks read again into 2 MiB pages (some twice)
};

/// Faults in [data, data + bytes), part of a read-only file mapping (weights about to be read at
/// every decode step), and where the page cache holds 2 MiB blocks of it in smaller pieces, so
/// that the MMU maps them with 4 KiB pages, has the kernel read those blocks again into 2 MiB
/// pages and maps those: one TLB entry per 2 MiB instead of 512. A file written shortly before (a
/// model just generated or downloaded) sits in small pieces, and one cached long ago can have
/// some; read back through a mapping advised MADV_HUGEPAGE a block comes in one 2 MiB piece,
/// where the kernel and the file system allow. From Linux 6.7 the blocks mapped with 4 KiB
/// pages are found by the PAGEMAP_SCAN ioctl and only those are read again; before, the whole
/// range is, where under 90% of the mapping is in 2 MiB pages. Linux only (elsewhere, or below
/// 64 MiB: nothing; memory that is not a file's: faulted in only). The first 64 MiB read again
/// are a trial, so that where the file system cannot cache in 2 MiB pieces the cost is one read
/// of 64 MiB. Pages that are dirty or mapped by another process stay as they are.
HugePageReport map_in_huge_pages(const unsigned char* data, std::size_t bytes);

namespace detail {
/// Tests: map_in_huge_pages as before Linux 6.7 (no PAGEMAP_SCAN) when false. Default true.
void use_pagemap_scan(bool on);
}  // namespace detail

/// Memory of the process's own that is read over and over in long runs (a KV cache): an
/// anonymous mapping aligned to 2 MiB and advised MADV_HUGEPAGE, so that where the kernel's
/// transparent huge pages allow ("always" or "madvise"), it is mapped in 2 MiB pages as it is
/// first written: one TLB entry per 2 MiB instead of 512 (decode attention after 32K positions
/// reads each layer's cache ~6% slower in 4 KiB pages: bench/RESULTS.md). Pages arrive zeroed
/// when first touched; untouched ones cost nothing, but a touched byte brings its whole 2 MiB, and
/// a first touch costs more than a 4 KiB page's (the kernel may compact memory to find 2 MiB).
/// Elsewhere than Linux: plain zeroed memory. Move-only.
class PageBuffer {
 public:
  PageBuffer() = default;
  /// `bytes` of memory; an empty buffer (data() null) when the system refuses it or bytes is 0.
  explicit PageBuffer(std::size_t bytes);
  ~PageBuffer();
  PageBuffer(PageBuffer&& other) noexcept;
  PageBuffer& operator=(PageBuffer&& other) noexcept;
  PageBuffer(const PageBuffer&) = delete;
  PageBuffer& operator=(const PageBuffer&) = delete;

  unsigned char* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  void release();
  unsigned char* data_ = nullptr;
  std::size_t size_ = 0;      // bytes asked for
  std::size_t mapped_ = 0;    // bytes mapped at data_ (size_ rounded up to 2 MiB)
};

}  // namespace ponder
