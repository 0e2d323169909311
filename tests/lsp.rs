//! `xf lsp`, the real binary over stdio, driven with JSON-RPC messages as an
//! editor sends them: initialize, didOpen, didChange, publishDiagnostics,
//! completion, hover, definition, formatting, documentSymbol, codeAction,
//! shutdown and exit.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod lsp_common;
use lsp_common::{check_says, MISTAKES};

/// How long any one answer may take before the test fails (a hang is a failure).
const PATIENCE: Duration = Duration::from_secs(20);

/// A running `xf lsp` and what it has sent.
struct Client {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
    /// Notifications received while waiting for something else.
    notifications: Vec<Value>,
    next_id: i64,
}

impl Client {
    fn start(dir: &Path) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_xf"))
            .arg("lsp")
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("xf lsp starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Some(message) = read_message(&mut reader) {
                if sender.send(message).is_err() {
                    break;
                }
            }
        });
        let mut client = Client {
            child,
            stdin,
            messages,
            notifications: Vec::new(),
            next_id: 1,
        };
        let result = client.request(
            "initialize",
            json!({"processId": null, "rootUri": null, "capabilities": {}}),
        );
        let capabilities = &result["capabilities"];
        assert_eq!(capabilities["textDocumentSync"], json!(1), "{result}");
        for provider in [
            "completionProvider",
            "hoverProvider",
            "definitionProvider",
            "documentSymbolProvider",
            "documentFormattingProvider",
            "codeActionProvider",
        ] {
            assert!(!capabilities[provider].is_null(), "{provider}: {result}");
        }
        assert_eq!(result["serverInfo"]["name"], "xf");
        client.notify("initialized", json!({}));
        client
    }

    fn send(&mut self, message: &Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request and waits for its answer (the whole response).
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let message = self.next(&format!("the answer to {method}"));
            if message["id"] == json!(id) && message.get("method").is_none() {
                return message;
            }
            self.notifications.push(message);
        }
    }

    /// A request's result; an error answer fails the test.
    fn request(&mut self, method: &str, params: Value) -> Value {
        let response = self.call(method, params);
        assert!(response.get("error").is_none(), "{method}: {response}");
        response["result"].clone()
    }

    fn next(&mut self, what: &str) -> Value {
        match self.messages.recv_timeout(PATIENCE) {
            Ok(message) => message,
            Err(RecvTimeoutError::Timeout) => {
                panic!("no message within {PATIENCE:?} waiting for {what}")
            }
            Err(RecvTimeoutError::Disconnected) => {
                let mut stderr = String::new();
                let _ = self
                    .child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut stderr);
                panic!("xf lsp ended waiting for {what}; stderr: {stderr}")
            }
        }
    }

    /// The next publishDiagnostics for `uri` (earlier ones already received first).
    fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        let is_for = |m: &Value| {
            m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri
        };
        if let Some(at) = self.notifications.iter().position(is_for) {
            let found = self.notifications.remove(at);
            return found["params"]["diagnostics"].as_array().unwrap().clone();
        }
        loop {
            let message = self.next(&format!("diagnostics of {uri}"));
            if is_for(&message) {
                return message["params"]["diagnostics"].as_array().unwrap().clone();
            }
            self.notifications.push(message);
        }
    }

    fn open(&mut self, uri: &str, text: &str) -> Vec<Value> {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "xf", "version": 1, "text": text}}),
        );
        self.diagnostics(uri)
    }

    fn change(&mut self, uri: &str, version: i64, text: &str) {
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]}),
        );
    }

    fn at(&mut self, method: &str, uri: &str, (line, character): (u32, u32)) -> Value {
        self.request(
            method,
            json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}),
        )
    }

    /// shutdown, then exit: the process ends with status 0.
    fn stop(mut self) {
        assert_eq!(self.request("shutdown", Value::Null), Value::Null);
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "xf lsp exited with {status}");
                let mut stderr = String::new();
                let _ = self
                    .child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut stderr);
                assert!(!stderr.contains("panicked"), "{stderr}");
                return;
            }
            assert!(Instant::now() < deadline, "xf lsp did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn read_message(reader: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(value) = line.strip_prefix("Content-Length: ") {
            length = value.parse().ok();
        }
    }
    let mut body = vec![0; length?];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

