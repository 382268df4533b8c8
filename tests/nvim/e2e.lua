-- The language server from a real client: Neovim 0.7 (Debian's 0.7.2) headless, configured with
-- the README's "Neovim (0.7+)" snippet, read from README.md and run as it stands, so the README
-- and what is tested cannot drift apart.
--
-- Run by tests/nvim/run_e2e.sh, which lays out the workspace (a .git folder, src/sum.cpp,
-- .ponder.json naming a generated model) and puts on PATH a `ponder` that forces a known answer.
-- Environment: PONDER_E2E_README (README.md), PONDER_E2E_WORKSPACE (the workspace root),
-- PONDER_E2E_TIMEOUT_MS (the whole test's limit).
--
-- It opens src/sum.cpp, lists code actions, resolves "Ponder: improve `sum`" (codeAction/resolve),
-- applies the WorkspaceEdit with vim.lsp.util.apply_workspace_edit, hovers over the new code and
-- over a call of sum, then undoes the edit and does it again the way a user does
-- (vim.lsp.buf.code_action() with a choice made in vim.ui.select), and stops the server. Any
-- failure ends Neovim with exit code 1 and a message saying what was expected.

local workspace = assert(vim.env.PONDER_E2E_WORKSPACE, "PONDER_E2E_WORKSPACE is not set")
local readme_path = assert(vim.env.PONDER_E2E_README, "PONDER_E2E_README is not set")
local timeout_ms = tonumber(vim.env.PONDER_E2E_TIMEOUT_MS or "") or 30000
local request_ms = 20000

local function log(...)
  io.stderr:write("nvim e2e: " .. table.concat(vim.tbl_map(tostring, { ... }), " ") .. "\n")
end

local function finish(code)
  io.stderr:flush()
  vim.cmd((code == 0 and "qall!" or ("cquit " .. code)))
end

-- The whole test's limit: timers fire while vim.wait and request_sync wait.
vim.defer_fn(function()
  log("FAIL: timed out after " .. timeout_ms .. " ms")
  finish(1)
end, timeout_ms)

local function check(cond, message, detail)
  if not cond then
    error(message .. (detail ~= nil and ("\n  got: " .. vim.inspect(detail)) or ""), 2)
  end
end

local function wait_for(what, ms, predicate)
  check(vim.wait(ms, predicate, 20), "timed out waiting for " .. what)
end

-- What the client was told: vim.notify messages, ponder/reasoning text, $/progress kinds.
local notices = {}
local default_notify = vim.notify
vim.notify = function(msg, level, opts)
  table.insert(notices, { msg = msg, level = level or vim.log.levels.INFO })
  return default_notify(msg, level, opts)
end
local reasoning = { text = "", done = false }
vim.lsp.handlers["ponder/reasoning"] = function(_, params)
  reasoning.text = reasoning.text .. (params.text or "")
  reasoning.done = reasoning.done or params.done == true
end
local progress_kinds = {}
local default_progress = vim.lsp.handlers["$/progress"]
vim.lsp.handlers["$/progress"] = function(err, result, ctx, config)
  if result and result.value and result.value.kind then
    progress_kinds[result.value.kind] = (progress_kinds[result.value.kind] or 0) + 1
  end
  return default_progress(err, result, ctx, config)
end

-- The README's Lua blocks: the one after the heading line that starts with `start`.
local function readme_block(start)
  local lines = vim.fn.readfile(readme_path)
  local i = 1
  while i <= #lines and lines[i]:find(start, 1, true) ~= 1 do i = i + 1 end
  check(i <= #lines, "README.md has no line starting with " .. start)
  while i <= #lines and lines[i] ~= "```lua" do i = i + 1 end
  local block = {}
  for j = i + 1, #lines do
    if lines[j] == "```" then return table.concat(block, "\n") end
    table.insert(block, lines[j])
  end
  error("README.md: the lua block after " .. start .. " never ends")
end

local function lines_of(text)
  return vim.split(text, "\n", { plain = true })
end

local function buffer_text(buf)
  return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n")
end

local original = table.concat(vim.fn.readfile(workspace .. "/src/sum.cpp"), "\n")
local edited = original:gsub(vim.pesc("  for (int i = 0; i <= n; ++i) {\n    s += v[i];\n"),
  "  for (int x : v) {\n    s += x;\n")
local summary = "Iterate over the vector's elements instead of an index bound by n."
assert(edited ~= original, "tests/fixtures/lsp/sum.cpp no longer holds the loop the forced answer edits")

local function test()
  -- The newer configuration (vim.lsp.config, Neovim 0.11) cannot run on 0.7: it must at least parse.
  local _, syntax_error = loadstring(readme_block("With Neovim 0.11's `vim.lsp.config`"), "README vim.lsp.config")
  check(syntax_error == nil, "the README's vim.lsp.config snippet does not parse", syntax_error)
  -- The 0.7 configuration, as the README gives it.
  local config, load_error = loadstring(readme_block("**Neovim** (0.7+)"), "README Neovim 0.7 snippet")
  check(config, "the README's Neovim 0.7 snippet does not parse", load_error)
  config()

  vim.cmd("edit " .. vim.fn.fnameescape(workspace .. "/src/sum.cpp"))
  local buf = vim.api.nvim_get_current_buf()
  check(vim.bo[buf].filetype == "cpp", "src/sum.cpp should have filetype cpp", vim.bo[buf].filetype)
  local client
  wait_for("the ponder client to start and initialize", 10000, function()
    for _, c in pairs(vim.lsp.buf_get_clients(buf)) do
      if c.name == "ponder" and c.initialized then client = c end
    end
    return client ~= nil
  end)
  check(client.config.root_dir == workspace, "the root is the folder holding .git", client.config.root_dir)
  check(client.offset_encoding == "utf-16", "Neovim 0.7 speaks UTF-16", client.offset_encoding)
  local caps = client.server_capabilities
  check(type(caps.codeActionProvider) == "table" and caps.codeActionProvider.resolveProvider == true,
    "the server offers codeAction/resolve", caps.codeActionProvider)
  check(caps.positionEncoding == "utf-16", "no positionEncodings offered: the server says utf-16", caps.positionEncoding)
  -- A second buffer of the same project shares the server.
  vim.cmd("split " .. vim.fn.fnameescape(workspace .. "/src/other.cpp"))
  local other = vim.api.nvim_get_current_buf()
  wait_for("the second buffer to attach", 5000, function() return next(vim.lsp.buf_get_clients(other)) ~= nil end)
  local attached = vim.tbl_keys(vim.lsp.buf_get_clients(other))
  check(#attached == 1 and attached[1] == client.id, "one ponder per project", attached)
  vim.cmd("close")
  vim.api.nvim_set_current_buf(buf)

  local uri = vim.uri_from_bufnr(buf)
  local function position(line, character) return { line = line, character = character } end
  local function request(method, params)
    local response, err = client.request_sync(method, params, request_ms, buf)
    check(response, method .. ": no response", err)
    check(response.err == nil, method .. " failed", response.err)
    return response.result
  end

  -- The listing: at once, from the index, with no edit yet (thinking is lazy).
  local version = vim.lsp.util.buf_versions[buf]
  local actions = request("textDocument/codeAction", {
    textDocument = { uri = uri },
    range = { start = position(4, 10), ["end"] = position(4, 10) },
    context = { diagnostics = {} },
  })
  local titles = vim.tbl_map(function(a) return a.title end, actions or {})
  local improve
  for _, a in ipairs(actions or {}) do
    if a.title == "Ponder: improve `sum`" then improve = a end
  end
  check(improve, "the listing offers Ponder: improve `sum`", titles)
  check(vim.tbl_contains(titles, "Ponder: explain `sum`"), "the listing offers Ponder: explain `sum`", titles)
  check(improve.kind == "refactor.rewrite" and improve.edit == nil and improve.data ~= nil,
    "the action is a lazy refactor.rewrite carrying data", improve)
  check(improve.command == nil, "with resolve support the action needs no ponder.run command", improve.command)

  -- Resolve: the model runs (forced to a known answer) and the checked edit comes back.
  local resolved = request("codeAction/resolve", improve)
  -- Neovim 0.7 advertises neither workspaceEdit.documentChanges nor changeAnnotationSupport: the
  -- edit comes as plain `changes` (the server checked it against the version listed).
  local edit = resolved and resolved.edit
  check(edit and edit.changes and edit.documentChanges == nil and edit.changeAnnotations == nil,
    "resolve returns plain changes (what Neovim 0.7 supports)", resolved)
  check(resolved.data and resolved.data.version == version, "the action was listed for version " .. version, resolved.data)
  check(vim.deep_equal(edit.changes, { [uri] = { {
      range = { start = position(4, 0), ["end"] = position(6, 0) },
      newText = "  for (int x : v) {\n    s += x;\n",
    } } }), "the edit replaces the loop's first two lines", edit.changes)
  check(resolved.command and resolved.command.command == "ponder.showReasoning",
    "the resolved action carries ponder.showReasoning", resolved.command)
  local shown = request("workspace/executeCommand", resolved.command)
  check(shown and type(shown.markdown) == "string" and shown.markdown:find("## Reasoning", 1, true),
    "ponder.showReasoning returns the reasoning as markdown (Neovim 0.7 has no showDocument)", shown)
  check(reasoning.done and reasoning.text:find("one past the end", 1, true),
    "ponder/reasoning streamed the reasoning and ended with done", reasoning)
  check((progress_kinds.begin or 0) >= 1 and (progress_kinds["end"] or 0) >= 1,
    "$/progress began and ended", progress_kinds)

  vim.lsp.util.apply_workspace_edit(edit, client.offset_encoding)
  check(buffer_text(buf) == edited, "the buffer holds the edited text", lines_of(buffer_text(buf)))

  -- Hover over the code ponder wrote: why (the summary and the reasoning).
  local hover = request("textDocument/hover", { textDocument = { uri = uri }, position = position(5, 6) })
  local text = hover and hover.contents and hover.contents.value or ""
  check(hover and hover.contents.kind == "markdown", "hover is markdown", hover)
  check(text:find(summary, 1, true) and text:find("## Reasoning", 1, true) and text:find("one past the end", 1, true),
    "hover over the new code shows its summary and reasoning", lines_of(text))
  -- Hover over the call of sum: signature, location and (hoverWaitsForModel) the explanation.
  hover = request("textDocument/hover", { textDocument = { uri = uri }, position = position(10, 51) })
  text = hover and hover.contents and hover.contents.value or ""
  check(text:find("int sum(const std::vector<int>& v, int n) {", 1, true) and text:find("src/sum.cpp:3", 1, true),
    "hover over sum( shows its signature and location", lines_of(text))
  check(text:find(summary, 1, true), "hover over sum( shows the model's explanation", lines_of(text))
  check(vim.deep_equal(hover.range, { start = position(10, 50), ["end"] = position(10, 53) }),
    "the hover's range is the name sum", hover.range)

  -- Again, as a user does it: undo, then :lua vim.lsp.buf.code_action() and pick the action.
  vim.cmd("silent undo")
  check(buffer_text(buf) == original, "undo restores the text", lines_of(buffer_text(buf)))
  local offered
  local default_select = vim.ui.select
  vim.ui.select = function(items, opts, on_choice)
    offered = vim.tbl_map(opts.format_item, items)
    for _, item in ipairs(items) do
      if item[2].title == "Ponder: improve `sum`" then return on_choice(item) end
    end
    on_choice(nil)
  end
  vim.api.nvim_win_set_cursor(0, { 5, 10 })
  vim.lsp.buf.code_action()
  wait_for("vim.lsp.buf.code_action() to resolve and apply the edit", request_ms, function()
    return buffer_text(buf) == edited
  end)
  vim.ui.select = default_select
  check(offered and vim.tbl_contains(offered, "Ponder: improve `sum`"), "vim.ui.select was offered the action", offered)

  -- Stop the server: shutdown, exit, and a clean exit code (Neovim warns otherwise).
  vim.lsp.stop_client(client.id)
  wait_for("the server to exit", 5000, function() return vim.lsp.client_is_stopped(client.id) end)
  vim.wait(100)  -- the exit-code warning is scheduled
  local bad = vim.tbl_filter(function(n) return n.level >= vim.log.levels.WARN end, notices)
  check(#bad == 0, "no warnings or errors were shown", bad)
end

local ok, err = xpcall(test, debug.traceback)
if ok then
  log("ok: README 0.7 config, code actions, resolve, apply, hover (reasoning, explanation), vim.lsp.buf.code_action, shutdown")
  finish(0)
else
  log("FAIL: " .. tostring(err))
  if #notices > 0 then log("messages shown:", vim.inspect(notices)) end
  finish(1)
end
