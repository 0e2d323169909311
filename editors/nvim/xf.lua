-- xf lsp in Neovim (0.7 or later, its built-in LSP client): .xf and .xfp files get the
-- diagnostics `xf check` gives as you type, completion, hover, go to definition, symbols
-- and formatting. Highlighting stays with the TextMate grammar (editors/xf.tmLanguage.json)
-- or none: Neovim does not read TextMate grammars.
--
-- In init.lua, with this folder on 'runtimepath' (or this file copied into lua/):
--   require("xf").setup()                      -- `xf` on PATH
--   require("xf").setup({ cmd = { "/path/to/xf", "lsp", "--allow-dir", "/srv/shared" } })
-- Then: K (vim.lsp.buf.hover), gd (vim.lsp.buf.definition), <C-x><C-o> with
-- omnifunc=v:lua.vim.lsp.omnifunc, :lua vim.lsp.buf.formatting() (0.7) or .format() (0.8+),
-- :lua vim.lsp.buf.code_action() for the "did you mean" fixes.

local M = {}

-- One client per folder (a transform's files are read from its own folder).
local clients = {}

local function start(buffer, opts)
  local file = vim.api.nvim_buf_get_name(buffer)
  local root = vim.fn.fnamemodify(file, ":p:h")
  local id = clients[root]
  if id == nil or vim.lsp.get_client_by_id(id) == nil then
    id = vim.lsp.start_client({
      name = "xf",
      cmd = opts.cmd or { "xf", "lsp" },
      root_dir = root,
      handlers = opts.handlers,
      on_attach = opts.on_attach,
      flags = { debounce_text_changes = opts.debounce or 100 },
    })
    clients[root] = id
  end
  if id ~= nil then
    vim.lsp.buf_attach_client(buffer, id)
    vim.bo[buffer].omnifunc = "v:lua.vim.lsp.omnifunc"
  end
end

--- Sets the filetype `xf` for *.xf and *.xfp, and starts `xf lsp` for them.
--- opts: cmd (the command, default { "xf", "lsp" }), handlers, on_attach, debounce (ms).
function M.setup(opts)
  opts = opts or {}
  local group = vim.api.nvim_create_augroup("xf_lsp", { clear = true })
  vim.api.nvim_create_autocmd({ "BufRead", "BufNewFile" }, {
    group = group,
    pattern = { "*.xf", "*.xfp" },
    callback = function(args)
      vim.bo[args.buf].filetype = "xf"
    end,
  })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = "xf",
    callback = function(args)
      start(args.buf, opts)
    end,
  })
end

return M