fn uri(path: &Path) -> String {
    let path = path.canonicalize().unwrap();
    format!("file://{}", path.display())
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh folder with `files` (name, text) in it.
fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn labels(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap_or_else(|| panic!("not a list of items: {items}"))
        .iter()
        .map(|item| item["label"].as_str().unwrap().to_string())
        .collect()
}

fn item<'a>(items: &'a Value, label: &str) -> &'a Value {
    items
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["label"] == label)
        .unwrap_or_else(|| panic!("no item {label} in {:?}", labels(items)))
}

#[test]
fn diagnostics_follow_the_text_and_the_server_shuts_down_cleanly() {
    let dir = folder(&[("t.xf", "")]);
    let uri = uri(&dir.path().join("t.xf"));
    let mut client = Client::start(dir.path());
    let diagnostics = client.open(&uri, "name \"x\"\nlable idx = \"Alpha\"\n");
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    let d = &diagnostics[0];
    assert_eq!(d["code"], "E0002");
    assert_eq!(d["severity"], 1);
    assert_eq!(d["source"], "xf");
    assert_eq!(
        d["range"],
        json!({"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 5}})
    );
    let message = d["message"].as_str().unwrap();
    assert!(
        message.starts_with("unknown statement `lable`"),
        "{message}"
    );
    assert!(message.contains("did you mean `label`?"), "{message}");
    client.change(&uri, 2, "name \"x\"\nlabel idx = \"Alpha\"\n");
    assert_eq!(client.diagnostics(&uri), Vec::<Value>::new());
    // A warning is a warning (severity 2), with its code.
    client.change(&uri, 3, "drop when \"detail-type\" == \"WebhookTest\"\n");
    let warnings = client.diagnostics(&uri);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["code"], "W0001");
    assert_eq!(warnings[0]["severity"], 2);
    // Closing a document clears its diagnostics.
    client.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": uri}}),
    );
    assert_eq!(client.diagnostics(&uri), Vec::<Value>::new());
    client.stop();
}

#[test]
fn each_common_mistake_gets_the_code_and_span_xf_check_prints_and_its_fix_works() {
    let dir = folder(MISTAKES);
    let mut client = Client::start(dir.path());
    for (name, text) in MISTAKES {
        let path = dir.path().join(name);
        let (code, line, column, carets) = check_says(&path);
        let uri = uri(&path);
        let diagnostics = client.open(&uri, text);
        let first = diagnostics
            .first()
            .unwrap_or_else(|| panic!("{name}: no diagnostic"));
        assert_eq!(first["code"], code.as_str(), "{name}: {first}");
        let range = &first["range"];
        assert_eq!(range["start"]["line"], line - 1, "{name}: {first}");
        assert_eq!(range["start"]["character"], column - 1, "{name}: {first}");
        if range["start"]["line"] == range["end"]["line"] {
            let width = range["end"]["character"].as_u64().unwrap()
                - range["start"]["character"].as_u64().unwrap();
            assert_eq!(width, u64::from(carets), "{name}: {first}");
        }
        if *name == "unclosed-block.xf" {
            // The other place it names: the `}` that closes the outer block.
            let related = first["relatedInformation"].as_array().unwrap();
            assert_eq!(related[0]["location"]["uri"], uri.as_str());
            assert_eq!(related[0]["location"]["range"]["start"]["line"], 5);
        }
        // The fix the note suggests, where it has one, makes the problem go away.
        let actions = client.request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": uri}, "range": range, "context": {"diagnostics": diagnostics}}),
        );
        let expect_fix = !matches!(*name, "unclosed-block.xf" | "constant-comparison.xf");
        let Some(action) = actions.as_array().unwrap().first() else {
            assert!(!expect_fix, "{name}: no quick fix");
            continue;
        };
        assert_eq!(action["kind"], "quickfix");
        let edits = action["edit"]["changes"][uri.as_str()].as_array().unwrap();
        let fixed = apply(text, edits);
        client.change(&uri, 2, &fixed);
        let after = client.diagnostics(&uri);
        assert!(
            after
                .iter()
                .all(|d| d["code"] != first["code"] || d["range"] != first["range"]),
            "{name}: {fixed:?} still has {after:?}"
        );
    }
    client.stop();
}

