#pragma once
// Reading what an R1 distill answers: its reasoning, a summary line, and edits written as
// search/replace blocks — and applying one edit to a document.
//
// The answer format the prompts ask for (the one aider popularised):
//
//     One-line summary of the change.
//
//     src/file.cpp
//     ```cpp
//     <<<<<<< SEARCH
//     lines as they are now
//     =======
//     lines as they should be
//     >>>>>>> REPLACE
//     ```
//
// What the models really produce varies, and the parser takes all of it: no opening `<think>`
// (the template put it in the prompt), a lone `</think>`, no tags at all, reasoning with example
// code (blocks there are not edits), fences or none, CRLF line ends, trailing whitespace, the
// path as `path`, **path**, "File: path" or on the fence line (a word with a folder separator
// or an extension: "Makefile" alone is not taken for a path), several edits to one file.
// Problems (a block without a path, an unfinished block) are reported, never guessed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ponder::agent {

struct EditBlock {
  std::string path;     // as written by the model (relative to the workspace root), or the default
  std::string search;   // the text to find ("" = a new file's content)
  std::string replace;  // what replaces it
  std::size_t line = 0; // 1-based line of the `<<<<<<< SEARCH` marker in the answer
};

struct ParsedAnswer {
  std::string reasoning;  // the think block, without tags
  std::string answer;     // what follows it (LF line ends)
  std::string summary;    // the first line of the answer that is prose, markup stripped
  std::vector<EditBlock> edits;
  std::vector<std::string> problems;  // "line 12: a SEARCH block without a file path", ...
  bool reasoning_closed = false;      // a `</think>` was seen
};

/// Parses a model's whole output (reasoning and answer). `default_path` names the file of blocks
/// that give none (the task's target file); empty: such blocks are problems.
ParsedAnswer parse_answer(std::string_view output, std::string_view default_path = {});

/// The answer's prose without its summary line and without code: fenced blocks, edit blocks and
/// the path lines that name their files are left out (the rationale shown with an edit).
std::string answer_prose(const ParsedAnswer& answer);

/// How much a review finding matters, most first.
enum class Severity { blocker, warning, suggestion, nit };
std::string_view severity_name(Severity s);
/// "blocker", "warning", "suggestion", "nit" (any case; "error" and "critical" read as blocker,
/// "info" and "style" as nit); false for anything else.
bool parse_severity(std::string_view text, Severity* out);

/// One finding of a review (the type `ponder review` and the LSP show).
struct Finding {
  Severity severity = Severity::suggestion;
  std::string path;                 // in the new revision
  std::uint32_t first_line = 0, last_line = 0;  // 1-based, inclusive, in the new revision
  std::string title;                // one line
  std::string explanation;
  std::vector<EditBlock> edits;     // suggested change, when the model gave one
  std::string reasoning;            // the model's reasoning for the review that found it
};

/// The findings of a review answer: each starts with a line
///     [severity] path:LINE[-LINE] title
/// (list markers, bold and backticks around the parts are tolerated; "path:LINE:" and a dash
/// before the title too); the lines after it are its explanation, and edit blocks after it
/// are its suggested change. Header lines that do not parse go to `problems`.
std::vector<Finding> parse_findings(const ParsedAnswer& answer, std::vector<std::string>* problems);

struct AppliedEdit {
  bool ok = false;
  std::string text;    // the document after the edit
  std::string error;   // why it did not apply
  bool normalised = false;  // matched only after whitespace normalisation (unique)
};

/// Applies one edit to `document`: the search text must occur exactly once; failing that, the
/// lines must match exactly one place when each line is compared with its whitespace collapsed
/// (then the replacement is re-indented by the difference in indentation). An empty search text
/// applies only to an empty document (a new file). CRLF documents keep their line ends.
AppliedEdit apply_edit(std::string_view document, const EditBlock& edit);

}  // namespace ponder::agent
