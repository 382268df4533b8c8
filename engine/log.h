#pragma once
// One levelled logger for the whole program. Messages go to stderr (or a log file); never to
// stdout, which belongs to the LSP stream and to command output.
//
// Thread-safe: each message is written whole, under a mutex.
// Usage: log::warn("skipped ", path, ": ", reason);  (arguments are streamed with operator<<,
// and only formatted when the level is enabled).
#include <cstdio>
#include <sstream>
#include <string>
#include <string_view>

namespace ponder::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

/// Messages below `level` are dropped. Default: warn.
void set_level(Level level);
Level level();
/// Parses "debug" | "info" | "warn" | "error" | "off"; returns false on anything else.
bool parse_level(std::string_view text, Level* out);
/// Where messages go; nullptr restores stderr. The caller keeps the FILE open.
void set_sink(std::FILE* sink);

void write(Level level, std::string_view message);

inline bool enabled(Level l) { return l >= level(); }

template <class... Args>
void emit(Level l, const Args&... args) {
  if (!enabled(l)) return;
  std::ostringstream out;
  (out << ... << args);
  write(l, out.str());
}
template <class... Args> void debug(const Args&... args) { emit(Level::debug, args...); }
template <class... Args> void info(const Args&... args) { emit(Level::info, args...); }
template <class... Args> void warn(const Args&... args) { emit(Level::warn, args...); }
template <class... Args> void error(const Args&... args) { emit(Level::error, args...); }

}  // namespace ponder::log