/// `text` with LSP edits made (single-line positions, ASCII columns before them).
fn apply(text: &str, edits: &[Value]) -> String {
    let offset = |position: &Value| {
        let line = position["line"].as_u64().unwrap() as usize;
        let character = position["character"].as_u64().unwrap() as usize;
        let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
        let units: Vec<(usize, usize)> = text[start..]
            .char_indices()
            .scan(0, |seen, (at, c)| {
                let here = *seen;
                *seen += c.len_utf16();
                Some((here, at))
            })
            .collect();
        start
            + units
                .iter()
                .find(|(u, _)| *u == character)
                .map_or(text.len() - start, |(_, at)| *at)
    };
    let mut edits: Vec<(usize, usize, String)> = edits
        .iter()
        .map(|e| {
            (
                offset(&e["range"]["start"]),
                offset(&e["range"]["end"]),
                e["newText"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = text.to_string();
    for (start, end, new) in edits {
        out.replace_range(start..end, &new);
    }
    out
}

#[test]
fn an_included_file_s_problems_are_related_to_the_include() {
    let dir = folder(&[
        ("main.xf", ""),
        ("part.xf", "label a = 1\nset b = lowr(a)\n"),
    ]);
    let mut client = Client::start(dir.path());
    let main = uri(&dir.path().join("main.xf"));
    let diagnostics = client.open(&main, "include \"part.xf\"\n");
    assert_eq!(diagnostics[0]["code"], "E0702", "{diagnostics:?}");
    let related = &diagnostics[0]["relatedInformation"][0];
    assert_eq!(related["location"]["uri"], uri(&dir.path().join("part.xf")));
    assert_eq!(
        related["location"]["range"]["start"],
        json!({"line": 1, "character": 8})
    );
    assert!(
        related["message"].as_str().unwrap().contains("E0601"),
        "{related}"
    );
    // A file outside the transform's folder is not read, as `xf run` would not read it.
    let outside = folder(&[("x.xf", "label a = 1\n")]);
    let escape = format!("include \"{}\"\n", outside.path().join("x.xf").display());
    client.change(&main, 2, &escape);
    let refused = client.diagnostics(&main);
    assert_eq!(refused[0]["code"], "E0701", "{refused:?}");
    assert!(
        refused[0]["message"].as_str().unwrap().contains("outside"),
        "{refused:?}"
    );
    client.stop();
}

#[test]
fn many_queued_edits_are_checked_once_at_their_last_text() {
    // The largest shipped transform, where it is (its include is beside it); never written.
    let path = repo().join("transforms/datatheorem-ocsf.xf");
    let uri = uri(&path);
    let mut client = Client::start(&repo());
    let shipped = std::fs::read_to_string(&path).unwrap();
    client.open(&uri, "label a = 1\n");
    // Fifty edits written at once; the last one has a mistake on its last line.
    let mut batch = String::new();
    for version in 2..52 {
        let text = if version == 51 {
            format!("{shipped}lable z = 1\n")
        } else {
            format!("{shipped}label v{version} = 1\n")
        };
        let body = json!({"jsonrpc": "2.0", "method": "textDocument/didChange",
            "params": {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]}})
        .to_string();
        batch.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    }
    client.stdin.write_all(batch.as_bytes()).unwrap();
    client.stdin.flush().unwrap();
    // A request after them is answered after they are taken in: then the last text is the one checked.
    let symbols = client.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri}}),
    );
    assert!(symbols.as_array().unwrap().len() > 10);
    let mut published = 0;
    let last = loop {
        let diagnostics = client.diagnostics(&uri);
        published += 1;
        if diagnostics.iter().any(|d| d["code"] == "E0002") {
            break diagnostics;
        }
    };
    assert_eq!(last.len(), 1, "{last:?}");
    let line = shipped.lines().count() as u64;
    assert_eq!(last[0]["range"]["start"]["line"], line);
    assert!(published < 50, "{published} publications for 50 edits");
    client.stop();
}

