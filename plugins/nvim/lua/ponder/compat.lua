-- ponder.compat: the few calls whose API changed between Neovim 0.7 and today. The plugin runs
-- on 0.7 (Debian 12's Neovim, where its tests run) and uses the newer call where it exists.
local M = {}

local has_011 = vim.fn.has("nvim-0.11") == 1

--- Starts the client for `config.root_dir`, or reuses the running one, and attaches `bufnr`.
--- Returns the client id. `running` maps root folders to client ids (0.7 has no reuse of its own).
function M.start(config, bufnr, running)
  if vim.lsp.start then -- 0.8+: finds a client with the same name and root, or starts one
    return vim.lsp.start(config, { bufnr = bufnr })
  end
  local id = running[config.root_dir]
  if not id or not vim.lsp.get_client_by_id(id) then
    id = vim.lsp.start_client(config)
    if not id then return nil end
    running[config.root_dir] = id
  end
  vim.lsp.buf_attach_client(bufnr, id)
  return id
end

--- client.request: a method since 0.11. Returns ok, request_id.
function M.request(client, method, params, handler, bufnr)
  if has_011 then return client:request(method, params, handler, bufnr) end
  return client.request(method, params, handler, bufnr)
end

--- The autocommand that reports LSP progress: event and pattern (for the docs and tests).
function M.progress_autocmd()
  if vim.fn.has("nvim-0.10") == 1 then return "LspProgress", "*" end
  return "User", "LspProgressUpdate"
end

return M
