#pragma once
// The prompt templates (agent/prompts/*.md, compiled into the binary: all prompt text lives
// there) and their rendering.
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ponder::agent {

struct PromptTemplate {
  std::string_view name;  // the file name without .md: "refactor", "explain", "fix"
  std::string_view text;
};

/// Every template, from the generated prompts.cpp.
const std::vector<PromptTemplate>& prompt_templates();

/// Template `name` with each {{key}} replaced by vars[key]. False with `error` for an unknown
/// template, a key the template uses that `vars` lacks, or an unclosed {{.
bool render_prompt(std::string_view name, const std::map<std::string, std::string>& vars, std::string* out,
                   std::string* error);

}  // namespace ponder::agent
