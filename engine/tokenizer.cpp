#include "engine/tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstring>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/gguf.h"

namespace ponder {
namespace {

// ---------------------------------------------------------------------------------------------
// Unicode classes of the split rules. Letters and numbers come from utf8proc's categories;
// whitespace is Unicode's White_Space property (what \s means in the tokenizers' regex engine).

enum class CharClass : std::uint8_t { letter, number, space, other, end };

CharClass classify(std::int32_t cp) {
  switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return CharClass::space;
    default:
      if (cp >= 0x2000 && cp <= 0x200A) return CharClass::space;
  }
  if (cp < 0x80) {
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CharClass::letter;
    if (cp >= '0' && cp <= '9') return CharClass::number;
    return CharClass::other;
  }
  switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
      return CharClass::letter;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
      return CharClass::number;
    default:
      return CharClass::other;
  }
}

// The text decoded once into code points with their byte offsets and classes.
struct Chars {
  std::vector<std::int32_t> cp;
  std::vector<std::uint32_t> at;  // byte offset of each code point; at[n] = text size
  std::vector<CharClass> cls;
};

Chars decode_chars(std::string_view text) {
  Chars c;
  c.cp.reserve(text.size());
  c.at.reserve(text.size() + 1);
  c.cls.reserve(text.size());
  const auto* s = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  std::size_t i = 0;
  while (i < text.size()) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t n = utf8proc_iterate(s + i, static_cast<utf8proc_ssize_t>(text.size() - i), &cp);
    if (n <= 0) {  // invalid byte: one "other" character
      cp = 0xFFFD;
      n = 1;
    }
    c.cp.push_back(cp);
    c.at.push_back(static_cast<std::uint32_t>(i));
    c.cls.push_back(classify(cp));
    i += static_cast<std::size_t>(n);
  }
  c.at.push_back(static_cast<std::uint32_t>(text.size()));
  return c;
}

bool is_newline(std::int32_t cp) { return cp == '\r' || cp == '\n'; }

// Length in characters of the match of the split rule at character `i` (always ≥ 1).
std::size_t match_at(const Chars& c, std::size_t i, PreTokenizer pre) {
  const std::size_t n = c.cp.size();
  auto cls = [&](std::size_t k) { return k < n ? c.cls[k] : CharClass::end; };
  auto lower = [&](std::size_t k) -> std::int32_t {
    if (k >= n) return 0;
    std::int32_t x = c.cp[k];
    return (x >= 'A' && x <= 'Z') ? x - 'A' + 'a' : x;
  };
  // 1. (?i:'s|'t|'re|'ve|'m|'ll|'d)
  if (c.cp[i] == '\'') {
    std::int32_t a = lower(i + 1), b = lower(i + 2);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  }
  // 2. [^\r\n\p{L}\p{N}]?\p{L}+
  {
    std::size_t k = i;
    if (cls(k) != CharClass::letter && cls(k) != CharClass::number && !is_newline(c.cp[k]) &&
        cls(k + 1) == CharClass::letter)  // (k < n here: i is a character)
      ++k;
    if (cls(k) == CharClass::letter) {
      while (cls(k) == CharClass::letter) ++k;
      return k - i;
    }
  }
  // 3. \p{N} (qwen2) or \p{N}{1,3} (llama3)
  if (cls(i) == CharClass::number) {
    if (pre == PreTokenizer::qwen2) return 1;
    std::size_t k = i;
    while (k < n && k - i < 3 && cls(k) == CharClass::number) ++k;
    return k - i;
  }
  // 4.  ?[^\s\p{L}\p{N}]+[\r\n]*
  {
    std::size_t k = i;
    if (c.cp[k] == ' ' && cls(k + 1) == CharClass::other) ++k;
    if (cls(k) == CharClass::other) {
      while (cls(k) == CharClass::other) ++k;
      while (k < n && is_newline(c.cp[k])) ++k;
      return k - i;
    }
  }
  // The rest start with whitespace: W = the whole run of it from i.
  std::size_t w = i;
  while (w < n && c.cls[w] == CharClass::space) ++w;
  // 5. \s*[\r\n]+ : through the last newline of the run.
  for (std::size_t k = w; k > i; --k)
    if (is_newline(c.cp[k - 1])) return k - i;
  // 6. \s+(?!\S) : the run, less its last character when a non-space follows.
  if (w == n) return w - i;
  if (w - i >= 2) return w - 1 - i;
  // 7. \s+
  return std::max<std::size_t>(w - i, 1);
}