#[test]
fn completion_offers_statements_functions_filters_and_the_vendors_field_paths() {
    let dir = folder(&[
        ("t.xf", ""),
        ("tags.csv", "accountId,index,team\n1,main,blue\n"),
    ]);
    let uri = uri(&dir.path().join("t.xf"));
    let mut client = Client::start(dir.path());
    // Cisco Identity Intelligence: `detail`, `detail.severity`, with types and descriptions.
    client.open(&uri, "validate \"cii-event\"\nset s = detail.\n");
    let items = client.at("textDocument/completion", &uri, (1, 15));
    let severity = item(&items, "detail.severity");
    assert!(
        severity["detail"]
            .as_str()
            .unwrap()
            .starts_with("one of \"low\""),
        "{severity}"
    );
    assert_eq!(
        severity["textEdit"]["range"]["start"],
        json!({"line": 1, "character": 8})
    );
    assert_eq!(severity["textEdit"]["newText"], "detail.severity");
    client.change(&uri, 2, "validate \"cii-event\"\nset s = de\n");
    let items = client.at("textDocument/completion", &uri, (1, 10));
    let found = labels(&items);
    assert!(found.contains(&"detail".to_string()), "{found:?}");
    assert!(!found.contains(&"detail-type".to_string()), "{found:?}");
    assert!(found.contains(&".\"detail-type\"".to_string()), "{found:?}");
    // Functions, with their signature and meaning.
    let epoch = item(&items, "epoch_ms");
    assert_eq!(epoch["detail"], "epoch_ms(VALUE)");
    assert!(epoch["documentation"]["value"]
        .as_str()
        .unwrap()
        .contains("epoch milliseconds"));
    // Datadog's signal.
    client.change(
        &uri,
        3,
        "validate \"datadog-signal\"\nset ip = SECURITY_SIGNAL_ATTRIBUTES.\n",
    );
    let items = client.at("textDocument/completion", &uri, (1, 36));
    let found = labels(&items);
    assert!(
        found
            .iter()
            .any(|l| l == "SECURITY_SIGNAL_ATTRIBUTES.network"),
        "{found:?}"
    );
    // Armor (declared by `events`), under `unmapped` after `nest unmapped`.
    client.change(
        &uri,
        4,
        "events security_detection\nnest unmapped\nset t = unmapped.\n",
    );
    let items = client.at("textDocument/completion", &uri, (2, 17));
    let found = labels(&items);
    for path in [
        "unmapped.severity",
        "unmapped.offenseStatus",
        "unmapped.accountId",
    ] {
        assert!(found.iter().any(|l| l == path), "{path}: {found:?}");
    }
    // Statements where a statement starts.
    client.change(&uri, 5, "la\n");
    let items = client.at("textDocument/completion", &uri, (0, 2));
    let label = item(&items, "label");
    assert_eq!(label["detail"], "label PATH = LITERAL");
    assert!(labels(&items).contains(&"fan_out".to_string()));
    // Template filters inside `{{ }}`, xf's own with their doc; tests after `is`.
    client.change(&uri, 6, "tag add t = \"{{ title | \"\n");
    let items = client.at("textDocument/completion", &uri, (0, 24));
    assert_eq!(
        item(&items, "format_time")["detail"],
        "| format_time(\"FORMAT\")"
    );
    item(&items, "lower");
    client.change(&uri, 7, "tag add t = \"{% if title is \"\n");
    let items = client.at("textDocument/completion", &uri, (0, 28));
    item(&items, "defined");
    // Lookups, their columns, variables and `request`.
    client.change(&uri, 8, "lookup tags from \"tags.csv\" key accountId\nlet team = 1\nset t = \nset u = tags.\nset r = request.\n");
    let items = client.at("textDocument/completion", &uri, (2, 8));
    for name in ["tags", "team", "request", "coalesce"] {
        item(&items, name);
    }
    let items = client.at("textDocument/completion", &uri, (3, 13));
    assert_eq!(
        labels(&items),
        ["tags.accountId", "tags.index", "tags.team"]
    );
    let items = client.at("textDocument/completion", &uri, (4, 16));
    for name in [
        "headers",
        "source",
        "path",
        "received_at",
        "delivery_id",
        "index",
    ] {
        item(&items, &format!("request.{name}"));
    }
    // Schema names after `validate`.
    client.change(&uri, 9, "validate \"\"\n");
    let items = client.at("textDocument/completion", &uri, (0, 10));
    item(&items, "armor-detection");
    client.stop();
}

