//! Neovim as the client of `xf lsp`: headless, its built-in LSP client set up
//! by the repository's `editors/nvim/xf.lua`, it opens a transform and has
//! each of the README's common mistakes typed into it (tests/nvim/drive.lua);
//! the diagnostics it received must carry the code and span `xf check` prints.
//!
//! Needs Neovim (Debian: `apt-get install neovim`; another with
//! `XF_NVIM=PATH`), so a plain `cargo test` leaves it out (`test = false` in
//! Cargo.toml): `cargo test --test nvim`. `.ci/run` installs it and runs it.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod lsp_common;
use lsp_common::{check_says, MISTAKES};

fn nvim() -> String {
    std::env::var("XF_NVIM").unwrap_or_else(|_| "nvim".to_string())
}

#[test]
fn neovim_receives_the_code_and_span_xf_check_prints_for_each_common_mistake() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let mut mistakes = Vec::new();
    for (name, text) in MISTAKES {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        mistakes.push(path);
    }
    let file = dir.path().join("typed-into.xf");
    std::fs::write(&file, "label ok = 1\n").unwrap();
    let out = dir.path().join("received.json");
    let list: Vec<String> = mistakes.iter().map(|p| p.display().to_string()).collect();
    let mut child = Command::new(nvim())
        .args(["--headless", "--clean", "-n", "-i", "NONE", "-c"])
        .arg(format!(
            "luafile {}",
            repo.join("tests/nvim/drive.lua").display()
        ))
        .env("XF_REPO", &repo)
        .env("XF_BIN", env!("CARGO_BIN_EXE_xf"))
        .env("XF_FILE", &file)
        .env("XF_MISTAKES", list.join("\n"))
        .env("XF_OUT", &out)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{} does not start ({e}): apt-get install neovim, or XF_NVIM=PATH",
                nvim()
            )
        });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("Neovim did not finish within two minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let received: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap_or_default())
        .unwrap_or_else(|e| panic!("no output from Neovim ({status}): {e}"));
    assert!(
        status.success() && received.get("error").is_none(),
        "{status}: {received}"
    );
    let received = received["mistakes"].as_array().unwrap();
    assert_eq!(received.len(), MISTAKES.len());
    for (path, got) in mistakes.iter().zip(received) {
        let (code, line, column, carets) = check_says(path);
        let name = path.file_name().unwrap().to_string_lossy();
        // As the server sent it (UTF-16 columns) …
        let first = &got["lsp"][0];
        assert_eq!(first["code"], code.as_str(), "{name}: {got}");
        let start = &first["range"]["start"];
        assert_eq!(
            (start["line"].as_u64(), start["character"].as_u64()),
            (Some(u64::from(line - 1)), Some(u64::from(column - 1))),
            "{name}: {got}"
        );
        let end = &first["range"]["end"];
        if end["line"] == start["line"] {
            let width = end["character"].as_u64().unwrap() - start["character"].as_u64().unwrap();
            assert_eq!(width, u64::from(carets), "{name}: {got}");
        }
        // … and as Neovim keeps it (0-based line, byte column: the same here, ASCII before each).
        let kept = got["neovim"].as_array().unwrap();
        let kept = kept
            .iter()
            .find(|d| {
                d["lnum"].as_u64() == Some(u64::from(line - 1))
                    && d["col"].as_u64() == Some(u64::from(column - 1))
            })
            .unwrap_or_else(|| {
                panic!("{name}: Neovim keeps no diagnostic at {line}:{column}: {got}")
            });
        let kept_code = kept
            .get("code")
            .or_else(|| kept.pointer("/user_data/lsp/code"));
        assert_eq!(
            kept_code.and_then(Value::as_str),
            Some(code.as_str()),
            "{name}: {kept}"
        );
        assert_eq!(kept["source"], "xf");
    }
}
