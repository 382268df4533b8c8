#pragma once
// The on-disk cache of tags, so that a second run on the same workspace does not reparse.
//
// One file per source identity in the cache folder. Entries are found by path when the file's
// size and stamp (mtime or blob id) are unchanged — no read at all — and otherwise by content
// hash, so a touched-but-unchanged file or a renamed one is not reparsed either. The file
// records a fingerprint of the tag queries and of its own format: a new ponder with different
// queries ignores an old cache instead of serving stale tags.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/source.h"
#include "agent/tags.h"

namespace ponder::agent {

struct CachedFile {
  std::uint64_t size = 0;
  std::uint64_t stamp = 0;
  FileTags tags;
  bool taken = false;  // moved out by take()
};

/// What save() writes for one file: its identity on the source and its tags (not copied).
struct CacheRecord {
  std::uint64_t size = 0;
  std::uint64_t stamp = 0;
  const FileTags* tags = nullptr;
};

class TagCache {
 public:
  /// `dir`: the cache folder (created on save). `identity`: Source::identity(). `threads`:
  /// how many threads load() decodes with (0 = every core).
  TagCache(std::string dir, const std::string& identity, unsigned threads = 0);

  /// Loads the cache file if it exists and is valid; a missing, truncated, corrupt or
  /// out-of-date file is ignored (logged), never an error for the caller.
  void load();
  /// Moves the tags of `file` out of the cache if its size and stamp match (the file is
  /// unchanged); false otherwise. Each entry can be taken once.
  bool take(const SourceFile& file, FileTags* out);
  /// The tags of some cached file (not taken) with this content hash and language, if any.
  const FileTags* by_content(std::uint64_t hash, Language lang) const;
  /// Writes `files` (replacing the whole cache file atomically: temp file + rename).
  /// Returns false with `error` set when the folder or file cannot be written.
  bool save(const std::vector<CacheRecord>& files, std::string* error) const;

  const std::string& path() const { return path_; }
  std::size_t size() const { return entries_.size(); }

 private:
  std::string dir_;
  unsigned threads_;
  std::string path_;
  std::vector<CachedFile> entries_;
  std::unordered_map<std::string, std::size_t> by_path_;
  std::unordered_map<std::uint64_t, std::size_t> by_hash_;
};

/// Fingerprint of the cache format and every language's tag query.
std::uint64_t tag_format_fingerprint();

}  // namespace ponder::agent
