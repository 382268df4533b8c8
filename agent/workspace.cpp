#include "agent/workspace.h"

#include <fstream>
#include <mutex>
#include <sstream>

#include "agent/ignore.h"
#include "agent/language.h"
#include "agent/privacy.h"

namespace ponder::agent {

// The root's files, with open documents' text in place of the disk's.
class Workspace::OverlaySource : public Source {
 public:
  OverlaySource(std::unique_ptr<Source> disk, const Workspace* ws) : disk_(std::move(disk)), ws_(ws) {}
  std::string identity() const override { return disk_->identity(); }
  std::vector<SourceFile> list(const ListOptions& options, std::vector<Skipped>* skipped) override {
    return disk_->list(options, skipped);
  }
  bool read(std::string_view path, std::string* out, std::string* error) const override {
    {
      std::shared_lock lock(ws_->docs_mu_);
      auto it = ws_->docs_.find(path);
      if (it != ws_->docs_.end()) {
        *out = it->second.doc->text();
        return true;
      }
    }
    return disk_->read(path, out, error);
  }

 private:
  std::unique_ptr<Source> disk_;
  const Workspace* ws_;
};

namespace {
std::optional<std::string> read_disk(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return std::move(s).str();
}

bool indexable(std::string_view key) {
  if (detect_language(key) == Language::unknown || is_secret_file(key)) return false;
  std::size_t at = 0;
  while (true) {  // no component in a folder the index never enters (node_modules, .git, ...)
    const std::size_t slash = key.find('/', at);
    if (slash == std::string_view::npos) return true;
    if (builtin_ignored_dir(key.substr(at, slash - at))) return false;
    at = slash + 1;
  }
}
}  // namespace

Workspace::Workspace(std::filesystem::path root) : root_(std::move(root).lexically_normal()) {
  if (root_.has_filename() == false && root_.has_parent_path()) root_ = root_.parent_path();
}

Workspace::~Workspace() = default;

std::string Workspace::key_of(const std::filesystem::path& absolute) const {
  const std::filesystem::path p = absolute.lexically_normal();
  const std::filesystem::path rel = p.lexically_relative(root_);
  if (!rel.empty() && *rel.begin() != ".." && rel.is_relative() && rel != ".") return rel.generic_string();
  return p.generic_string();
}

std::filesystem::path Workspace::absolute(std::string_view key) const {
  const std::filesystem::path p(key);
  return p.is_absolute() ? p : (root_ / p).lexically_normal();
}

bool Workspace::build_index(const IndexOptions& options, IndexStats* stats, std::string* error) {
  std::unique_ptr<Source> disk = open_directory(root_.string(), error);
  if (!disk) return false;
  auto source = std::make_shared<OverlaySource>(std::move(disk), this);
  std::unique_ptr<Index> index = Index::build(source, options, stats);
  std::unique_lock index_lock(index_mu_);
  std::shared_lock docs_lock(docs_mu_);
  // Documents edited while the index was built: their tags as they are now.
  for (const auto& [key, open] : docs_)
    if (open.in_root && open.doc->language() != Language::unknown) index->set_file(open.doc->file_tags());
  index_ = std::move(index);
  source_ = std::move(source);
  return true;
}

bool Workspace::index_ready() const {
  std::shared_lock lock(index_mu_);
  return index_ != nullptr;
}

void Workspace::publish(const std::string& key, FileTags tags) const {
  // Never called with docs_mu_ held: index readers take docs_mu_ (the overlay) under index_mu_.
  std::unique_lock lock(index_mu_);
  if (index_ && tags.language != Language::unknown && indexable(key)) index_->set_file(std::move(tags));
}

bool Workspace::open(const std::string& key, std::int64_t version, std::string text, std::string* error) {
  const bool in_root = !std::filesystem::path(key).is_absolute();
  auto doc = std::make_unique<Document>(key, detect_language(key, std::string_view(text).substr(0, 256)), std::move(text));
  {
    std::unique_lock lock(docs_mu_);
    auto it = docs_.find(key);
    if (it != docs_.end() && version < it->second.version) {
      *error = key + ": opened at version " + std::to_string(version) + ", older than the open version " +
               std::to_string(it->second.version);
      return false;
    }
    docs_[key] = Open{version, std::move(doc), in_root};
  }
  if (in_root) {
    FileTags tags;
    {
      std::shared_lock lock(docs_mu_);
      tags = docs_.find(key)->second.doc->file_tags();
    }
    publish(key, std::move(tags));
  }
  return true;
}

bool Workspace::edit(const std::string& key, std::int64_t version, std::uint32_t start, std::uint32_t end,
                     std::string_view replacement, std::string* error) {
  {
    std::unique_lock lock(docs_mu_);
    auto it = docs_.find(key);
    if (it == docs_.end()) {
      *error = key + " is not open";
      return false;
    }
    if (version < it->second.version) {
      *error = key + ": change for version " + std::to_string(version) + " after version " +
               std::to_string(it->second.version);
      return false;
    }
    if (!it->second.doc->edit(start, end, replacement, error)) return false;
    it->second.version = version;
    if (!it->second.in_root) return true;
  }
  std::lock_guard lock(dirty_mu_);
  dirty_.insert(key);
  return true;
}

bool Workspace::replace(const std::string& key, std::int64_t version, std::string text, std::string* error) {
  std::uint32_t end = 0;
  {
    std::shared_lock lock(docs_mu_);
    auto it = docs_.find(key);
    if (it == docs_.end()) {
      *error = key + " is not open";
      return false;
    }
    end = static_cast<std::uint32_t>(it->second.doc->text().size());
  }
  // One edit over the whole text keeps the tree and the tags' incremental path.
  return edit(key, version, 0, end, text, error);
}

bool Workspace::close(const std::string& key) {
  bool in_root = false;
  {
    std::unique_lock lock(docs_mu_);
    auto it = docs_.find(key);
    if (it == docs_.end()) return false;
    in_root = it->second.in_root;
    docs_.erase(it);
  }
  if (in_root) file_changed(key);
  return true;
}

std::optional<DocumentSnapshot> Workspace::document(std::string_view key) const {
  std::shared_lock lock(docs_mu_);
  auto it = docs_.find(key);
  if (it == docs_.end()) return std::nullopt;
  return DocumentSnapshot{it->first, it->second.version, it->second.doc->text(), it->second.doc->language(),
                          it->second.in_root};
}

std::vector<std::string> Workspace::open_keys() const {
  std::shared_lock lock(docs_mu_);
  std::vector<std::string> keys;
  for (const auto& [key, open] : docs_) keys.push_back(key);
  return keys;
}

void Workspace::sync_index() const {
  std::lock_guard sync(sync_mu_);
  std::set<std::string> keys;
  {
    std::lock_guard lock(dirty_mu_);
    keys.swap(dirty_);
  }
  for (const std::string& key : keys) {
    FileTags tags;
    {
      std::shared_lock lock(docs_mu_);
      auto it = docs_.find(key);
      if (it == docs_.end()) continue;  // closed since: its file was re-read from disk
      tags = it->second.doc->file_tags();
    }
    publish(key, std::move(tags));
  }
}

std::vector<Tag> Workspace::tags(std::string_view key) const {
  std::shared_lock lock(docs_mu_);
  auto it = docs_.find(key);
  return it == docs_.end() ? std::vector<Tag>{} : it->second.doc->tags();
}

void Workspace::file_changed(const std::string& key) {
  {
    std::shared_lock lock(docs_mu_);
    if (docs_.count(key)) return;  // the editor's text wins
  }
  std::unique_lock lock(index_mu_);
  if (index_) reindex_from_disk(key);
}

void Workspace::reindex_from_disk(const std::string& key) {
  if (std::filesystem::path(key).is_absolute() || !indexable(key)) return;
  std::optional<std::string> text = read_disk(absolute(key));
  if (!text || looks_binary(*text)) {
    index_->remove_file(key);
    return;
  }
  Document doc(key, detect_language(key, std::string_view(*text).substr(0, 256)), std::move(*text));
  index_->set_file(doc.file_tags());
}

std::optional<std::string> Workspace::read(const std::filesystem::path& absolute) const {
  {
    std::shared_lock lock(docs_mu_);
    auto it = docs_.find(key_of(absolute));
    if (it != docs_.end()) return it->second.doc->text();
  }
  return read_disk(absolute);
}

SymbolAt Workspace::symbol_at(std::string_view key, std::uint32_t offset) const {
  SymbolAt at;
  std::shared_lock lock(docs_mu_);
  auto it = docs_.find(key);
  if (it == docs_.end()) return at;
  for (const Tag& tag : it->second.doc->tags()) {
    // Tags are sorted by start, outer before inner: the last containing definition is innermost.
    if (tag.range.start_byte > offset) break;
    if (is_definition(tag.kind) && offset < tag.range.end_byte) at.enclosing = tag;
    if (tag.name_range.start_byte <= offset && offset <= tag.name_range.end_byte) at.name = tag;
  }
  return at;
}

std::vector<std::pair<std::string, Tag>> Workspace::definitions(std::string_view name) const {
  sync_index();
  std::vector<std::pair<std::string, Tag>> out;
  {
    std::shared_lock lock(index_mu_);
    if (index_) {
      for (const SymbolRef& ref : index_->definitions(name)) out.emplace_back(ref.file->path, *ref.tag);
      return out;
    }
  }
  std::shared_lock lock(docs_mu_);
  for (const auto& [key, open] : docs_)
    for (const Tag& tag : open.doc->tags())
      if (is_definition(tag.kind) && tag.name == name) out.emplace_back(key, tag);
  return out;
}

}  // namespace ponder::agent
