#include "lsp/protocol.h"

#include <algorithm>
#include <stdexcept>

namespace ponder::lsp {

namespace {
// A value of the expected type, or the default when absent or null (LSP's optional fields).
template <class T>
T opt(const json& j, const char* key, T fallback = {}) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  return it->get<T>();
}
const json& at_path(const json& j, std::initializer_list<const char*> keys) {
  static const json null_value;
  const json* at = &j;
  for (const char* k : keys) {
    if (!at->is_object()) return null_value;
    auto it = at->find(k);
    if (it == at->end()) return null_value;
    at = &*it;
  }
  return *at;
}
bool flag(const json& j, std::initializer_list<const char*> keys) {
  const json& v = at_path(j, keys);
  return v.is_boolean() && v.get<bool>();
}
bool has_string(const json& list, std::string_view value) {
  if (!list.is_array()) return false;
  return std::any_of(list.begin(), list.end(), [&](const json& v) { return v.is_string() && v.get<std::string>() == value; });
}
std::uint32_t uint_field(const json& j, const char* key) {
  const json& v = j.at(key);
  if (!v.is_number_integer() || v.get<std::int64_t>() < 0) throw std::invalid_argument(std::string(key) + " must be a non-negative integer");
  return static_cast<std::uint32_t>(std::min<std::int64_t>(v.get<std::int64_t>(), UINT32_MAX));
}
}  // namespace

void from_json(const json& j, Position& p) {
  p.line = uint_field(j, "line");
  p.character = uint_field(j, "character");
}
void to_json(json& j, const Position& p) { j = {{"line", p.line}, {"character", p.character}}; }
void from_json(const json& j, Range& r) {
  j.at("start").get_to(r.start);
  j.at("end").get_to(r.end);
}
void to_json(json& j, const Range& r) { j = {{"start", r.start}, {"end", r.end}}; }

void from_json(const json& j, TextDocumentItem& d) {
  d.uri = j.at("uri").get<std::string>();
  d.language_id = opt<std::string>(j, "languageId");
  d.version = j.at("version").get<std::int64_t>();
  d.text = j.at("text").get<std::string>();
}

void from_json(const json& j, ContentChange& c) {
  if (j.contains("range") && !j["range"].is_null()) c.range = j["range"].get<Range>();
  c.text = j.at("text").get<std::string>();
}

void from_json(const json& j, Diagnostic& d) {
  j.at("range").get_to(d.range);
  d.severity = opt<int>(j, "severity");
  d.message = j.at("message").get<std::string>();
  d.source = opt<std::string>(j, "source");
  d.code = j.value("code", json());
  d.data = j.value("data", json());
}
void to_json(json& j, const Diagnostic& d) {
  j = {{"range", d.range}, {"message", d.message}};
  if (d.severity) j["severity"] = d.severity;
  if (!d.source.empty()) j["source"] = d.source;
  if (!d.code.is_null()) j["code"] = d.code;
  if (!d.data.is_null()) j["data"] = d.data;
}

void to_json(json& j, const TextEdit& e) {
  j = {{"range", e.range}, {"newText", e.new_text}};
  if (!e.annotation.empty()) j["annotationId"] = e.annotation;
}

void to_json(json& j, const WorkspaceEdit& e) {
  json changes = json::array();
  for (const std::string& uri : e.create) changes.push_back({{"kind", "create"}, {"uri", uri}, {"options", {{"ignoreIfExists", true}}}});
  for (const TextDocumentEdit& d : e.changes) {
    json doc = {{"uri", d.uri}, {"version", d.version ? json(*d.version) : json()}};
    changes.push_back({{"textDocument", doc}, {"edits", d.edits}});
  }
  j = {{"documentChanges", changes}};
  if (!e.annotations.empty()) {
    json a = json::object();
    for (const auto& [id, ann] : e.annotations) {
      a[id] = {{"label", ann.label}, {"needsConfirmation", ann.needs_confirmation}};
      if (!ann.description.empty()) a[id]["description"] = ann.description;
    }
    j["changeAnnotations"] = a;
  }
}

