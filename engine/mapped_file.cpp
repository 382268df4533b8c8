#include "engine/mapped_file.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <utility>
#include <vector>

namespace ponder {

std::unique_ptr<MappedFile> MappedFile::open(const std::string& path, std::string* error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (error) *error = path + ": " + std::strerror(errno);
    return nullptr;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (error) *error = path + ": not a regular file";
    ::close(fd);
    return nullptr;
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  const unsigned char* data = nullptr;
  if (size > 0) {
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      if (error) *error = path + ": cannot map: " + std::strerror(errno);
      ::close(fd);
      return nullptr;
    }
    data = static_cast<const unsigned char*>(p);
#ifdef MADV_HUGEPAGE
    // Model weights are streamed whole at every decode step: where the kernel can map the page
    // cache with 2 MiB pages, that is 512 times fewer TLB misses. Advice only; errors ignored.
    if (size >= (std::size_t{2} << 20)) ::madvise(p, size, MADV_HUGEPAGE);
#endif
  }
  ::close(fd);
  return std::unique_ptr<MappedFile>(new MappedFile(path, data, size));
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<unsigned char*>(data_), size_);
}

namespace {

constexpr std::uintptr_t kHuge = std::uintptr_t{2} << 20;

// Rss and FilePmdMapped (bytes) of the mapping of a file that holds `at`, from
// /proc/self/smaps; false when it cannot be read or `at` is not in a file's mapping.
bool smaps_of(std::uintptr_t at, std::size_t* rss, std::size_t* huge) {
  std::FILE* f = std::fopen("/proc/self/smaps", "r");
  if (!f) return false;
  char line[512];
  bool in = false, found = false;
  *rss = *huge = 0;
  while (std::fgets(line, sizeof line, f)) {
    unsigned long lo = 0, hi = 0, offset = 0, inode = 0;
    unsigned major = 0, minor = 0;
    char perms[8] = {};
    // A mapping's first line: "lo-hi perms offset major:minor inode path" (inode 0: not a file);
    // the others "Key: value kB".
    if (std::sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &lo, &hi, perms, &offset, &major, &minor, &inode) == 7) {
      if (in) break;
      in = at >= lo && at < hi && inode != 0;
      continue;
    }
    if (!in) continue;
    unsigned long kb = 0;
    if (std::sscanf(line, "Rss: %lu kB", &kb) == 1) *rss = kb << 10, found = true;
    else if (std::sscanf(line, "FilePmdMapped: %lu kB", &kb) == 1) *huge = kb << 10;
  }
  std::fclose(f);
  return found;
}

#if defined(__linux__) && defined(MADV_POPULATE_READ) && defined(MADV_PAGEOUT)
// The PAGEMAP_SCAN ioctl of /proc/self/pagemap (Linux 6.7; linux/fs.h's pm_scan_arg and
// page_region, written out here: Debian 12's headers predate them).
struct ScanRegion {
  std::uint64_t start, end, categories;
};
struct ScanArgs {
  std::uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  std::uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
constexpr std::uint64_t kPagePresent = 1u << 3, kPageHuge = 1u << 6;  // PAGE_IS_PRESENT, PAGE_IS_HUGE
constexpr unsigned long kPagemapScan = _IOWR('f', 16, ScanArgs);

std::atomic<bool> g_pagemap_scan{true};  // detail::use_pagemap_scan

// The 2 MiB blocks of [lo, hi) (aligned, faulted in) that hold pages this mapping maps with 4
// KiB pages (present, not PMD-mapped: PAGE_IS_HUGE is set only for PMD mappings), into *small;
// false where the kernel cannot tell (before 6.7).
bool small_blocks_of(std::uintptr_t lo, std::uintptr_t hi, std::vector<std::uintptr_t>* small) {
  small->clear();
  if (!g_pagemap_scan.load(std::memory_order_relaxed)) return false;
  const int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ScanRegion regions[256];
  ScanArgs args{};
  args.size = sizeof args;
  args.start = lo;
  args.end = hi;
  args.vec = reinterpret_cast<std::uintptr_t>(regions);
  args.vec_len = sizeof regions / sizeof regions[0];
  args.category_inverted = kPageHuge;               // not PMD-mapped ...
  args.category_mask = kPageHuge | kPagePresent;    // ... and present
  args.return_mask = kPagePresent;
  bool ok = true;
  while (args.start < hi) {
    const long n = ::ioctl(fd, kPagemapScan, &args);
    if (n < 0) {
      ok = false;
      break;
    }
    for (long i = 0; i < n; ++i)
      for (std::uintptr_t b = regions[i].start & ~(kHuge - 1); b < regions[i].end; b += kHuge)
        if (small->empty() || small->back() < b) small->push_back(b);
    if (args.walk_end <= args.start) break;  // no progress: stop rather than loop
    args.start = args.walk_end;
  }
  ::close(fd);
  return ok;
}
#endif

}  // namespace

void detail::use_pagemap_scan(bool on) {
#if defined(__linux__) && defined(MADV_POPULATE_READ) && defined(MADV_PAGEOUT)
  g_pagemap_scan.store(on, std::memory_order_relaxed);
#else
  (void)on;
#endif
}

