#pragma once
// Checking a model's edits before anything is offered to the user: each edit must apply to the
// text it was computed for, stay inside the workspace, change something, and leave the file
// parsing no worse than before (no new tree-sitter ERROR or MISSING nodes). What fails is
// reported with the reason; nothing is guessed.
#include <cstddef>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/answer.h"
#include "agent/language.h"

namespace ponder::agent {

/// One file's text before and after the edits that applied to it.
struct FileChange {
  std::string path;                  // relative to the workspace root, '/'-separated
  std::filesystem::path absolute;
  std::string before, after;
  std::vector<EditBlock> edits;      // the edits applied, in order
  bool new_file = false;
  bool normalised = false;           // some edit matched only after whitespace normalisation
};

struct RejectedEdit {
  EditBlock edit;
  std::string reason;
};

struct CheckedEdits {
  std::vector<FileChange> files;      // in the order the answer first names them
  std::vector<RejectedEdit> rejected;
};

/// The current text of a file (the editor's version of an open document, else the disk's);
/// nullopt when it does not exist.
using ReadText = std::function<std::optional<std::string>(const std::filesystem::path& absolute)>;

/// Applies and checks `edits` against the files under `root`, one file at a time: an edit
/// whose SEARCH text does not match (or matches twice) is rejected and the next edit of that
/// file applies to the text so far; all of a file's edits are rejected together when the result
/// parses with more syntax errors than the original.
CheckedEdits check_edits(const std::vector<EditBlock>& edits, const std::filesystem::path& root,
                         const ReadText& read);

/// ERROR and MISSING nodes in `text` parsed as `lang` (0 for a language we do not parse).
std::size_t syntax_errors(Language lang, std::string_view text);

}  // namespace ponder::agent