void to_json(json& j, const Command& c) {
  j = {{"title", c.title}, {"command", c.command}, {"arguments", c.arguments}};
}

void to_json(json& j, const CodeAction& a) {
  j = {{"title", a.title}, {"kind", a.kind}};
  if (!a.diagnostics.empty()) j["diagnostics"] = a.diagnostics;
  if (a.is_preferred) j["isPreferred"] = true;
  if (a.edit) j["edit"] = *a.edit;
  if (a.command) j["command"] = *a.command;
  if (!a.data.is_null()) j["data"] = a.data;
}

void from_json(const json& j, InitializeParams& p) {
  if (j.contains("processId") && j["processId"].is_number_integer()) p.process_id = j["processId"].get<std::int64_t>();
  p.root_uri = opt<std::string>(j, "rootUri");
  if (p.root_uri.empty()) {
    const json& folders = j.value("workspaceFolders", json());
    if (folders.is_array() && !folders.empty()) p.root_uri = folders[0].at("uri").get<std::string>();
  }
  if (p.root_uri.empty()) {
    std::string root_path = opt<std::string>(j, "rootPath");
    if (!root_path.empty()) p.root_uri = path_to_uri(root_path);
  }
  p.initialization_options = j.value("initializationOptions", json());
  p.client_name = at_path(j, {"clientInfo", "name"}).is_string() ? at_path(j, {"clientInfo", "name"}).get<std::string>() : "";
  const json& caps = j.value("capabilities", json::object());
  ClientCapabilities& c = p.capabilities;
  c.work_done_progress = flag(caps, {"window", "workDoneProgress"});
  c.show_document = flag(caps, {"window", "showDocument", "support"});
  c.apply_edit = flag(caps, {"workspace", "applyEdit"});
  c.document_changes = flag(caps, {"workspace", "workspaceEdit", "documentChanges"});
  c.create_files = has_string(at_path(caps, {"workspace", "workspaceEdit", "resourceOperations"}), "create");
  c.change_annotations = at_path(caps, {"workspace", "workspaceEdit", "changeAnnotationSupport"}).is_object();
  c.watched_files_dynamic = flag(caps, {"workspace", "didChangeWatchedFiles", "dynamicRegistration"});
  c.configuration = flag(caps, {"workspace", "configuration"});
  c.code_action_literals = at_path(caps, {"textDocument", "codeAction", "codeActionLiteralSupport"}).is_object();
  c.code_action_resolve_edit =
      has_string(at_path(caps, {"textDocument", "codeAction", "resolveSupport", "properties"}), "edit");
  c.hover_markdown = has_string(at_path(caps, {"textDocument", "hover", "contentFormat"}), "markdown");
  const json& enc = at_path(caps, {"general", "positionEncodings"});
  if (enc.is_array())
    for (const json& e : enc)
      if (e.is_string()) c.position_encodings.push_back(e.get<std::string>());
}

std::string uri_to_path(std::string_view uri) {
  constexpr std::string_view scheme = "file://";
  if (uri.substr(0, scheme.size()) != scheme) return "";
  uri.remove_prefix(scheme.size());
  const std::size_t slash = uri.find('/');  // skip an authority ("localhost")
  if (slash == std::string_view::npos) return "";
  uri.remove_prefix(slash);
  std::string out;
  for (std::size_t i = 0; i < uri.size(); ++i) {
    if (uri[i] == '%' && i + 2 < uri.size()) {
      auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; };
      const int hi = hex(uri[i + 1]), lo = hex(uri[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    if (uri[i] == '?' || uri[i] == '#') break;
    out.push_back(uri[i]);
  }
  return out;
}

std::string path_to_uri(std::string_view path) {
  static const char* digits = "0123456789ABCDEF";
  std::string out = "file://";
  for (unsigned char c : path) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(digits[c >> 4]);
      out.push_back(digits[c & 15]);
    }
  }
  return out;
}

}  // namespace ponder::lsp
