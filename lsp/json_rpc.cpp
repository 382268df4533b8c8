#include "lsp/json_rpc.h"

namespace ponder::lsp {

namespace {

// `body` with each byte that is not part of valid UTF-8, and each \u escape of a lone UTF-16
// surrogate, replaced by U+FFFD — one unit for one unit, so the editor's UTF-16 columns still
// hold — so that a document with a bad byte is kept (marked) instead of its change being lost.
std::string lenient(std::string_view body) {
  std::string out;
  out.reserve(body.size());
  auto hex4 = [&](std::size_t at, unsigned* v) {
    if (at + 4 > body.size()) return false;
    *v = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const char c = body[at + k];
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) return false;
      *v = *v * 16 + static_cast<unsigned>(d);
    }
    return true;
  };
  for (std::size_t i = 0; i < body.size();) {
    const auto c = static_cast<unsigned char>(body[i]);
    if (c == '\\' && i + 1 < body.size()) {
      unsigned u = 0, low = 0;
      if (body[i + 1] == 'u' && hex4(i + 2, &u)) {
        const bool high = u >= 0xD800 && u <= 0xDBFF, lone_low = u >= 0xDC00 && u <= 0xDFFF;
        const bool paired = high && i + 12 <= body.size() && body[i + 6] == '\\' && body[i + 7] == 'u' &&
                            hex4(i + 8, &low) && low >= 0xDC00 && low <= 0xDFFF;
        if ((high && !paired) || lone_low) {
          out += "\\ufffd";
          i += 6;
          continue;
        }
        const std::size_t n = paired ? 12 : 6;
        out.append(body.substr(i, n));
        i += n;
        continue;
      }
      out.append(body.substr(i, 2));
      i += 2;
      continue;
    }
    // A well-formed sequence (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF).
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (c < 0x80) n = 1;
    else if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
      n = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    }
    if (n > 1) {
      if (i + n > body.size()) n = 0;
      for (std::size_t k = 1; k < n; ++k) {
        const auto b = static_cast<unsigned char>(body[i + k]);
        if (k == 1 ? (b < lo || b > hi) : (b & 0xC0) != 0x80) {
          n = 0;
          break;
        }
      }
    }
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    out.append(body.substr(i, n));
    i += n;
  }
  return out;
}

}  // namespace

bool parse_message(std::string_view body, Message* out, int* code, std::string* error, json* id) {
  *id = nullptr;
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    const std::string fixed = lenient(body);
    if (fixed != body) j = json::parse(fixed, nullptr, /*allow_exceptions=*/false);
  }
  if (j.is_discarded()) {
    *code = error_code::parse_error;
    *error = "the message is not valid JSON";
    return false;
  }
  auto invalid = [&](std::string why) {
    *code = error_code::invalid_request;
    *error = std::move(why);
    return false;
  };
  if (!j.is_object()) return invalid("a JSON-RPC message must be an object");
  if (auto it = j.find("id"); it != j.end()) {
    if (!it->is_number_integer() && !it->is_string() && !it->is_null())
      return invalid("a message id must be a number or a string");
    *id = *it;
  }
  if (auto v = j.find("jsonrpc"); v == j.end() || *v != "2.0") return invalid("\"jsonrpc\" must be \"2.0\"");
  Message m;
  auto method = j.find("method");
  if (method != j.end()) {
    if (!method->is_string()) return invalid("\"method\" must be a string");
    m.method = method->get<std::string>();
    if (auto p = j.find("params"); p != j.end() && !p->is_null()) {
      if (!p->is_object() && !p->is_array()) return invalid("\"params\" must be an object or an array");
      m.params = *p;
    }
    const bool has_id = j.contains("id") && !j["id"].is_null();
    m.kind = has_id ? Message::Kind::request : Message::Kind::notification;
    m.id = *id;
  } else {
    if (!j.contains("id")) return invalid("a message needs a \"method\" or an \"id\"");
    m.kind = Message::Kind::response;
    m.id = *id;
    if (auto r = j.find("result"); r != j.end()) m.result = *r;
    if (auto e = j.find("error"); e != j.end()) m.error = *e;
  }
  *out = std::move(m);
  return true;
}

namespace {
// Invalid UTF-8 in a string we send (a document's bytes in an error message) must not make
// dump() throw: replace it.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }
}  // namespace

std::string make_response(const json& id, const json& result) {
  return dump(json{{"jsonrpc", "2.0"}, {"id", id}, {"result", result}});
}

std::string make_error(const json& id, int code, std::string_view message) {
  return dump(json{{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", std::string(message)}}}});
}

std::string make_notification(std::string_view method, const json& params) {
  return dump(json{{"jsonrpc", "2.0"}, {"method", std::string(method)}, {"params", params}});
}

std::string make_request(const json& id, std::string_view method, const json& params) {
  return dump(json{{"jsonrpc", "2.0"}, {"id", id}, {"method", std::string(method)}, {"params", params}});
}

}  // namespace ponder::lsp
