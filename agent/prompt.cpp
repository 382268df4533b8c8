// Rendering the prompt templates.
#include "agent/prompt.h"

#include <algorithm>

namespace ponder::agent {

bool render_prompt(std::string_view name, const std::map<std::string, std::string>& vars, std::string* out,
                   std::string* error) {
  const auto& all = prompt_templates();
  const auto it = std::find_if(all.begin(), all.end(), [&](const PromptTemplate& t) { return t.name == name; });
  if (it == all.end()) {
    *error = "no prompt template named '" + std::string(name) + "'";
    return false;
  }
  const std::string_view text = it->text;
  out->clear();
  std::size_t at = 0;
  for (;;) {
    const std::size_t open = text.find("{{", at);
    if (open == std::string_view::npos) break;
    const std::size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) {
      *error = "prompt template '" + std::string(name) + "': an unclosed {{";
      return false;
    }
    const std::string key(text.substr(open + 2, close - open - 2));
    const auto v = vars.find(key);
    if (v == vars.end()) {
      *error = "prompt template '" + std::string(name) + "' needs {{" + key + "}}";
      return false;
    }
    out->append(text.substr(at, open - at)).append(v->second);
    at = close + 2;
  }
  out->append(text.substr(at));
  return true;
}

}  // namespace ponder::agent
