-- ponder.config: the options of require("ponder").setup(), their defaults and checks, and what
-- the server is told at initialize.
local M = {}

M.defaults = {
  -- The command that starts the server (a list, as vim.lsp takes it).
  cmd = { "ponder", "lsp" },
  -- The model: a GGUF file, a Hugging Face folder, "ollama:deepseek-r1:7b", "hf:ORG/NAME".
  -- nil: .ponder.json in the workspace, else $PONDER_MODEL, else the best one ponder finds.
  model = nil,
  -- Other server settings (README "ponder lsp"): reasoningBudget, maxTokens, temperature,
  -- context, features = { codeActions, hover, suggestions }, ...
  settings = {},
  -- Buffers of these filetypes start (or join) the server of their root folder.
  filetypes = {
    "c", "cpp", "cuda", "python", "javascript", "javascriptreact",
    "typescript", "typescriptreact", "rust", "go", "java",
  },
  -- The root folder: the nearest folder upwards holding one of these; else the current folder.
  root_markers = { ".ponder.json", ".git" },
  -- Progress of the model while it works for you: "echo" (the command line), "statusline"
  -- (only require("ponder").statusline() and the LspProgress events), or false.
  progress = "echo",
  reasoning = {
    -- :PonderReasoning opens a "float" or a "split".
    window = "float",
    -- Of the editor, for the float (fractions) or the split's height in lines.
    width = 0.8,
    height = 0.7,
    -- Results whose reasoning is kept.
    keep = 20,
  },
  -- Called with (client, bufnr) when ponder attaches to a buffer.
  on_attach = nil,
  -- Client capabilities to merge over Neovim's.
  capabilities = nil,
}

local function check(opts)
  local ok, err = pcall(vim.validate, {
    cmd = { opts.cmd, "table" },
    model = { opts.model, "string", true },
    settings = { opts.settings, "table" },
    filetypes = { opts.filetypes, "table" },
    root_markers = { opts.root_markers, "table" },
    progress = {
      opts.progress,
      function(v) return v == "echo" or v == "statusline" or v == false end,
      '"echo", "statusline" or false',
    },
    reasoning = { opts.reasoning, "table" },
    ["reasoning.window"] = {
      opts.reasoning.window,
      function(v) return v == "float" or v == "split" end,
      '"float" or "split"',
    },
    on_attach = { opts.on_attach, "function", true },
    capabilities = { opts.capabilities, "table", true },
  })
  if not ok then error("ponder.setup: " .. tostring(err), 0) end
end

--- The options: `user` over the defaults. Errors name the bad option.
function M.resolve(user)
  local opts = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), user or {})
  -- Lists are replaced, not merged.
  for _, key in ipairs({ "cmd", "filetypes", "root_markers" }) do
    if user and user[key] then opts[key] = user[key] end
  end
  check(opts)
  return opts
end

--- initializationOptions: the settings, with `model` when one is named.
function M.init_options(opts)
  local s = vim.deepcopy(opts.settings)
  if opts.model and opts.model ~= "" then s.model = opts.model end
  return s
end

return M
