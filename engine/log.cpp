#include "engine/log.h"

#include <atomic>
#include <chrono>
#include <mutex>

namespace ponder::log {
namespace {
std::atomic<Level> g_level{Level::warn};
std::mutex g_mutex;
std::FILE* g_sink = nullptr;  // guarded by g_mutex; nullptr = stderr
}  // namespace

void set_level(Level l) { g_level.store(l, std::memory_order_relaxed); }
Level level() { return g_level.load(std::memory_order_relaxed); }

bool parse_level(std::string_view t, Level* out) {
  static constexpr std::pair<std::string_view, Level> names[] = {
      {"debug", Level::debug}, {"info", Level::info}, {"warn", Level::warn},
      {"error", Level::error}, {"off", Level::off}};
  for (auto& [name, l] : names)
    if (t == name) { *out = l; return true; }
  return false;
}

void set_sink(std::FILE* sink) {
  std::lock_guard lock(g_mutex);
  g_sink = sink;
}

void write(Level l, std::string_view message) {
  static constexpr const char* tags[] = {"debug", "info", "warn", "error", "off"};
  using namespace std::chrono;
  auto now = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  std::string line;
  line.reserve(message.size() + 32);
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%lld.%03lld ", static_cast<long long>(now / 1000),
                static_cast<long long>(now % 1000));
  line += stamp;
  line += "ponder[";
  line += tags[static_cast<int>(l)];
  line += "] ";
  line += message;
  line += '\n';
  std::lock_guard lock(g_mutex);
  std::FILE* f = g_sink ? g_sink : stderr;
  std::fwrite(line.data(), 1, line.size(), f);
  std::fflush(f);
}

}  // namespace ponder::log
