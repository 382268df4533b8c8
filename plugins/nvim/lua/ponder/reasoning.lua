-- ponder.reasoning: the model's reasoning, assembled from the ponder/reasoning stream (each
-- notification carries the text written since the previous one of its id; the last has
-- done = true; ponder.showReasoning adds the whole result as markdown), and the window
-- :PonderReasoning shows it in, updated live while the model thinks.
local M = {}

local store = {
  entries = {}, -- id -> { id, title, uri, text, done, markdown }
  order = {},   -- ids, oldest first
  keep = 20,
}
local view = {
  buf = nil,    -- the scratch buffer "ponder://reasoning"
  win = nil,
  id = nil,     -- the result shown
  opts = { window = "float", width = 0.8, height = 0.7 },
}

function M.setup(opts)
  view.opts = opts
  store.keep = opts.keep or 20
end

local function evict()
  while #store.order > store.keep do
    local dropped = false
    for i, id in ipairs(store.order) do
      if store.entries[id].done and id ~= view.id then
        store.entries[id] = nil
        table.remove(store.order, i)
        dropped = true
        break
      end
    end
    if not dropped then return end
  end
end

-- ---- the window ----

local function valid_win()
  return view.win and vim.api.nvim_win_is_valid(view.win)
end

local function lines_of(e)
  if e.markdown and e.markdown ~= "" then return vim.split(e.markdown, "\n", true) end
  local lines = { "# " .. e.title, "" }
  if e.text == "" then
    table.insert(lines, e.done and "(no reasoning)" or "Thinking…")
  else
    vim.list_extend(lines, vim.split(e.text, "\n", true))
  end
  return lines
end

local function set_lines(first, last, lines)
  vim.bo[view.buf].modifiable = true
  vim.api.nvim_buf_set_lines(view.buf, first, last, false, lines)
  vim.bo[view.buf].modifiable = false
end

-- Follows the end of the text when the cursor was on the last line.
local function follow(was_at_end)
  if was_at_end and valid_win() then
    vim.api.nvim_win_set_cursor(view.win, { vim.api.nvim_buf_line_count(view.buf), 0 })
  end
end

local function at_end()
  if not valid_win() then return false end
  return vim.api.nvim_win_get_cursor(view.win)[1] >= vim.api.nvim_buf_line_count(view.buf)
end

local function draw()
  local e = view.id and store.entries[view.id]
  if not (view.buf and vim.api.nvim_buf_is_valid(view.buf)) or not e then return end
  local was_at_end = at_end()
  set_lines(0, -1, lines_of(e))
  view.shown = { text = #e.text, markdown = e.markdown ~= nil, placeholder = e.text == "" }
  follow(was_at_end)
end

-- Appends `text` to the shown reasoning: the last line grows, new lines are added.
local function append(e, text)
  if not (view.buf and vim.api.nvim_buf_is_valid(view.buf)) then return end
  if not view.shown or view.shown.placeholder then return draw() end
  if view.shown.markdown then return end
  local was_at_end = at_end()
  local pieces = vim.split(text, "\n", true)
  local last = vim.api.nvim_buf_get_lines(view.buf, -2, -1, false)[1] or ""
  pieces[1] = last .. pieces[1]
  set_lines(-2, -1, pieces)
  view.shown.text = #e.text
  follow(was_at_end)
end

local function ensure_buffer()
  if view.buf and vim.api.nvim_buf_is_valid(view.buf) then return end
  view.buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_name(view.buf, "ponder://reasoning")
  local bo = vim.bo[view.buf]
  bo.buftype, bo.bufhidden, bo.swapfile = "nofile", "hide", false
  bo.filetype = "markdown"
  bo.modifiable = false
  vim.api.nvim_buf_set_keymap(view.buf, "n", "q", "<Cmd>close<CR>", { noremap = true, silent = true, nowait = true })
end

local function open_window()
  if valid_win() then return end
  local o = view.opts
  if o.window == "split" then
    local height = o.height < 1 and math.floor(vim.o.lines * o.height) or o.height
    vim.cmd("botright " .. math.max(height, 3) .. "split")
    view.win = vim.api.nvim_get_current_win()
    vim.api.nvim_win_set_buf(view.win, view.buf)
  else
    local width = math.floor(vim.o.columns * (o.width <= 1 and o.width or o.width / vim.o.columns))
    local height = math.floor((vim.o.lines - 2) * (o.height <= 1 and o.height or o.height / vim.o.lines))
    width, height = math.max(width, 20), math.max(height, 5)
    view.win = vim.api.nvim_open_win(view.buf, true, {
      relative = "editor",
      width = width,
      height = height,
      row = math.floor((vim.o.lines - 2 - height) / 2),
      col = math.floor((vim.o.columns - width) / 2),
      style = "minimal",
      border = "rounded",
    })
  end
  vim.wo[view.win].wrap = true
  vim.wo[view.win].linebreak = true
end

-- ---- the stream ----

--- ponder/reasoning.
function M.on_notification(p)
  if type(p) ~= "table" or type(p.id) ~= "string" or p.id == "" then return end
  local e = store.entries[p.id]
  local started = false
  if not e then
    e = { id = p.id, title = p.title or "", uri = p.uri, text = "", done = false }
    store.entries[p.id] = e
    table.insert(store.order, p.id)
    started = true
  end
  local text = type(p.text) == "string" and p.text or ""
  e.text = e.text .. text
  local redraw = false
  if p.done and not e.done then e.done, redraw = true, true end
  if type(p.markdown) == "string" then e.markdown, redraw = p.markdown, true end
  -- A request that starts while the window is open takes it over.
  if started and not e.done and valid_win() then
    view.id = e.id
    draw()
  elseif e.id == view.id then
    if redraw then draw() elseif text ~= "" then append(e, text) end
  end
  evict()
end

--- The newest result still running, else the newest; nil when there is none.
function M.current()
  for i = #store.order, 1, -1 do
    local e = store.entries[store.order[i]]
    if not e.done then return e end
  end
  local id = store.order[#store.order]
  return id and store.entries[id]
end

function M.get(id)
  return store.entries[id]
end

--- Opens the window on result `id` (else the current one). False when there is nothing to show.
function M.open(id)
  local e = id and store.entries[id] or (not id and M.current())
  if not e then return false end
  ensure_buffer()
  view.id = e.id
  open_window()
  draw()
  follow(not e.done)
  return true
end

--- The server is gone: nothing runs any more.
function M.stop_all()
  for _, id in ipairs(store.order) do
    local e = store.entries[id]
    if not e.done then
      e.done = true
      if id == view.id then draw() end
    end
  end
end

--- For tests: the window, its buffer and the result shown.
function M.view()
  return { win = valid_win() and view.win or nil, buf = view.buf, id = view.id }
end

return M
