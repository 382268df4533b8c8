#pragma once
// JSON-RPC 2.0 messages as LSP uses them: requests, notifications and responses in both
// directions. Parsing never throws; a malformed message is described so the server can answer
// it (or log it, when it has no id).
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ponder::lsp {

using json = nlohmann::json;

/// Error codes of JSON-RPC and LSP.
namespace error_code {
inline constexpr int parse_error = -32700;
inline constexpr int invalid_request = -32600;
inline constexpr int method_not_found = -32601;
inline constexpr int invalid_params = -32602;
inline constexpr int internal_error = -32603;
inline constexpr int server_not_initialized = -32002;
inline constexpr int request_failed = -32803;
inline constexpr int server_cancelled = -32802;
inline constexpr int content_modified = -32801;
inline constexpr int request_cancelled = -32800;
}  // namespace error_code

struct Message {
  enum class Kind { request, notification, response } kind = Kind::notification;
  json id;            // request, response: a number or a string
  std::string method; // request, notification
  json params;        // request, notification (null when absent)
  json result;        // response
  std::optional<json> error;  // response: {code, message, data?}
};

/// Parses one message body. False with `code` and `error` set when it is not valid JSON-RPC;
/// `id` then holds the request's id when one could be read (else null), for the error reply.
bool parse_message(std::string_view body, Message* out, int* code, std::string* error, json* id);

std::string make_response(const json& id, const json& result);
std::string make_error(const json& id, int code, std::string_view message);
std::string make_notification(std::string_view method, const json& params);
std::string make_request(const json& id, std::string_view method, const json& params);

}  // namespace ponder::lsp