HugePageReport map_in_huge_pages(const unsigned char* data, std::size_t bytes) {
  HugePageReport r;
#if defined(__linux__) && defined(MADV_POPULATE_READ) && defined(MADV_PAGEOUT)
  // Whole 2 MiB pages of the range only: the others cannot be mapped so.
  const std::uintptr_t lo = (reinterpret_cast<std::uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
  const std::uintptr_t hi = (reinterpret_cast<std::uintptr_t>(data) + bytes) & ~(kHuge - 1);
  constexpr std::uintptr_t kTrial = 32 * kHuge;  // 64 MiB
  if (hi <= lo || hi - lo < kTrial) return r;
  void* const begin = reinterpret_cast<void*>(lo);
  if (::madvise(begin, hi - lo, MADV_POPULATE_READ) != 0) return r;  // old kernel: as before
  if (!smaps_of(lo, &r.resident, &r.huge_before)) return r;
  r.tried = true;
  r.huge_after = r.huge_before;
  // A block is read again thus: dropped from the page cache and from this mapping (MADV_PAGEOUT:
  // its pages must be clean and not mapped elsewhere, else they stay), read again (in one 2 MiB
  // piece where the file system allows), this mapping's page tables there dropped
  // (MADV_DONTNEED: the page cache stays) and faulted in again: the second fault maps the new
  // piece whole.
  auto drop = [](std::uintptr_t from, std::uintptr_t to) {
    return ::madvise(reinterpret_cast<void*>(from), to - from, MADV_PAGEOUT) == 0;
  };
  auto refault = [](std::uintptr_t from, std::uintptr_t to) {
    void* p = reinterpret_cast<void*>(from);
    return ::madvise(p, to - from, MADV_POPULATE_READ) == 0 && ::madvise(p, to - from, MADV_DONTNEED) == 0 &&
           ::madvise(p, to - from, MADV_POPULATE_READ) == 0;
  };
  auto reread = [&](std::uintptr_t from, std::uintptr_t to) { return drop(from, to) && refault(from, to); };
  std::size_t rss = 0;
  std::vector<std::uintptr_t> small;
  if (small_blocks_of(lo, hi, &small)) {
    // Linux 6.7 or later: only the blocks mapped with 4 KiB pages are read again. A file
    // written shortly before is all in such blocks; one cached long ago can have some (a model
    // on the 2-core VM of bench/RESULTS.md, after a day of other work: 68 of its 780 blocks,
    // scattered; read again, its decode was 1-3% faster). The first 32 are a trial: where fewer
    // than half of them come back whole (a file system that cannot cache in 2 MiB pieces, or
    // pages another process maps) the rest are left as they are, so that the cost is one read
    // of 64 MiB. Then those still in small pieces are tried once more (here: 1 of 68 once, a
    // page the reclaim had passed over).
    r.scanned = true;
    r.small_blocks = small.size();
    std::size_t done = 0;
    for (; done < small.size(); ++done) {
      if (!reread(small[done], small[done] + kHuge)) break;
      ++r.blocks_reread;
      std::size_t trial_huge = 0;
      if (done + 1 == kTrial / kHuge && done + 1 < small.size() &&
          (!smaps_of(lo, &rss, &trial_huge) || trial_huge < r.huge_before + kTrial / 2)) {
        ++done;
        break;
      }
    }
    std::vector<std::uintptr_t> still;
    if (done == small.size() && r.blocks_reread > 0 && small_blocks_of(lo, hi, &still))
      for (std::uintptr_t b : still)
        if (reread(b, b + kHuge)) ++r.blocks_reread;
  } else if (r.huge_before < r.resident / 10 * 9) {
    // Before Linux 6.7 (no PAGEMAP_SCAN): where under 90% of the mapping is in 2 MiB pages, a
    // first 64 MiB is read again alone, and only if that gained the rest.
    std::size_t dropped_huge = 0, trial_huge = 0;
    if (!drop(lo, lo + kTrial) || !smaps_of(lo, &rss, &dropped_huge) || !refault(lo, lo + kTrial) ||
        !smaps_of(lo, &rss, &trial_huge))
      return r;
    r.blocks_reread = kTrial / kHuge;
    if (trial_huge >= dropped_huge + kTrial / 2 && reread(lo + kTrial, hi)) r.blocks_reread = (hi - lo) / kHuge;
  }
  smaps_of(lo, &rss, &r.huge_after);
  r.resident = rss;
#else
  (void)data, (void)bytes;
#endif
  return r;
}

PageBuffer::PageBuffer(std::size_t bytes) {
  if (bytes == 0) return;
#if defined(__linux__)
  // Map 2 MiB more than needed, then unmap what lies before the first 2 MiB boundary and after
  // the rounded-up size: the kernel can only use a 2 MiB page for a 2 MiB-aligned piece.
  if (bytes > SIZE_MAX - 2 * kHuge) return;
  const std::size_t mapped = (bytes + kHuge - 1) & ~(kHuge - 1);
  void* p = ::mmap(nullptr, mapped + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;
  const auto raw = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t lo = (raw + kHuge - 1) & ~(kHuge - 1);
  if (lo > raw) ::munmap(p, lo - raw);
  ::munmap(reinterpret_cast<void*>(lo + mapped), raw + kHuge - lo);
#ifdef MADV_HUGEPAGE
  ::madvise(reinterpret_cast<void*>(lo), mapped, MADV_HUGEPAGE);  // advice only: errors ignored
#endif
  data_ = reinterpret_cast<unsigned char*>(lo);
  mapped_ = mapped;
#else
  data_ = new (std::nothrow) unsigned char[bytes]();
  if (!data_) return;
  mapped_ = bytes;
#endif
  size_ = bytes;
}

void PageBuffer::release() {
  if (!data_) return;
#if defined(__linux__)
  ::munmap(data_, mapped_);
#else
  delete[] data_;
#endif
  data_ = nullptr;
  size_ = mapped_ = 0;
}

PageBuffer::~PageBuffer() { release(); }

PageBuffer::PageBuffer(PageBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, 0)) {}

PageBuffer& PageBuffer::operator=(PageBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, 0);
  }
  return *this;
}

}  // namespace ponder
