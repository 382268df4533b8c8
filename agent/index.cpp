#include "agent/index.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "agent/parser.h"
#include "agent/tag_cache.h"
#include "engine/log.h"

namespace ponder::agent {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// What one file became in a build.
struct Outcome {
  enum class Kind { pending, parsed, cached, skipped } kind = Kind::pending;
  FileTags tags;
  std::string note;  // skip reason or warning
  bool found_by_content = false;
};

}  // namespace

bool looks_binary(std::string_view text) {
  return std::memchr(text.data(), 0, std::min<std::size_t>(text.size(), 8192)) != nullptr;
}

std::size_t find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t n = text.size(), i = 0;
  while (i < n) {
    // ASCII fast path, 8 bytes at a time.
    if (i + 8 <= n) {
      std::uint64_t w;
      std::memcpy(&w, s + i, 8);
      if ((w & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    unsigned char c = s[i];
    if (c < 0x80) { ++i; continue; }
    std::size_t len;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return i;
    if (i + len > n) return i;
    for (std::size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
      return i;
    i += len;
  }
  return std::string_view::npos;
}

std::unique_ptr<Index> Index::build(std::shared_ptr<Source> source, const IndexOptions& options,
                                    IndexStats* stats_out) {
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  IndexStats stats;
  std::unique_ptr<Index> index(new Index(source));

  std::vector<SourceFile> files = source->list(options.list, &stats.skipped);
  stats.list_seconds = seconds_since(t0);

  std::unique_ptr<TagCache> cache;
  if (!options.cache_dir.empty()) {
    auto t_load = clock::now();
    cache = std::make_unique<TagCache>(options.cache_dir, source->identity(), options.threads);
    cache->load();
    stats.cache_load_seconds = seconds_since(t_load);
  }

  // Files whose size and stamp match the cache need not even be read.
  std::vector<Outcome> outcomes(files.size());
  std::vector<std::size_t> work;
  std::size_t stamp_hits = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (cache && cache->take(files[i], &outcomes[i].tags)) {
      ++stamp_hits;
      outcomes[i].kind = Outcome::Kind::cached;
      outcomes[i].tags.path = files[i].path;
    } else {
      work.push_back(i);
    }
  }

  // Parse the rest on every allowed core. Larger files first, so that one big file does not
  // keep a single core busy at the end.
  std::sort(work.begin(), work.end(),
            [&](std::size_t a, std::size_t b) { return files[a].size > files[b].size; });
  auto t_parse = clock::now();
  unsigned threads = options.threads ? options.threads : std::thread::hardware_concurrency();
  threads = std::max(1u, std::min<unsigned>(threads, static_cast<unsigned>(work.size())));
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    Parser parser;
    std::string text, error;
    for (;;) {
      std::size_t w = next.fetch_add(1, std::memory_order_relaxed);
      if (w >= work.size()) break;
      const SourceFile& f = files[work[w]];
      Outcome& out = outcomes[work[w]];
      error.clear();
      if (!source->read(f.path, &text, &error)) {
        out.kind = Outcome::Kind::skipped;
        out.note = "cannot read: " + error;
        continue;
      }
      if (text.size() > options.list.max_file_bytes) {  // grew since it was listed
        out.kind = Outcome::Kind::skipped;
        out.note = "too large (" + std::to_string(text.size()) + " bytes)";
        continue;
      }
      if (looks_binary(text)) {
        out.kind = Outcome::Kind::skipped;
        out.note = "binary content (NUL bytes)";
        continue;
      }
      Language lang = detect_language(f.path, text.substr(0, 128));
      std::uint64_t hash = hash_content(text);
      if (const FileTags* same = cache ? cache->by_content(hash, lang) : nullptr) {
        out.kind = Outcome::Kind::cached;
        out.found_by_content = true;
        out.tags = *same;
        out.tags.path = f.path;
        continue;
      }
      std::size_t bad = find_invalid_utf8(text);
      if (bad != std::string_view::npos)
        out.note = "invalid UTF-8 at byte " + std::to_string(bad) + " (parsed anyway)";
      if (!parser.index(lang, text, &out.tags, &error)) {
        out.kind = Outcome::Kind::skipped;
        out.note = error;
        continue;
      }
      out.kind = Outcome::Kind::parsed;
      out.tags.path = f.path;
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  stats.parse_seconds = seconds_since(t_parse);

  // Collect, in path order.
  auto t_collect = clock::now();
  // The cache is rewritten when it would change: a file parsed or found by content, or an
  // entry whose file is gone. Skipped files are not cached, so they change nothing.
  bool cache_dirty = cache && cache->size() != stamp_hits;
  std::vector<CacheRecord> to_cache;
  for (std::size_t i = 0; i < files.size(); ++i) {
    Outcome& o = outcomes[i];
    if (o.kind == Outcome::Kind::skipped || o.kind == Outcome::Kind::pending) {
      log::info("index: skipped ", files[i].path, ": ", o.note);
      stats.skipped.push_back({files[i].path, o.note});
      continue;
    }
    if (!o.note.empty()) {
      log::info("index: ", files[i].path, ": ", o.note);
      stats.warnings.push_back({files[i].path, o.note});
    }
    if (o.kind == Outcome::Kind::parsed) {
      ++stats.parsed;
      stats.bytes_parsed += o.tags.bytes;
      cache_dirty = true;
    } else {
      ++stats.from_cache;
      if (o.found_by_content) cache_dirty = true;
    }
    stats.bytes += o.tags.bytes;
    stats.tags += o.tags.tags.size();
    std::string path = o.tags.path;
    auto placed = index->files_.emplace(std::move(path), std::move(o.tags)).first;
    if (cache) to_cache.push_back({files[i].size, files[i].stamp, &placed->second});
  }
  stats.files = index->files_.size();
  stats.collect_seconds = seconds_since(t_collect);

  if (cache && cache_dirty) {
    auto t_save = clock::now();
    std::string error;
    stats.cache_written = cache->save(to_cache, &error);
    if (!stats.cache_written) log::warn("tag cache not saved: ", error);
    stats.cache_save_seconds = seconds_since(t_save);
  }
  stats.total_seconds = seconds_since(t0);
  if (stats_out) *stats_out = std::move(stats);
  return index;
}

void Index::ensure_names() const {
  std::lock_guard lock(names_mutex_);
  if (names_built_) return;
  for (const auto& [path, f] : files_) add_names(f);
  names_built_ = true;
}

void Index::add_names(const FileTags& f) const {
  for (std::uint32_t i = 0; i < f.tags.size(); ++i) {
    const Tag& t = f.tags[i];
    (is_definition(t.kind) ? defs_ : refs_)[t.name].push_back({&f, i});  // key views t.name
  }
}

void Index::remove_names(const FileTags& f) const {
  for (const Tag& t : f.tags) {
    auto& map = is_definition(t.kind) ? defs_ : refs_;
    auto it = map.find(t.name);
    if (it == map.end()) continue;
    auto& v = it->second;
    v.erase(std::remove_if(v.begin(), v.end(), [&](const Entry& e) { return e.file == &f; }),
            v.end());
    if (v.empty()) {
      map.erase(it);
    } else if (it->first.data() == t.name.data()) {
      // The key views a name of the file going away: re-key it on a remaining tag's name.
      auto node = map.extract(it);
      node.key() = node.mapped().front().file->tags[node.mapped().front().tag].name;
      map.insert(std::move(node));
    }
  }
}

void Index::set_file(FileTags tags) {
  std::lock_guard lock(names_mutex_);
  auto it = files_.find(tags.path);
  if (it != files_.end()) {
    if (names_built_) remove_names(it->second);
    it->second = std::move(tags);
  } else {
    std::string path = tags.path;
    it = files_.emplace(std::move(path), std::move(tags)).first;
  }
  if (names_built_) add_names(it->second);
}

bool Index::remove_file(std::string_view path) {
  std::lock_guard lock(names_mutex_);
  auto it = files_.find(path);
  if (it == files_.end()) return false;
  if (names_built_) remove_names(it->second);
  files_.erase(it);
  return true;
}

const FileTags* Index::file(std::string_view path) const {
  auto it = files_.find(path);
  return it == files_.end() ? nullptr : &it->second;
}

namespace {
template <class Map, class Entry>
std::vector<SymbolRef> lookup(const Map& map, std::string_view name) {
  std::vector<SymbolRef> out;
  auto it = map.find(name);
  if (it == map.end()) return out;
  for (const Entry& e : it->second) out.push_back({e.file, &e.file->tags[e.tag]});
  std::sort(out.begin(), out.end(), [](const SymbolRef& a, const SymbolRef& b) {
    if (a.file != b.file) return a.file->path < b.file->path;
    return a.tag->range.start_byte < b.tag->range.start_byte;
  });
  return out;
}
}  // namespace

std::vector<SymbolRef> Index::definitions(std::string_view name) const {
  ensure_names();
  return lookup<decltype(defs_), Entry>(defs_, name);
}

std::vector<SymbolRef> Index::references(std::string_view name) const {
  ensure_names();
  return lookup<decltype(refs_), Entry>(refs_, name);
}

const Tag* Index::enclosing_symbol(std::string_view path, Point at) const {
  const FileTags* f = file(path);
  if (!f) return nullptr;
  const Tag* best = nullptr;
  for (const Tag& t : f->tags) {
    if (!is_definition(t.kind)) continue;
    if (t.range.start > at) break;  // tags are sorted by start
    if (at < t.range.end || (at == t.range.end && t.range.start == t.range.end)) {
      // Later starts are nested deeper (or are siblings that start after the previous one).
      if (!best || best->range.contains(t.range)) best = &t;
    }
  }
  return best;
}

std::vector<const Tag*> Index::outline(std::string_view path) const {
  std::vector<const Tag*> out;
  if (const FileTags* f = file(path))
    for (const Tag& t : f->tags)
      if (is_definition(t.kind)) out.push_back(&t);
  return out;
}

std::optional<std::string> Index::symbol_text(std::string_view path, const Tag& tag,
                                              std::string* error) const {
  std::string text, err;
  if (!source_->read(path, &text, &err)) {
    if (error) *error = std::string(path) + ": " + err;
    return std::nullopt;
  }
  if (tag.range.end_byte > text.size() || tag.range.start_byte > tag.range.end_byte) {
    if (error) *error = std::string(path) + ": changed since it was indexed";
    return std::nullopt;
  }
  return text.substr(tag.range.start_byte, tag.range.end_byte - tag.range.start_byte);
}

std::size_t Index::tag_count() const {
  std::size_t n = 0;
  for (const auto& [_, f] : files_) n += f.tags.size();
  return n;
}

}  // namespace ponder::agent
