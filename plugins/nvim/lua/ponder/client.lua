-- ponder.client: starts `ponder lsp` for the buffers of the configured filetypes (one server per
-- root folder), and handles what the server sends beyond stock LSP.
local compat = require("ponder.compat")
local config = require("ponder.config")
local reasoning = require("ponder.reasoning")
local status = require("ponder.status")

local M = {}

local running = {} -- root folder -> client id (Neovim 0.7, see compat.start)
local ids = {}     -- client id -> true, for every ponder client started

--- The nearest folder upwards from `path` holding one of `markers`, else the current folder.
function M.root_dir(path, markers)
  local dir = path ~= "" and vim.fn.fnamemodify(path, ":p:h") or vim.fn.getcwd()
  while true do
    for _, marker in ipairs(markers) do
      if vim.loop.fs_stat(dir .. "/" .. marker) then return dir end
    end
    local parent = vim.fn.fnamemodify(dir, ":h")
    if parent == dir then return vim.fn.getcwd() end
    dir = parent
  end
end

-- Starts a new undo block in `bufnr` (setting 'undolevels', even to its own value, closes the
-- current one: |undo-break|), so one `u` undoes exactly ponder's edit.
local function break_undo(bufnr)
  vim.api.nvim_buf_call(bufnr, function() vim.cmd("let &g:undolevels = &g:undolevels") end)
end

-- The buffers a WorkspaceEdit changes, loaded; false with a reason when one changed since the
-- version the edit was computed for.
local function edit_buffers(edit)
  local bufs = {}
  for _, change in ipairs(edit.documentChanges or {}) do
    if change.textDocument then
      local bufnr = vim.uri_to_bufnr(change.textDocument.uri)
      vim.fn.bufload(bufnr)
      local v = change.textDocument.version
      local versions = vim.lsp.util.buf_versions -- newer Neovims use b:changedtick
      local now = versions and versions[bufnr] or (not versions and vim.api.nvim_buf_get_changedtick(bufnr))
      if type(v) == "number" and now and now > v then
        return false, "the buffer changed while ponder was thinking (" .. vim.uri_to_fname(change.textDocument.uri) .. ")"
      end
      table.insert(bufs, bufnr)
    end
  end
  for uri in pairs(edit.changes or {}) do
    local bufnr = vim.uri_to_bufnr(uri)
    vim.fn.bufload(bufnr)
    table.insert(bufs, bufnr)
  end
  return bufs
end

-- workspace/applyEdit: applied at once (the user can undo it in one step), checked against
-- the buffer versions first.
local function apply_edit(_, params, ctx)
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  if not (client and params and params.edit) then return { applied = false, failureReason = "no edit" } end
  local bufs, why = edit_buffers(params.edit)
  if not bufs then
    status.echo("ponder: not applied: " .. why, "WarningMsg")
    return { applied = false, failureReason = why }
  end
  for _, b in ipairs(bufs) do break_undo(b) end
  local ok, err = pcall(vim.lsp.util.apply_workspace_edit, params.edit, client.offset_encoding)
  for _, b in ipairs(bufs) do break_undo(b) end
  if not ok then return { applied = false, failureReason = tostring(err) } end
  return { applied = true }
end

-- window/showDocument of ponder.showReasoning's markdown file: :PonderReasoning shows it.
local function show_document(err, params, ctx, cfg)
  if params and type(params.uri) == "string" and params.uri:match("/ponder%-reasoning/ponder%-[^/]+%.md$") then
    return { success = true }
  end
  local default = vim.lsp.handlers["window/showDocument"]
  if default then return default(err, params, ctx, cfg) end
  return { success = false }
end

local function progress(err, params, ctx, cfg)
  if params and type(params.token) == "string" and params.token:match("^ponder/") then status.on_progress(params) end
  -- Neovim's own handler: client progress messages, LspProgress / User LspProgressUpdate.
  return vim.lsp.handlers["$/progress"](err, params, ctx, cfg)
end

local function capabilities(opts)
  local caps = vim.lsp.protocol.make_client_capabilities()
  -- Neovim applies documentChanges (0.7 does, without saying so): the server then names the
  -- document version its edit is for, and stale edits are refused instead of misapplied.
  caps.workspace.workspaceEdit = caps.workspace.workspaceEdit or {}
  caps.workspace.workspaceEdit.documentChanges = true
  caps.window = caps.window or {}
  caps.window.workDoneProgress = true
  if opts.capabilities then caps = vim.tbl_deep_extend("force", caps, opts.capabilities) end
  return caps
end

--- The vim.lsp client configuration for a buffer in `root`.
function M.config(opts, root)
  return {
    name = "ponder",
    cmd = opts.cmd,
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = vim.fn.fnamemodify(root, ":t") } },
    init_options = config.init_options(opts),
    capabilities = capabilities(opts),
    handlers = {
      ["ponder/reasoning"] = function(_, params) reasoning.on_notification(params) end,
      ["ponder/status"] = function(_, params) status.on_status(params) end,
      ["$/progress"] = progress,
      ["workspace/applyEdit"] = apply_edit,
      ["window/showDocument"] = show_document,
    },
    on_attach = opts.on_attach,
    on_exit = function(_, _, client_id)
      ids[client_id] = nil
      for root_dir, id in pairs(running) do
        if id == client_id then running[root_dir] = nil end
      end
      vim.schedule(function()
        reasoning.stop_all()
        status.on_exit()
      end)
    end,
  }
end

--- Starts (or joins) the server for `bufnr`. Returns the client id.
function M.attach(opts, bufnr)
  local root = M.root_dir(vim.api.nvim_buf_get_name(bufnr), opts.root_markers)
  local id = compat.start(M.config(opts, root), bufnr, running)
  if id then ids[id] = true end
  return id
end

--- The ponder client attached to `bufnr`, else any running ponder client; nil when none.
function M.get(bufnr)
  local any
  for id in pairs(ids) do
    local c = vim.lsp.get_client_by_id(id)
    if c then
      if bufnr and vim.lsp.buf_is_attached(bufnr, id) then return c end
      any = any or c
    end
  end
  return any
end

--- workspace/executeCommand `command` with `arguments`; `handler(err, result)`.
function M.execute(client, command, arguments, handler, bufnr)
  return compat.request(client, "workspace/executeCommand", { command = command, arguments = arguments },
    function(err, result) handler(err, result) end, bufnr)
end

return M
