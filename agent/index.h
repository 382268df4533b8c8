#pragma once
// The workspace index: every file's tags, and the queries the rest of ponder asks of them.
//
// Threads: build() parses on all allowed cores. Afterwards, const queries may run concurrently
// with each other; set_file/remove_file must not run concurrently with anything else (the LSP
// server owns the index on its worker thread).
#include <cstdint>
#include <map>
#include <mutex>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "agent/source.h"
#include "agent/tags.h"

namespace ponder::agent {

struct IndexOptions {
  ListOptions list;
  unsigned threads = 0;     // parser threads; 0 = every core
  std::string cache_dir;    // where the tag cache lives; empty = no on-disk cache
};

struct IndexStats {
  std::size_t files = 0;             // files in the index
  std::size_t parsed = 0;            // of which parsed in this run
  std::size_t from_cache = 0;        // of which taken from the tag cache
  std::uint64_t bytes = 0;           // source bytes in the index
  std::uint64_t bytes_parsed = 0;    // source bytes parsed in this run
  std::size_t tags = 0;
  double list_seconds = 0;        // walking the source
  double cache_load_seconds = 0;  // reading the tag cache
  double parse_seconds = 0;       // reading, hashing, parsing and tagging files (all threads)
  double collect_seconds = 0;     // building the index's tables
  double cache_save_seconds = 0;  // writing the tag cache (when anything changed)
  bool cache_written = false;     // the cache file was rewritten in this run
  double total_seconds = 0;
  std::vector<Skipped> skipped;      // files left out, with the reason
  std::vector<Skipped> warnings;     // files indexed, with something to say (invalid UTF-8...)
};

/// A tag and the file it is in. Valid until that file is updated or removed.
struct SymbolRef {
  const FileTags* file;
  const Tag* tag;
};

class Index {
 public:
  /// Indexes every file of `source` (see Source::list). Bad files are skipped or parsed with a
  /// reason in `stats`; only an unusable source fails, and that is reported by list() itself.
  static std::unique_ptr<Index> build(std::shared_ptr<Source> source, const IndexOptions& options,
                                      IndexStats* stats = nullptr);

  /// Replaces (or adds) one file's tags, e.g. after an incremental reparse of an open document.
  void set_file(FileTags tags);
  /// Removes a file; false when it was not indexed.
  bool remove_file(std::string_view path);

  /// All indexed files, by path.
  const std::map<std::string, FileTags, std::less<>>& files() const { return files_; }
  const FileTags* file(std::string_view path) const;

  /// Definitions / references of `name` across the workspace, ordered by file then position.
  std::vector<SymbolRef> definitions(std::string_view name) const;
  std::vector<SymbolRef> references(std::string_view name) const;
  /// The innermost definition in `path` whose range contains `at`; null when none does.
  const Tag* enclosing_symbol(std::string_view path, Point at) const;
  /// The definitions of `path` in document order (each with its scope).
  std::vector<const Tag*> outline(std::string_view path) const;
  /// The source text of a tag's range, read from the source. nullopt with `error` set when the
  /// file cannot be read or has changed so that the range is out of bounds.
  std::optional<std::string> symbol_text(std::string_view path, const Tag& tag,
                                         std::string* error = nullptr) const;

  const Source& source() const { return *source_; }
  std::size_t tag_count() const;

 private:
  explicit Index(std::shared_ptr<Source> source) : source_(std::move(source)) {}
  // The name tables are built on the first definitions()/references() call (a repo map or a
  // symbol listing never needs them), then kept up to date by set_file/remove_file.
  void ensure_names() const;
  void add_names(const FileTags& f) const;
  void remove_names(const FileTags& f) const;

  std::shared_ptr<Source> source_;
  std::map<std::string, FileTags, std::less<>> files_;
  // name -> (file, tag index) for definitions and for references
  struct Entry {
    const FileTags* file;
    std::uint32_t tag;
  };
  // Keys view the name of one of their entries' tags (re-keyed when that file goes away).
  mutable std::mutex names_mutex_;
  mutable bool names_built_ = false;  // guarded by names_mutex_
  mutable std::unordered_map<std::string_view, std::vector<Entry>> defs_, refs_;
};

/// True when `text` looks binary (a NUL byte in its first 8 KiB).
bool looks_binary(std::string_view text);
/// Offset of the first invalid UTF-8 sequence in `text`, or npos when it is all valid.
std::size_t find_invalid_utf8(std::string_view text);

}  // namespace ponder::agent
