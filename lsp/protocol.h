#pragma once
// The LSP structures ponder reads and writes, with their JSON conversions. Handlers work on
// these; JSON stays at this edge. from_json throws (nlohmann::json::exception, std::invalid_argument) on a wrong shape
// (the server answers it with InvalidParams).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lsp/json_rpc.h"
#include "lsp/positions.h"

namespace ponder::lsp {

struct Range {
  Position start, end;
  friend bool operator==(const Range&, const Range&) = default;
};

struct TextDocumentItem {
  std::string uri, language_id, text;
  std::int64_t version = 0;
};

struct ContentChange {
  std::optional<Range> range;  // absent: the whole text
  std::string text;
};

struct Diagnostic {
  Range range;
  int severity = 0;  // 1 error, 2 warning, 3 information, 4 hint; 0 absent
  std::string message, source;
  json code;  // string, number or null
  json data;
};

struct TextEdit {
  Range range;
  std::string new_text;
  std::string annotation;  // a change annotation id, or ""
};

struct TextDocumentEdit {
  std::string uri;
  std::optional<std::int64_t> version;  // null: a file not open in the editor
  std::vector<TextEdit> edits;
};

struct ChangeAnnotation {
  std::string label, description;
  bool needs_confirmation = false;
};

struct WorkspaceEdit {
  std::vector<std::string> create;      // files to create first (uris)
  std::vector<TextDocumentEdit> changes;
  std::map<std::string, ChangeAnnotation> annotations;
};

struct Command {
  std::string title, command;
  json arguments = json::array();
};

struct CodeAction {
  std::string title, kind;
  std::vector<Diagnostic> diagnostics;
  bool is_preferred = false;
  std::optional<WorkspaceEdit> edit;
  std::optional<Command> command;
  json data;  // carried to codeAction/resolve
};

/// What ponder uses of the client's capabilities.
struct ClientCapabilities {
  bool work_done_progress = false;      // window.workDoneProgress
  bool show_document = false;           // window.showDocument.support
  bool apply_edit = false;              // workspace.applyEdit
  bool document_changes = false;        // workspace.workspaceEdit.documentChanges
  bool create_files = false;            // workspace.workspaceEdit.resourceOperations has "create"
  bool change_annotations = false;      // workspace.workspaceEdit.changeAnnotationSupport
  bool watched_files_dynamic = false;   // workspace.didChangeWatchedFiles.dynamicRegistration
  bool code_action_literals = false;    // textDocument.codeAction.codeActionLiteralSupport
  bool code_action_resolve_edit = false;  // textDocument.codeAction.resolveSupport has "edit"
  bool hover_markdown = false;          // textDocument.hover.contentFormat has "markdown"
  bool configuration = false;           // workspace.configuration
  std::vector<std::string> position_encodings;  // general.positionEncodings
};

struct InitializeParams {
  std::optional<std::int64_t> process_id;
  std::string root_uri;  // rootUri, else the first workspace folder, else rootPath as a uri
  json initialization_options;
  ClientCapabilities capabilities;
  std::string client_name;
};

void from_json(const json& j, Position& p);
void to_json(json& j, const Position& p);
void from_json(const json& j, Range& r);
void to_json(json& j, const Range& r);
void from_json(const json& j, TextDocumentItem& d);
void from_json(const json& j, ContentChange& c);
void from_json(const json& j, Diagnostic& d);
void to_json(json& j, const Diagnostic& d);
void to_json(json& j, const TextEdit& e);
void to_json(json& j, const WorkspaceEdit& e);
void to_json(json& j, const Command& c);
void to_json(json& j, const CodeAction& a);
void from_json(const json& j, InitializeParams& p);

/// file:// URIs and paths. uri_to_path returns "" for a URI that is not a file URI.
std::string uri_to_path(std::string_view uri);
std::string path_to_uri(std::string_view path);

}  // namespace ponder::lsp
