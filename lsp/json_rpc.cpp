#include "lsp/json_rpc.h"

namespace ponder::lsp {

bool parse_message(std::string_view body, Message* out, int* code, std::string* error, json* id) {
  *id = nullptr;
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
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
