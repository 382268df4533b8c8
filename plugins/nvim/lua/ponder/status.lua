-- ponder.status: the model's state (ponder/status) and the progress of what it is doing
-- ($/progress), for require("ponder").statusline(), :PonderStatus and the command line.
local M = {}

local state = {
  model = nil,     -- ponder/status of the model: { state = loading|idle|failed|unloaded, detail }
  thinking = nil,  -- ponder/status while a request runs: { detail = its title, tokens, tokensPerSecond }
  progress = {},   -- token -> { title, message } of ponder's running work
  order = {},      -- tokens, oldest first
  echo = "echo",   -- the `progress` option
  last_echo = 0,
}

function M.setup(progress_option)
  state.echo = progress_option
end

local function fire()
  vim.cmd("redrawstatus!")
  if vim.fn.exists("#User#PonderStatus") == 1 then vim.cmd("doautocmd <nomodeline> User PonderStatus") end
end

local function fit(text)
  local width = math.max(vim.v.echospace or (vim.o.columns - 12), 10)
  text = text:gsub("[\r\n]+", " ")
  if vim.fn.strdisplaywidth(text) > width then text = vim.fn.strcharpart(text, 0, width - 1) .. "…" end
  return text
end

--- Writes `text` on the command line, never asking for Enter.
function M.echo(text, hl)
  vim.api.nvim_echo({ { fit(text), hl or "None" } }, false, {})
end

--- ponder/status.
function M.on_status(params)
  if params.state == "thinking" then
    state.thinking = params
  else
    state.thinking = nil
    if params.state == "idle" and params.tokens and state.model then
      -- The end of a request (its detail is the request's title): the model stays what it was.
      state.model = { state = "idle", detail = state.model.detail }
    else
      state.model = params
    end
  end
  fire()
end

local function current()
  local token = state.order[#state.order]
  return token and state.progress[token], token
end

--- $/progress of ponder's tokens ("ponder/N"): begin, report, end.
function M.on_progress(params)
  local value, token = params.value or {}, params.token
  if value.kind == "begin" then
    state.progress[token] = { title = value.title or "ponder", message = value.message or "" }
    table.insert(state.order, token)
  elseif value.kind == "report" and state.progress[token] then
    state.progress[token].message = value.message or state.progress[token].message
  elseif value.kind == "end" then
    local p = state.progress[token]
    state.progress[token] = nil
    for i, t in ipairs(state.order) do
      if t == token then table.remove(state.order, i) break end
    end
    if state.echo == "echo" and p then M.echo(p.title .. ": " .. (value.message or "done")) end
  end
  if state.echo == "echo" and value.kind ~= "end" then
    -- The server reports every ~150 ms; the command line shows at most 5 a second.
    local now = vim.loop.now()
    if value.kind == "begin" or now - state.last_echo >= 200 then
      state.last_echo = now
      local p = state.progress[token]
      if p then M.echo(p.title .. ": " .. p.message) end
    end
  end
  fire()
end

--- The server is gone.
function M.on_exit()
  state.model, state.thinking = nil, nil
  state.progress, state.order = {}, {}
  fire()
end

--- One short line: "ponder: idle", "ponder: 312 tokens · 41.2 tok/s", "ponder: loading", ...
--- "" when no ponder server runs.
function M.statusline()
  local t, p, m = state.thinking, current(), state.model
  if t and t.tokens then
    local s = string.format("ponder: thinking · %d tokens", t.tokens)
    if t.tokensPerSecond and t.tokensPerSecond > 0 then s = s .. string.format(" · %.1f tok/s", t.tokensPerSecond) end
    return s
  end
  if p then
    local tokens = p.message:match("^(%d+) tokens")
    if tokens then return "ponder: thinking · " .. tokens .. " tokens" end
    return "ponder: " .. (p.title:gsub("^Ponder: ", ""))
  end
  if t then return "ponder: thinking" end
  if not m then return "" end
  if m.state == "failed" then return "ponder: no model" end
  return "ponder: " .. m.state
end

--- What :PonderStatus prints: the model's state and the server's answer to ponder.status.
function M.describe(server)
  local m = state.model
  local lines = {}
  if m then
    table.insert(lines, string.format("ponder: model %s%s", m.state, (m.detail and m.detail ~= "") and (" — " .. m.detail) or ""))
  end
  if server then
    table.insert(lines, string.format("ponder: %s · %s%s · index %s",
      server.model ~= "" and server.model or "no model",
      server.running and "running" or "idle",
      (server.queued or 0) > 0 and string.format(", %d queued", server.queued) or "",
      server.indexReady and "ready" or "building"))
  end
  local p = current()
  if p then table.insert(lines, "ponder: " .. p.title .. ": " .. p.message) end
  return lines
end

--- For tests.
function M.state()
  return state
end

return M