#[test]
fn without_a_schema_completion_takes_the_paths_of_the_tests_inputs() {
    let dir = folder(&[
        ("mine.xf", ""),
        (
            "mine.tests/one.input.json",
            r#"{"alert": {"rule": {"id": 7}, "tags": ["a"]}, "action": "created"}"#,
        ),
        (
            "mine.tests/two.input.ndjson",
            "{\"repository\": {\"full_name\": \"o/r\"}}\n",
        ),
    ]);
    let uri = uri(&dir.path().join("mine.xf"));
    let mut client = Client::start(dir.path());
    client.open(&uri, "set x = alert.\nset y = \n");
    let items = client.at("textDocument/completion", &uri, (0, 14));
    assert_eq!(labels(&items), ["alert.rule", "alert.tags"]);
    assert_eq!(item(&items, "alert.rule")["detail"], "object");
    let items = client.at("textDocument/completion", &uri, (1, 8));
    for name in ["alert", "action", "repository"] {
        item(&items, name);
    }
    client.stop();
}

#[test]
fn hover_explains_functions_statements_fields_and_codes() {
    let dir = folder(&[("t.xf", "")]);
    let uri = uri(&dir.path().join("t.xf"));
    let mut client = Client::start(dir.path());
    client.open(
        &uri,
        "validate \"cii-event\"\nset t = epoch_ms(detail.published)\nlable x = 1\n",
    );
    let hover = |client: &mut Client, at| {
        let result = client.at("textDocument/hover", &uri, at);
        result["contents"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let text = hover(&mut client, (1, 10));
    assert!(
        text.contains("epoch_ms(VALUE)") && text.contains("epoch milliseconds"),
        "{text}"
    );
    let text = hover(&mut client, (0, 2));
    assert!(text.contains("validate \"SCHEMA\""), "{text}");
    let text = hover(&mut client, (1, 25));
    assert!(
        text.contains("`detail.published`: string (date-time)") && text.contains("cii-event"),
        "{text}"
    );
    let text = hover(&mut client, (2, 2));
    assert!(
        text.contains("E0002") && text.contains("no statement"),
        "{text}"
    );
    client.stop();
}

#[test]
fn definition_goes_to_files_variables_and_lookups_within_the_folder() {
    let dir = folder(&[
        ("t.xf", ""),
        ("part.xf", "label a = 1\n"),
        ("tags.csv", "accountId,index\n1,main\n"),
        ("summary.j2", "{{ a }}"),
    ]);
    let uri = uri(&dir.path().join("t.xf"));
    let mut client = Client::start(dir.path());
    let text = "include \"part.xf\"\nlookup tags from \"tags.csv\" key accountId\nlet team = lower(x)\nset t = team\nset i = tags.index\nmessage m = template \"summary.j2\"\ninclude \"../etc/passwd\"\n";
    client.open(&uri, text);
    let go = |client: &mut Client, at| client.at("textDocument/definition", &uri, at);
    assert_eq!(
        go(&mut client, (0, 10))["uri"],
        self::uri(&dir.path().join("part.xf"))
    );
    assert_eq!(
        go(&mut client, (1, 20))["uri"],
        self::uri(&dir.path().join("tags.csv"))
    );
    assert_eq!(
        go(&mut client, (5, 25))["uri"],
        self::uri(&dir.path().join("summary.j2"))
    );
    let team = go(&mut client, (3, 9));
    assert_eq!(team["uri"], uri.as_str());
    assert_eq!(
        team["range"],
        json!({"start": {"line": 2, "character": 4}, "end": {"line": 2, "character": 8}})
    );
    let tags = go(&mut client, (4, 9));
    assert_eq!(tags["range"]["start"], json!({"line": 1, "character": 7}));
    // Outside the folder: nothing, as `xf run` reads nothing there.
    assert_eq!(go(&mut client, (6, 12)), Value::Null);
    client.stop();
}

#[test]
fn formatting_is_xf_fmt_s_and_symbols_nest() {
    let dir = folder(&[("t.xf", "")]);
    let path = dir.path().join("t.xf");
    let uri = uri(&path);
    let text = "name   \"x\"\nwhen a==1 {\nlabel b=1\n}  else {\n    label b = 2\n}\n";
    std::fs::write(&path, text).unwrap();
    let mut client = Client::start(dir.path());
    client.open(&uri, text);
    let edits = client.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    let edits = edits.as_array().unwrap();
    assert_eq!(edits.len(), 1);
    let status = Command::new(env!("CARGO_BIN_EXE_xf"))
        .arg("fmt")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        edits[0]["newText"].as_str().unwrap(),
        std::fs::read_to_string(&path).unwrap()
    );
    assert_eq!(apply(text, edits), std::fs::read_to_string(&path).unwrap());
    let symbols = client.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri}}),
    );
    let names: Vec<&str> = symbols
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["name   \"x\"", "when a==1", "else"]);
    assert_eq!(symbols[1]["children"][0]["name"], "label b=1");
    // A text that does not parse is not formatted.
    client.change(&uri, 2, "when a == 1 {\n");
    let edits = client.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    assert_eq!(edits, Value::Null);
    client.stop();
}