// GPT-2's reversible map from bytes to printable code points.
struct ByteMap {
  std::int32_t to_cp[256];
  std::unordered_map<std::int32_t, std::uint8_t> to_byte;
  ByteMap() {
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      to_cp[b] = printable ? b : 256 + extra++;
      to_byte[to_cp[b]] = static_cast<std::uint8_t>(b);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

void append_utf8(std::string& out, std::int32_t cp) {
  utf8proc_uint8_t buf[4];
  utf8proc_ssize_t n = utf8proc_encode_char(cp, buf);
  out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
}

// "left right" (the left part may itself start with a space token such as "Ġ Ġ").
bool split_merge(std::string_view m, std::pair<std::string, std::string>* out) {
  std::size_t sp = m.find(' ', 1);
  if (sp == std::string_view::npos) return false;
  out->first.assign(m.substr(0, sp));
  out->second.assign(m.substr(sp + 1));
  return true;
}

std::string nfc(std::string_view text) {
  bool ascii = std::all_of(text.begin(), text.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x80; });
  if (ascii) return std::string(text);
  utf8proc_uint8_t* out = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                    static_cast<utf8proc_ssize_t>(text.size()), &out,
                                    static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) {  // invalid UTF-8: leave the bytes as they are
    std::free(out);
    return std::string(text);
  }
  std::string s(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
  std::free(out);
  return s;
}

}  // namespace

std::vector<std::string_view> Tokenizer::split(std::string_view text, PreTokenizer pre) {
  std::vector<std::string_view> out;
  Chars c = decode_chars(text);
  for (std::size_t i = 0; i < c.cp.size();) {
    std::size_t len = match_at(c, i, pre);
    out.push_back(text.substr(c.at[i], c.at[i + len] - c.at[i]));
    i += len;
  }
  return out;
}

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::File& file, std::string* error) {
  auto fail = [&](const std::string& what) -> std::unique_ptr<Tokenizer> {
    if (error) *error = what;
    return nullptr;
  };
  std::string_view model, pre;
  if (!file.get_string("tokenizer.ggml.model", &model)) return fail("no tokenizer.ggml.model");
  if (model != "gpt2") return fail("tokenizer.ggml.model is '" + std::string(model) + "': only byte-level BPE (gpt2) is supported");
  if (!file.get_string("tokenizer.ggml.pre", &pre)) return fail("no tokenizer.ggml.pre (the split rule)");
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  if (pre == "qwen2" || pre == "deepseek-r1-qwen") t->pre_ = PreTokenizer::qwen2;
  else if (pre == "llama-bpe" || pre == "llama3") t->pre_ = PreTokenizer::llama3;
  else return fail("unknown pre-tokenizer '" + std::string(pre) + "'");

  const gguf::Value* tokens = file.find("tokenizer.ggml.tokens");
  const gguf::Value* merges = file.find("tokenizer.ggml.merges");
  const gguf::Value* types = file.find("tokenizer.ggml.token_type");
  if (!tokens || tokens->type != gguf::ValueType::array || tokens->element != gguf::ValueType::string)
    return fail("tokenizer.ggml.tokens missing or not an array of strings");
  if (!merges || merges->element != gguf::ValueType::string)
    return fail("tokenizer.ggml.merges missing or not an array of strings");
  if (types && (types->count != tokens->count || !types->raw))
    return fail("tokenizer.ggml.token_type does not match tokenizer.ggml.tokens");

  t->tokens_.assign(tokens->strings.begin(), tokens->strings.end());
  t->is_special_.assign(t->tokens_.size(), false);
  for (std::size_t i = 0; i < t->tokens_.size(); ++i) {
    // 3 = control, 4 = user defined: matched whole in the text.
    std::int64_t type = types ? types->integer_at(i) : 1;
    if (type == 3 || type == 4) t->is_special_[i] = true;
  }
  // llama.cpp's rule: Llama 3's vocabulary takes a piece that is a whole token as is.
  t->ignore_merges_ = t->pre_ == PreTokenizer::llama3;
  // ... and, as its tokenizer.json says, no normaliser; Qwen's normalises to NFC.
  t->nfc_ = t->pre_ == PreTokenizer::qwen2;
  std::vector<std::pair<std::string, std::string>> pairs(merges->strings.size());
  for (std::size_t r = 0; r < merges->strings.size(); ++r)
    if (!split_merge(merges->strings[r], &pairs[r]))
      return fail("merge " + std::to_string(r) + " is not 'left right'");
  if (!t->finish_setup(pairs, error)) return nullptr;
  return t;
}

