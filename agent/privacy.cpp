// Secret files and secret-looking text.
#include "agent/privacy.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace ponder::agent {
namespace {

constexpr std::string_view kMask = "[secret masked]";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; }
bool b64url(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; }
bool upper_digit(char c) { return std::isupper(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)); }

// A token format: a prefix, then at least `min` characters of a class (the token runs while
// they last).
struct TokenFormat {
  std::string_view prefix;
  std::size_t min;
  bool (*body)(char);
};
const std::array<TokenFormat, 17> kFormats = {{
    {"AKIA", 16, upper_digit},  // AWS access key ids
    {"ASIA", 16, upper_digit},
    {"ghp_", 30, b64url},       // GitHub tokens
    {"gho_", 30, b64url},
    {"ghu_", 30, b64url},
    {"ghs_", 30, b64url},
    {"ghr_", 30, b64url},
    {"github_pat_", 22, b64url},
    {"glpat-", 20, b64url},     // GitLab
    {"xoxb-", 10, b64url},      // Slack
    {"xoxp-", 10, b64url},
    {"xoxa-", 10, b64url},
    {"sk_live_", 16, b64url},   // Stripe
    {"rk_live_", 16, b64url},
    {"sk-", 20, b64url},        // OpenAI, Anthropic (sk-ant-...), sk-proj-...
    {"AIza", 30, b64url},       // Google API keys
    {"eyJ", 10, b64url},        // JWTs: checked for their three parts below
}};

// Length of the token at `at` in `text`, or 0.
std::size_t token_at(std::string_view text, std::size_t at) {
  if (at > 0 && word_char(text[at - 1])) return 0;
  for (const TokenFormat& f : kFormats) {
    if (text.compare(at, f.prefix.size(), f.prefix) != 0) continue;
    std::size_t end = at + f.prefix.size();
    if (f.prefix == "eyJ") {  // header.payload.signature, base64url parts
      int parts = 1;
      std::size_t run = 0;
      for (; end < text.size(); ++end) {
        if (b64url(text[end])) ++run;
        else if (text[end] == '.' && run >= 10 && parts < 3) ++parts, run = 0;
        else break;
      }
      if (parts == 3 && run >= 10) return end - at;
      continue;
    }
    while (end < text.size() && f.body(text[end])) ++end;
    if (end - at - f.prefix.size() >= f.min) return end - at;
  }
  return 0;
}

// `name = "literal"` / `name: 'literal'` where the name says it holds a secret: the range of the
// literal's content, or {0, 0}.
std::pair<std::size_t, std::size_t> assigned_secret(std::string_view line) {
  static constexpr std::array<std::string_view, 8> kNames = {"password", "passwd", "secret", "api_key",
                                                             "apikey",   "token",  "access_key", "private_key"};
  const std::string low = lower(line);
  for (std::string_view name : kNames) {
    for (std::size_t at = low.find(name); at != std::string::npos; at = low.find(name, at + 1)) {
      std::size_t i = at + name.size();
      while (i < line.size() && (word_char(line[i]) || line[i] == '"' || line[i] == '\'')) ++i;  // rest of the name
      while (i < line.size() && line[i] == ' ') ++i;
      if (i >= line.size() || (line[i] != '=' && line[i] != ':')) continue;
      ++i;
      if (i < line.size() && line[i] == '=') ++i;  // ==, := are not assignments of a literal
      while (i < line.size() && line[i] == ' ') ++i;
      if (i >= line.size() || (line[i] != '"' && line[i] != '\'')) continue;
      const char quote = line[i];
      const std::size_t begin = i + 1, end = line.find(quote, begin);
      if (end == std::string_view::npos || end - begin < 8) continue;
      const std::string_view value = line.substr(begin, end - begin);
      // Placeholders and references are not secrets.
      if (value.find("${") != std::string_view::npos || value.front() == '<' || value.find(' ') != std::string_view::npos)
        continue;
      return {begin, end};
    }
  }
  return {0, 0};
}

}  // namespace

bool is_secret_file(std::string_view path) {
  const std::size_t slash = path.find_last_of("/\\");
  const std::string name = lower(slash == std::string_view::npos ? path : path.substr(slash + 1));
  if (name == ".env") return true;
  if (name.rfind(".env.", 0) == 0)
    return !(ends_with(name, ".example") || ends_with(name, ".sample") || ends_with(name, ".template") ||
             ends_with(name, ".dist"));
  for (std::string_view ext : {".pem", ".key", ".p12", ".pfx", ".keystore", ".jks"})
    if (ends_with(name, ext)) return true;
  for (std::string_view key : {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"})
    if (name.rfind(key, 0) == 0 && !ends_with(name, ".pub")) return true;
  for (std::string_view exact : {".netrc", ".pgpass", ".npmrc", ".pypirc", "credentials", "credentials.json",
                                 ".git-credentials", "secrets.yaml", "secrets.yml", "secrets.json", "secrets.toml"})
    if (name == exact) return true;
  return false;
}

std::string mask_secrets(std::string_view text, std::size_t* masked) {
  std::string out;
  out.reserve(text.size());
  std::size_t count = 0, at = 0;
  while (at < text.size()) {
    std::size_t end = text.find('\n', at);
    end = end == std::string_view::npos ? text.size() : end + 1;
    std::string_view line = text.substr(at, end - at);
    // A private-key block: masked whole, to its END line (or the end of the text).
    if (line.find("-----BEGIN ") != std::string_view::npos && line.find("PRIVATE KEY-----") != std::string_view::npos) {
      std::size_t stop = text.size();  // cut off before its END line: masked to the end
      if (const std::size_t end_tag = text.find("PRIVATE KEY-----", at + line.find("PRIVATE KEY-----") + 1);
          end_tag != std::string_view::npos) {
        const std::size_t eol = text.find('\n', end_tag);
        stop = eol == std::string_view::npos ? text.size() : eol + 1;
      }
      out.append(kMask);
      if (text[stop - 1] == '\n') out += '\n';
      ++count;
      at = stop;
      continue;
    }
    const auto [vb, ve] = assigned_secret(line);
    std::string l(line);
    if (ve > vb) {
      l.replace(vb, ve - vb, kMask);
      ++count;
    }
    for (std::size_t i = 0; i < l.size(); ++i)
      if (const std::size_t n = token_at(l, i); n > 0) {
        l.replace(i, n, kMask);
        i += kMask.size() - 1;
        ++count;
      }
    out += l;
    at = end;
  }
  if (masked) *masked = count;
  return out;
}

}  // namespace ponder::agent