#[test]
fn pipeline_files_get_their_diagnostics_fixes_and_settings() {
    let dir = folder(&[("p.xfp", ""), ("t.xf", "label a = 1\n")]);
    let uri = uri(&dir.path().join("p.xfp"));
    let mut client = Client::start(dir.path());
    let text = "source s at \"/in\" {\n  transform \"t.xf\"\n  auth none\n}\ndestnation d {\n  uri \"https://example.com/\"\n}\n";
    let diagnostics = client.open(&uri, text);
    assert_eq!(diagnostics[0]["code"], "E0801", "{diagnostics:?}");
    assert_eq!(
        diagnostics[0]["range"]["start"],
        json!({"line": 4, "character": 0})
    );
    let actions = client.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": diagnostics[0]["range"], "context": {"diagnostics": diagnostics}}),
    );
    assert_eq!(
        actions[0]["title"],
        "replace `destnation` with `destination`"
    );
    let fixed = apply(
        text,
        actions[0]["edit"]["changes"][uri.as_str()]
            .as_array()
            .unwrap(),
    );
    client.change(&uri, 2, &fixed);
    assert_eq!(client.diagnostics(&uri), Vec::<Value>::new());
    // A transform of the pipeline that does not load.
    client.change(&uri, 3, &fixed.replace("t.xf", "missing.xf"));
    let diagnostics = client.diagnostics(&uri);
    assert_eq!(diagnostics[0]["code"], "E0804", "{diagnostics:?}");
    // Settings by section.
    client.change(&uri, 4, "source s at \"/in\" {\n  \n}\n\n");
    let items = client.at("textDocument/completion", &uri, (1, 2));
    item(&items, "transform");
    let items = client.at("textDocument/completion", &uri, (3, 0));
    item(&items, "listen");
    item(&items, "destination");
    client.stop();
}

#[test]
fn a_document_over_the_limit_gets_a_diagnostic_and_the_server_goes_on() {
    let dir = folder(&[("big.xf", "")]);
    let uri = uri(&dir.path().join("big.xf"));
    let mut client = Client::start(dir.path());
    let big = "label a = 1\n".repeat((1 << 20) / 12 + 10);
    let diagnostics = client.open(&uri, &big);
    assert_eq!(diagnostics.len(), 1);
    assert!(
        diagnostics[0]["message"]
            .as_str()
            .unwrap()
            .contains("over the 1048576"),
        "{diagnostics:?}"
    );
    assert_eq!(
        client.at("textDocument/completion", &uri, (0, 0)),
        Value::Null
    );
    // Deep nesting and a long line: diagnostics, no hang.
    client.change(
        &uri,
        2,
        &format!("set a = {}1{}\n", "[".repeat(5000), "]".repeat(5000)),
    );
    let deep = client.diagnostics(&uri);
    assert_eq!(deep[0]["code"], "E0004", "{deep:?}");
    client.change(&uri, 3, "label a = 1\n");
    assert_eq!(client.diagnostics(&uri), Vec::<Value>::new());
    client.stop();
}

