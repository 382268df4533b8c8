-- ponder: the Neovim side of ponder's language server — code actions and hover come through
-- Neovim's LSP client; this adds :PonderAsk, :PonderReasoning, :PonderCancel, :PonderStatus,
-- progress on the command line or the statusline, and the one-step-undo edits. :help ponder
local client = require("ponder.client")
local config = require("ponder.config")
local reasoning = require("ponder.reasoning")
local status = require("ponder.status")

local M = {}

local opts = nil
local ERROR_CANCELLED, ERROR_FAILED = -32800, -32803
-- ponder.ask requests not answered yet: Neovim never hands a cancelled request's answer
-- (-32800) to its handler, so :PonderCancel reports them.
local pending = {}

local function client_or_warn(bufnr)
  local c = client.get(bufnr)
  if not c then
    vim.notify("ponder: no ponder server runs for this buffer (:help ponder-setup)", vim.log.levels.WARN)
  end
  return c
end

-- The position of (row, byte col) in the client's encoding. Rows are 0-based.
local function position(bufnr, row, col, encoding)
  local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
  col = math.min(col, #line)
  if encoding == "utf-8" then return { line = row, character = col } end
  local utf32, utf16 = vim.str_utfindex(line, col)
  return { line = row, character = encoding == "utf-32" and utf32 or utf16 }
end

--- The range :PonderAsk works on: the lines given to the command, else the cursor.
local function ask_range(bufnr, command, encoding)
  if command and command.range and command.range > 0 then
    local last = vim.api.nvim_buf_line_count(bufnr)
    local stop = command.line2 < last and { line = command.line2, character = 0 }
      or position(bufnr, last - 1, math.huge, encoding)
    return { start = { line = command.line1 - 1, character = 0 }, ["end"] = stop }
  end
  local cursor = vim.api.nvim_win_get_cursor(0)
  local p = position(bufnr, cursor[1] - 1, cursor[2], encoding)
  return { start = p, ["end"] = p }
end

local function on_ask_result(err, result)
  if err then
    if err.code == ERROR_CANCELLED then
      status.echo("ponder: cancelled")
    elseif err.code ~= ERROR_FAILED then -- "no valid edit" comes as the server's own message
      vim.notify("ponder: " .. tostring(err.message), vim.log.levels.ERROR)
    end
    return
  end
  if type(result) ~= "table" then return end
  M.last_result = result.resultId
  if result.applied == true then
    status.echo("ponder: " .. (result.summary or "applied") .. " (u undoes it, :PonderReasoning says why)")
  elseif result.applied == false then
    status.echo("ponder: the edit was not applied (" .. (result.summary or "") .. ")", "WarningMsg")
  elseif result.markdown then -- a question: the answer is the result
    reasoning.open(result.resultId)
  end
end

--- :PonderAsk [instruction] — runs an instruction on the selected lines (or the definition at
--- the cursor); the edit is applied and one `u` undoes it. Without an instruction, asks for one
--- with vim.ui.input.
function M.ask(command)
  local bufnr = vim.api.nvim_get_current_buf()
  local c = client_or_warn(bufnr)
  if not c then return end
  local range = ask_range(bufnr, command, c.offset_encoding or "utf-16")
  local uri = vim.uri_from_bufnr(bufnr)
  local function send(instruction)
    if not instruction or vim.trim(instruction) == "" then return end
    status.echo("ponder: thinking about “" .. vim.trim(instruction) .. "”…")
    local request_id
    local ok, id = client.execute(c, "ponder.ask", { { uri = uri, range = range, instruction = vim.trim(instruction) } },
      function(err, result)
        pending[request_id] = nil
        on_ask_result(err, result)
      end, bufnr)
    if ok and id then
      request_id = id
      pending[id] = true
    end
  end
  local given = command and command.args or ""
  if given ~= "" then return send(given) end
  vim.ui.input({ prompt = "Ask ponder: " }, send)
end

--- :PonderReasoning [id] — the reasoning of the running request, else of the last result, in
--- a floating window (or split), updated as the model writes. For a finished result the server
--- is asked for the whole of it (summary, rationale, reasoning).
function M.show_reasoning(command)
  local id = command and command.args ~= "" and command.args or nil
  local e = id and reasoning.get(id) or (not id and reasoning.current())
  local c = client.get(vim.api.nvim_get_current_buf())
  if e and not e.done then return reasoning.open(e.id) end
  if not c then
    if not (e and reasoning.open(e.id)) then status.echo("ponder: no reasoning yet", "WarningMsg") end
    return
  end
  if e then reasoning.open(e.id) end
  client.execute(c, "ponder.showReasoning", { (e and e.id) or id or M.last_result or vim.NIL }, function(err, result)
    if err then
      if not e then status.echo("ponder: " .. tostring(err.message), "WarningMsg") end
      return
    end
    -- The markdown came as a ponder/reasoning notification first; show that result.
    if type(result) == "table" and result.resultId and not e then reasoning.open(result.resultId) end
  end)
end

--- :PonderCancel — stops what the server is running.
function M.cancel()
  local c = client_or_warn(vim.api.nvim_get_current_buf())
  if not c then return end
  client.execute(c, "ponder.cancel", {}, function(err)
    if err then return status.echo("ponder: " .. tostring(err.message), "WarningMsg") end
    local asked = next(pending) ~= nil
    pending = {}
    status.echo(asked and "ponder: cancelled" or "ponder: stopped what was running")
  end)
end

--- :PonderStatus — the model and what runs.
function M.status()
  local c = client_or_warn(vim.api.nvim_get_current_buf())
  if not c then return end
  client.execute(c, "ponder.status", {}, function(err, result)
    local lines = status.describe(not err and result or nil)
    if err then table.insert(lines, "ponder: " .. tostring(err.message)) end
    vim.api.nvim_echo(vim.tbl_map(function(l) return { l .. "\n" } end, lines), false, {})
  end)
end

--- For the statusline: `set statusline+=%{v:lua.require'ponder'.statusline()}`.
function M.statusline()
  return status.statusline()
end

--- Starts ponder for `bufnr` (setup does this for the configured filetypes).
function M.attach(bufnr)
  assert(opts, "ponder: call require('ponder').setup() first")
  return client.attach(opts, bufnr or vim.api.nvim_get_current_buf())
end

--- The ponder client of `bufnr` (nil when none), for scripts and tests.
function M.client(bufnr)
  return client.get(bufnr)
end

function M.setup(user)
  opts = config.resolve(user)
  status.setup(opts.progress)
  reasoning.setup(opts.reasoning)
  local group = vim.api.nvim_create_augroup("ponder", { clear = true })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = opts.filetypes,
    callback = function(args) M.attach(args.buf) end,
  })
  local command = vim.api.nvim_create_user_command
  command("PonderAsk", M.ask, { nargs = "*", range = true, desc = "ponder: run an instruction on the selection" })
  command("PonderReasoning", M.show_reasoning, { nargs = "?", desc = "ponder: show the model's reasoning" })
  command("PonderCancel", M.cancel, { desc = "ponder: stop what the model is doing" })
  command("PonderStatus", M.status, { desc = "ponder: the model's state" })
  -- The command of ponder's code actions and suggestions ("Show ponder's reasoning"): the
  -- reasoning window instead of a round trip whose answer would be dropped.
  vim.lsp.commands["ponder.showReasoning"] = function(cmd)
    local id = cmd.arguments and cmd.arguments[1]
    M.show_reasoning({ args = type(id) == "string" and id or "" })
  end
  -- Buffers opened before setup.
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(opts.filetypes, vim.bo[bufnr].filetype) then
      M.attach(bufnr)
    end
  end
end

return M
