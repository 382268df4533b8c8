#pragma once
// The workspace the language server serves: its root folder, the index of its files, and the
// documents the editor has open (their text, version and incrementally updated tags).
//
// Paths: documents are keyed by their path relative to the root ('/'-separated) when they are
// inside it, else by their absolute path (such files are served, but never indexed or edited).
// The index reads open documents' text, not the disk's, so its tags and the text it returns
// agree with what the user sees.
//
// Threads: one thread (the server's) changes documents and the index; any thread may read
// (document(), read(), symbol lookups) — they take the locks themselves. Index queries from
// other threads go through index_lock() held shared.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "agent/document.h"
#include "agent/index.h"

namespace ponder::agent {

/// A copy of an open document's state.
struct DocumentSnapshot {
  std::string key;        // relative path (inside the root) or absolute path
  std::int64_t version = 0;
  std::string text;
  Language language = Language::unknown;
  bool in_root = false;
};

/// What is under a position: the name there (a definition's or a reference's) and the
/// innermost definition that contains it.
struct SymbolAt {
  std::optional<Tag> name;
  std::optional<Tag> enclosing;
};

class Workspace {
 public:
  explicit Workspace(std::filesystem::path root);
  ~Workspace();

  const std::filesystem::path& root() const { return root_; }
  /// The key of an absolute path (see above).
  std::string key_of(const std::filesystem::path& absolute) const;
  std::filesystem::path absolute(std::string_view key) const;

  /// Indexes the root (slow on a large tree: call it off the server's thread). Open documents'
  /// text wins over the disk's. False with `error` when the root cannot be listed.
  bool build_index(const IndexOptions& options, IndexStats* stats, std::string* error);
  bool index_ready() const;
  /// The index (null until build_index() finished) and the lock readers hold shared.
  const Index* index() const { return index_.get(); }
  std::shared_mutex& index_lock() const { return index_mu_; }

  // Documents. Each returns false with `error` (and changes nothing) when the document is not
  // open (edits), the range is outside it, or the version does not increase.
  bool open(const std::string& key, std::int64_t version, std::string text, std::string* error);
  bool edit(const std::string& key, std::int64_t version, std::uint32_t start, std::uint32_t end,
            std::string_view replacement, std::string* error);
  bool replace(const std::string& key, std::int64_t version, std::string text, std::string* error);
  /// Closes it; its file's tags go back to what is on disk. False when it was not open.
  bool close(const std::string& key);
  std::optional<DocumentSnapshot> document(std::string_view key) const;
  std::vector<std::string> open_keys() const;
  /// The tags of open document `key` (empty when it is not open).
  std::vector<Tag> tags(std::string_view key) const;

  /// Brings the index up to date with the open documents' edits. Edits only mark their document
  /// (a keystroke must stay cheap); whoever reads the index calls this first — definitions()
  /// does. Thread-safe.
  void sync_index() const;

  /// A file changed, appeared or went away on disk: the index follows unless it is open.
  void file_changed(const std::string& key);

  /// The text of a file: the open document's, else the disk's (a ReadText for tasks).
  std::optional<std::string> read(const std::filesystem::path& absolute) const;

  /// The symbol at byte `offset` of open document `key`.
  SymbolAt symbol_at(std::string_view key, std::uint32_t offset) const;
  /// Definitions of `name` in the workspace (from the index; the open documents' tags when the
  /// index is not built yet), as (key, tag).
  std::vector<std::pair<std::string, Tag>> definitions(std::string_view name) const;

 private:
  class OverlaySource;
  struct Open {
    std::int64_t version;
    std::unique_ptr<Document> doc;
    bool in_root;
  };
  void reindex_from_disk(const std::string& key);  // index_mu_ held exclusively
  void publish(const std::string& key, FileTags tags) const;

  std::filesystem::path root_;
  mutable std::shared_mutex docs_mu_;
  std::map<std::string, Open, std::less<>> docs_;
  mutable std::shared_mutex index_mu_;
  std::unique_ptr<Index> index_;
  std::shared_ptr<OverlaySource> source_;
  mutable std::mutex dirty_mu_;   // guards dirty_
  mutable std::set<std::string> dirty_;  // open documents edited since their tags went to the index
  mutable std::mutex sync_mu_;    // one sync_index() at a time (a late one must not win)
};

}  // namespace ponder::agent
