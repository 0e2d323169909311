-- Driven by tests/nvim.rs: Neovim headless, its LSP client set up by editors/nvim/xf.lua,
-- types each mistake (XF_MISTAKES, files separated by newlines) into the open transform
-- XF_FILE, and writes what it received for each to XF_OUT as JSON: the publishDiagnostics
-- params as they came, and vim.diagnostic.get() as Neovim keeps them.
local repo = os.getenv("XF_REPO")
package.path = repo .. "/editors/nvim/?.lua;" .. package.path

local received = nil
local function on_diagnostics(err, result, ctx, config)
  received = result
  vim.lsp.handlers["textDocument/publishDiagnostics"](err, result, ctx, config)
end

require("xf").setup({
  cmd = { os.getenv("XF_BIN"), "lsp" },
  handlers = { ["textDocument/publishDiagnostics"] = on_diagnostics },
  debounce = 0,
})

local out = {}
local function finish(status)
  vim.fn.writefile({ vim.fn.json_encode(out) }, os.getenv("XF_OUT"))
  vim.cmd(status == 0 and "qa!" or "cq!")
end

vim.cmd("edit " .. vim.fn.fnameescape(os.getenv("XF_FILE")))
local buffer = vim.api.nvim_get_current_buf()

-- Waits until the last diagnostics received are empty (want_empty) or not.
local function wait_for(want_empty)
  return vim.wait(20000, function()
    return received ~= nil and ((#received.diagnostics == 0) == want_empty)
  end, 10)
end

if not wait_for(true) then
  out.error = "no empty diagnostics for the clean file"
  finish(1)
end

out.mistakes = {}
for file in string.gmatch(os.getenv("XF_MISTAKES"), "[^\n]+") do
  local lines = vim.fn.readfile(file)
  received = nil
  vim.api.nvim_buf_set_lines(buffer, 0, -1, false, lines)
  if not wait_for(false) then
    out.error = "no diagnostics for " .. file
    finish(1)
  end
  table.insert(out.mistakes, {
    file = file,
    lsp = received.diagnostics,
    neovim = vim.diagnostic.get(buffer),
  })
  -- Back to a clean text before the next mistake.
  received = nil
  vim.api.nvim_buf_set_lines(buffer, 0, -1, false, { "label ok = 1" })
  if not wait_for(true) then
    out.error = "no empty diagnostics after " .. file
    finish(1)
  end
end
finish(0)
