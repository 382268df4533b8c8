#include "lsp/settings.h"

#include <cmath>

namespace ponder::lsp {

bool apply_settings(const json& j, Settings* s, std::string* error) {
  if (j.is_null()) return true;
  if (!j.is_object()) {
    *error = "settings must be a JSON object";
    return false;
  }
  auto bad = [&](const char* key, const char* want) {
    *error = std::string("setting \"") + key + "\" must be " + want;
    return false;
  };
  auto get_string = [&](const json& o, const char* key, std::string* out) {
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) return true;
    if (!it->is_string()) return bad(key, "a string");
    *out = it->get<std::string>();
    return true;
  };
  auto get_uint = [&](const json& o, const char* key, std::uint32_t* out, std::uint32_t lo, std::uint32_t hi) {
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) return true;
    if (!it->is_number_integer() || it->get<std::int64_t>() < lo || it->get<std::int64_t>() > hi)
      return bad(key, ("an integer from " + std::to_string(lo) + " to " + std::to_string(hi)).c_str());
    *out = static_cast<std::uint32_t>(it->get<std::int64_t>());
    return true;
  };
  auto get_bool = [&](const json& o, const char* key, bool* out) {
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) return true;
    if (!it->is_boolean()) return bad(key, "true or false");
    *out = it->get<bool>();
    return true;
  };
  if (!get_string(j, "model", &s->model.model) || !get_string(j, "backend", &s->model.backend)) return false;
  if (s->model.backend != "auto" && s->model.backend != "cpu" && s->model.backend != "cuda")
    return bad("backend", "\"auto\", \"cpu\" or \"cuda\"");
  std::uint32_t threads = s->model.threads;
  if (!get_uint(j, "context", &s->model.context, 256, 1u << 20) || !get_uint(j, "threads", &threads, 0, 4096) ||
      !get_uint(j, "promptBudget", &s->prompt_budget, 0, 1u << 20) ||
      !get_uint(j, "maxTokens", &s->max_tokens, 1, 1u << 20) ||
      !get_uint(j, "idleUnloadSeconds", &s->idle_unload_seconds, 0, 7 * 24 * 3600) ||
      !get_uint(j, "suggestionDebounceMs", &s->suggestion_debounce_ms, 0, 600000) ||
      !get_uint(j, "suggestionsPerFile", &s->suggestions_per_file, 0, 100) ||
      !get_uint(j, "suggestionsPerHour", &s->suggestions_per_hour, 0, 100000))
    return false;
  s->model.threads = threads;
  if (auto it = j.find("reasoningBudget"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() < -1) return bad("reasoningBudget", "an integer, -1 for none");
    s->reasoning_budget = it->get<std::int64_t>();
  }
  if (auto it = j.find("temperature"); it != j.end()) {
    if (it->is_null()) {
      s->temperature.reset();
    } else {
      if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < 0 || it->get<double>() > 2)
        return bad("temperature", "a number from 0 to 2");
      s->temperature = it->get<float>();
    }
  }
  if (!get_bool(j, "hoverWaitsForModel", &s->hover_waits)) return false;
  if (auto f = j.find("features"); f != j.end() && !f->is_null()) {
    if (!f->is_object()) return bad("features", "an object");
    if (!get_bool(*f, "codeActions", &s->code_actions) || !get_bool(*f, "hover", &s->hover) ||
        !get_bool(*f, "suggestions", &s->suggestions))
      return false;
  }
  return true;
}

}  // namespace ponder::lsp
