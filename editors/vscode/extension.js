// Starts `xf lsp` for .xf and .xfp files through vscode-languageclient: diagnostics as
// `xf check` gives them, quick fixes, completion, hover, go to definition, symbols and
// formatting. Highlighting stays with the TextMate grammar (xf.tmLanguage.json).
// Run `npm install` in this folder once (it fetches vscode-languageclient).
"use strict";

const { workspace } = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = workspace.getConfiguration("xf");
  const command = config.get("path", "xf");
  const args = ["lsp"];
  for (const dir of config.get("allowDirs", [])) {
    args.push("--allow-dir", dir);
  }
  const server = { command, args };
  client = new LanguageClient(
    "xf",
    "xf lsp",
    { run: server, debug: server },
    {
      documentSelector: [
        { scheme: "file", language: "xf" },
        { scheme: "untitled", language: "xf" },
      ],
    }
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