/// A small deterministic generator (xorshift), its seed printed, for the random edits.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

#[test]
fn random_edits_of_the_shipped_transforms_never_crash_or_hang_the_server() {
    let seed = std::env::var("XF_LSP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("seed {seed} (XF_LSP_SEED={seed} repeats it)");
    let mut rng = Rng(seed);
    let transforms = repo().join("transforms");
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&transforms).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_file() {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
    }
    let names = [
        "armor-ocsf.xf",
        "datadog-splunk.xf",
        "mixed-ocsf.xf",
        "queryai-ocsf.xf",
        "cii-splunk.xf",
    ];
    let pieces = [
        "{",
        "}",
        "\"",
        "\"\"\"",
        "{{",
        "}}",
        "{%",
        "|",
        ".",
        "[",
        "]",
        "(",
        ")",
        "é",
        "𝄞",
        "\r\n",
        "\n",
        "#",
        "'",
        "“",
        "when x {",
        "else",
        "include \"mixed-ocsf.xf\"",
        "\u{0}",
        "lable",
        "request.",
        "[event]",
    ];
    let mut client = Client::start(dir.path());
    for round in 0..12 {
        let name = names[round % names.len()];
        let uri = uri(&dir.path().join(name));
        let mut text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        client.open(&uri, &text);
        for version in 2..30 {
            // An insertion, a deletion or a replacement at a random place (on a character boundary).
            let mut at = rng.below(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let mut end = (at + rng.below(40)).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let piece = if rng.below(3) == 0 {
                ""
            } else {
                pieces[rng.below(pieces.len())]
            };
            text.replace_range(at..end, piece);
            client.change(&uri, version, &text);
            let line = rng.below(text.lines().count() + 2) as u32;
            let character = rng.below(60) as u32;
            for method in [
                "textDocument/completion",
                "textDocument/hover",
                "textDocument/definition",
            ] {
                let params = json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}});
                let response = client.call(method, params);
                assert!(
                    response.get("error").is_none(),
                    "seed {seed}: {method} at {line}:{character} of {text:?}: {response}"
                );
            }
            for method in ["textDocument/documentSymbol", "textDocument/formatting"] {
                let params = json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}});
                let response = client.call(method, params);
                assert!(
                    response.get("error").is_none(),
                    "seed {seed}: {method} of {text:?}: {response}"
                );
            }
            client.diagnostics(&uri);
        }
        client.notify(
            "textDocument/didClose",
            json!({"textDocument": {"uri": uri}}),
        );
        client.diagnostics(&uri);
    }
    client.stop();
}

#[test]
fn the_vscode_extension_starts_xf_lsp() {
    let folder = repo().join("editors/vscode");
    let package: Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("package.json")).unwrap())
            .unwrap();
    assert_eq!(package["activationEvents"], json!(["onLanguage:xf"]));
    assert!(package["dependencies"]["vscode-languageclient"].is_string());
    let extensions = &package["contributes"]["languages"][0]["extensions"];
    assert_eq!(extensions, &json!([".xf", ".xfp"]));
    let main = std::fs::read_to_string(folder.join(package["main"].as_str().unwrap())).unwrap();
    assert!(main.contains(r#"const args = ["lsp"];"#), "{main}");
    // Each setting the extension reads is one it declares.
    let declared = &package["contributes"]["configuration"]["properties"];
    for setting in ["path", "allowDirs"] {
        assert!(
            main.contains(&format!("config.get(\"{setting}\"")),
            "{setting}"
        );
        assert!(declared[format!("xf.{setting}")].is_object(), "{setting}");
    }
}