bool Tokenizer::finish_setup(const std::vector<std::pair<std::string, std::string>>& merges,
                             std::string* error) {
  auto fail = [&](const std::string& what) {
    if (error) *error = what;
    return false;
  };
  ids_.clear();
  ids_.reserve(tokens_.size());
  specials_.clear();
  special_ids_.clear();
  for (std::size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i].empty()) continue;  // holes in the id space
    ids_.emplace(tokens_[i], static_cast<std::int32_t>(i));
    if (is_special_[i]) {
      specials_.push_back(tokens_[i]);
      special_ids_.push_back(static_cast<std::int32_t>(i));
    }
  }
  // Longest specials first, so that one that is a prefix of another never wins.
  std::vector<std::size_t> order(specials_.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return specials_[a].size() > specials_[b].size(); });
  std::vector<std::string> specials;
  std::vector<std::int32_t> special_ids;
  for (std::size_t i : order) {
    specials.push_back(specials_[i]);
    special_ids.push_back(special_ids_[i]);
  }
  specials_ = std::move(specials);
  special_ids_ = std::move(special_ids);
  for (const std::string& sp : specials_) special_first_byte_[static_cast<unsigned char>(sp[0])] = true;

  const ByteMap& bm = byte_map();
  for (int b = 0; b < 256; ++b) {
    std::string s;
    append_utf8(s, bm.to_cp[b]);
    std::int32_t id = find(s);
    if (id < 0) return fail("the vocabulary has no token for byte " + std::to_string(b));
    byte_token_[b] = id;
  }
  merge_rank_.clear();
  merge_rank_.reserve(merges.size());
  for (std::size_t r = 0; r < merges.size(); ++r) {
    std::int32_t left = find(merges[r].first), right = find(merges[r].second);
    if (left < 0 || right < 0) return fail("merge " + std::to_string(r) + " names a token that is not in the vocabulary");
    std::uint64_t key = (std::uint64_t(std::uint32_t(left)) << 32) | std::uint32_t(right);
    merge_rank_.emplace(key, static_cast<std::uint32_t>(r));
  }
  return true;
}

namespace {
// The split regexes of the supported rules, as tokenizer.json writes them.
constexpr std::string_view kQwen2Split =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kLlama3Split =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// The regex of the Split pre-tokenizer, wherever it sits in a Sequence.
const nlohmann::json* find_split_regex(const nlohmann::json& pre) {
  if (!pre.is_object()) return nullptr;
  if (pre.value("type", "") == "Split" && pre.contains("pattern") && pre.at("pattern").is_object() &&
      pre.at("pattern").contains("Regex"))
    return &pre.at("pattern").at("Regex");
  if (pre.contains("pretokenizers") && pre.at("pretokenizers").is_array())
    for (const auto& p : pre.at("pretokenizers"))
      if (const auto* r = find_split_regex(p)) return r;
  return nullptr;
}
}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_json_file(const std::string& path, std::string* error) {
  try {
    return from_json_checked(path, error);
  } catch (const nlohmann::json::exception& e) {  // a value of the wrong type somewhere
    if (error) *error = path + ": malformed tokenizer.json: " + e.what();
    return nullptr;
  }
}

std::unique_ptr<Tokenizer> Tokenizer::from_json_checked(const std::string& path, std::string* error) {
  auto fail = [&](const std::string& what) -> std::unique_ptr<Tokenizer> {
    if (error) *error = path + ": " + what;
    return nullptr;
  };
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail("cannot open");
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail("not valid JSON");
  static const nlohmann::json kNull;
  auto member = [&](const char* key) -> const nlohmann::json& { return j.contains(key) ? j.at(key) : kNull; };
  const nlohmann::json& model = member("model");
  if (!model.is_object() || model.value("type", "") != "BPE") return fail("model.type is not BPE");
  if (!model.contains("vocab") || !model.at("vocab").is_object()) return fail("model.vocab missing");
  if (!model.contains("merges") || !model.at("merges").is_array()) return fail("model.merges missing");
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  const nlohmann::json* regex = find_split_regex(member("pre_tokenizer"));
  if (!regex || !regex->is_string()) return fail("no Split pre-tokenizer");
  const std::string rule = regex->get<std::string>();
  if (rule == kQwen2Split) t->pre_ = PreTokenizer::qwen2;
  else if (rule == kLlama3Split) t->pre_ = PreTokenizer::llama3;
  else return fail("unsupported split rule " + rule);
  const nlohmann::json& norm = member("normalizer");
  t->nfc_ = norm.is_object() && norm.value("type", "") == "NFC";
  if (!norm.is_null() && !t->nfc_) return fail("unsupported normalizer");
  t->ignore_merges_ = model.value("ignore_merges", false);

  std::size_t size = 0;
  for (const auto& [token, id] : model.at("vocab").items()) {
    if (!id.is_number_unsigned()) return fail("vocab id of '" + token + "' is not a number");
    size = std::max<std::size_t>(size, id.get<std::size_t>() + 1);
  }
  const nlohmann::json& added = member("added_tokens");
  if (!added.is_null() && !added.is_array()) return fail("added_tokens is not an array");
  for (const auto& a : added) {  // (a null `added` iterates as empty)
    if (!a.is_object() || !a.contains("id") || !a.at("id").is_number_unsigned() ||
        !a.contains("content") || !a.at("content").is_string())
      return fail("malformed added_tokens entry");
    size = std::max<std::size_t>(size, a.at("id").get<std::size_t>() + 1);
  }
  if (size > (1u << 24)) return fail("vocabulary of " + std::to_string(size) + " ids is implausible");
  t->tokens_.assign(size, std::string());
  t->is_special_.assign(size, false);
  for (const auto& [token, id] : model.at("vocab").items()) t->tokens_[id.get<std::size_t>()] = token;
  for (const auto& a : added) {  // every added token is matched whole, special or not
    std::size_t id = a.at("id").get<std::size_t>();
    t->tokens_[id] = a.at("content").get<std::string>();
    t->is_special_[id] = true;
  }
  std::vector<std::pair<std::string, std::string>> pairs;
  pairs.reserve(model.at("merges").size());
  for (const auto& m : model.at("merges")) {
    if (m.is_string()) {
      pairs.emplace_back();
      if (!split_merge(m.get_ref<const std::string&>(), &pairs.back()))
        return fail("merge '" + m.get<std::string>() + "' is not 'left right'");
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      pairs.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      return fail("malformed merge");
    }
  }
  if (!t->finish_setup(pairs, error)) {
    if (error) *error = path + ": " + *error;
    return nullptr;
  }
  return t;
}

std::int32_t Tokenizer::find(std::string_view token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

void Tokenizer::encode_piece(std::string_view piece, std::vector<std::int32_t>* out) const {
  if (ignore_merges_) {  // a piece that is a whole token is taken as is
    const ByteMap& bm = byte_map();
    std::string mapped;
    mapped.reserve(piece.size() * 2);
    for (unsigned char b : piece) append_utf8(mapped, bm.to_cp[b]);
    if (std::int32_t id = find(mapped); id >= 0) {
      out->push_back(id);
      return;
    }
  }
  // Otherwise byte-pair merges: symbols start as the tokens of single bytes, and the
  // lowest-ranked adjacent pair merges first.
  std::vector<std::int32_t> sym;
  sym.reserve(piece.size());
  for (unsigned char b : piece) sym.push_back(byte_token_[b]);
  std::string joined;
  while (sym.size() > 1) {
    std::uint32_t best_rank = UINT32_MAX;
    std::size_t best = 0;
    for (std::size_t i = 0; i + 1 < sym.size(); ++i) {
      auto it = merge_rank_.find((std::uint64_t(std::uint32_t(sym[i])) << 32) | std::uint32_t(sym[i + 1]));
      if (it != merge_rank_.end() && it->second < best_rank) {
        best_rank = it->second;
        best = i;
      }
    }
    if (best_rank == UINT32_MAX) break;
    joined = tokens_[sym[best]] + tokens_[sym[best + 1]];
    std::int32_t merged = find(joined);
    if (merged < 0) break;  // a merge whose result is not a token: stop (never in real files)
    sym[best] = merged;
    sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
  out->insert(out->end(), sym.begin(), sym.end());
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool special) const {
  std::vector<std::int32_t> out;
  // Source code repeats its pieces: remember each piece's ids for the rest of this call.
  struct Hash {  // lets string_views look up string keys without a copy
    using is_transparent = void;
    std::size_t operator()(std::string_view v) const { return std::hash<std::string_view>{}(v); }
  };
  std::unordered_map<std::string, std::pair<std::uint32_t, std::uint32_t>, Hash, std::equal_to<>> seen;  // piece -> [from, to) in `out`
  auto encode_plain = [&](std::string_view plain) {
    if (plain.empty()) return;
    std::string normal = nfc_ ? nfc(plain) : std::string(plain);
    for (std::string_view piece : split(normal, pre_)) {
      if (piece.size() > 2) {
        auto it = seen.find(piece);
        if (it != seen.end()) {
          for (std::uint32_t k = it->second.first; k < it->second.second; ++k) {
            const std::int32_t id = out[k];
            out.push_back(id);
          }
          continue;
        }
      }
      const auto from = static_cast<std::uint32_t>(out.size());
      encode_piece(piece, &out);
      if (piece.size() > 2) seen.emplace(std::string(piece), std::make_pair(from, static_cast<std::uint32_t>(out.size())));
    }
  };
  std::size_t start = 0;
  if (special && !specials_.empty()) {
    for (std::size_t i = 0; i < text.size();) {
      if (!special_first_byte_[static_cast<unsigned char>(text[i])]) {
        ++i;
        continue;
      }
      std::size_t hit = specials_.size();
      for (std::size_t s = 0; s < specials_.size(); ++s)
        if (text.compare(i, specials_[s].size(), specials_[s]) == 0) {
          hit = s;
          break;
        }
      if (hit == specials_.size()) {
        ++i;
        continue;
      }
      encode_plain(text.substr(start, i - start));
      out.push_back(special_ids_[hit]);
      i += specials_[hit].size();
      start = i;
    }
  }
  encode_plain(text.substr(start));
  return out;
}

std::string Tokenizer::token_bytes(std::int32_t id) const {
  std::string out;
  if (id < 0 || static_cast<std::size_t>(id) >= tokens_.size()) return out;
  const std::string& t = tokens_[id];
  if (is_special_[id]) return t;
  const ByteMap& bm = byte_map();
  const auto* s = reinterpret_cast<const utf8proc_uint8_t*>(t.data());
  for (std::size_t i = 0; i < t.size();) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t n = utf8proc_iterate(s + i, static_cast<utf8proc_ssize_t>(t.size() - i), &cp);
    if (n <= 0) break;
    auto it = bm.to_byte.find(cp);
    if (it != bm.to_byte.end()) out.push_back(static_cast<char>(it->second));
    else out.append(t, i, static_cast<std::size_t>(n));
    i += static_cast<std::size_t>(n);
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<std::int32_t>& ids) const {
  std::string out;
  for (std::int32_t id : ids) out += token_bytes(id);
  return out;
}

namespace {

// How many bytes of `s` from `i` form the longest prefix of a valid UTF-8 sequence, and how long
// the whole sequence must be (Unicode's "maximal subpart" rule, as Rust's from_utf8_lossy and
// hence Hugging Face's decoders apply it). need == 0: the byte at i can never start one.
void utf8_prefix(std::string_view s, std::size_t i, std::size_t* valid, std::size_t* need) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (b0 < 0x80) *need = 1;
  else if (b0 >= 0xC2 && b0 <= 0xDF) *need = 2;
  else if (b0 >= 0xE0 && b0 <= 0xEF) *need = 3, lo = b0 == 0xE0 ? 0xA0 : 0x80, hi = b0 == 0xED ? 0x9F : 0xBF;
  else if (b0 >= 0xF0 && b0 <= 0xF4) *need = 4, lo = b0 == 0xF0 ? 0x90 : 0x80, hi = b0 == 0xF4 ? 0x8F : 0xBF;
  else {
    *need = 0;
    *valid = 0;
    return;
  }
  std::size_t k = 1;
  while (k < *need && i + k < s.size()) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) break;
    ++k;
  }
  *valid = k;
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace

std::string StreamDecoder::push(std::int32_t id) {
  held_ += tokenizer_.token_bytes(id);
  std::string out;
  std::size_t i = 0;
  while (i < held_.size()) {
    std::size_t valid, need;
    utf8_prefix(held_, i, &valid, &need);
    if (need != 0 && valid == need) {  // a whole character
      out.append(held_, i, need);
      i += need;
    } else if (need != 0 && i + valid == held_.size()) {  // a character still arriving
      break;
    } else {  // bytes that can never become a character
      out += kReplacement;
      i += std::max<std::size_t>(valid, 1);
    }
  }
  held_.erase(0, i);
  return out;
}

std::string StreamDecoder::finish() {
  std::string out = held_.empty() ? std::string() : std::string(kReplacement);
  held_.clear();
  return out;
}

}  // namespace ponder
