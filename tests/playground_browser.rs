//! The playground page in a real browser: Debian's chromium, driven through
//! chromedriver's WebDriver API (plain HTTP, the client of
//! tests/playground_support). It needs both installed (`apt-get install
//! chromium chromium-driver`), so it is ignored by a plain `cargo test`:
//! `cargo test --test playground_browser -- --ignored`. With
//! `XF_SCREENSHOT=docs/playground.png` it saves a screenshot of the page.

mod playground_support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use playground_support::{http, Playground};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    child: Child,
    address: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Driver {
    fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts (apt-get install chromium-driver)");
        let address = format!("127.0.0.1:{port}");
        let started = Instant::now();
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver does not listen"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let mut driver = Driver {
            child,
            address,
            session: String::new(),
            _profile: profile,
        };
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1500,900".into(),
            format!("--user-data-dir={}", driver._profile.path().display()),
        ];
        let answer = driver.call(
            "POST",
            "/session",
            json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": CHROMIUM, "args": args}
            }}}),
        );
        driver.session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        driver
    }

    /// One WebDriver command; its `value`.
    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let body = if method == "GET" || method == "DELETE" {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let answer = http(
            &self.address,
            method,
            path,
            &[("Content-Type", "application/json")],
            &body,
        );
        let value: Value = serde_json::from_str(&answer.body)
            .unwrap_or_else(|e| panic!("{path}: {e}: {}", answer.body));
        assert_eq!(answer.status, 200, "{method} {path}: {value}");
        value["value"].clone()
    }

    fn session(&self, method: &str, path: &str, body: Value) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    fn element(&self, css: &str) -> String {
        let found = self.session(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_string()
    }

    fn text(&self, css: &str) -> String {
        let element = self.element(css);
        self.session("GET", &format!("/element/{element}/text"), json!({}))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn script(&self, script: &str) -> Value {
        self.session(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
    }

    /// Clears a field and types into it, key by key (each fires `input`).
    fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css);
        self.session("POST", &format!("/element/{element}/clear"), json!({}));
        self.session(
            "POST",
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        );
    }

    /// Waits until the text of `css` satisfies `test`; its text then.
    fn wait_for(&self, css: &str, what: &str, test: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let text = self.text(css);
            if test(&text) {
                return text;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{css} never showed {what}; it shows:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = std::panic::catch_unwind(|| http(&self.address, "DELETE", &path, &[], b""));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs chromium and chromedriver: cargo test --test playground_browser -- --ignored"]
fn an_author_types_a_mistake_sees_the_diagnostic_fixes_it_and_sees_the_output() {
    let playground = Playground::start(&[]);
    let driver = Driver::start();
    driver.session("POST", "/url", json!({"url": playground.url()}));
    // The page starts with a transform and a fixture, and runs them.
    driver.wait_for("#status", "ok", |text| text == "ok");
    // Highlighted by the TextMate grammar: keywords, strings, comments.
    let classes = driver.script(
        "return [...document.querySelectorAll('#highlight span')].map(s => s.className).join(' ')",
    );
    let classes = classes.as_str().unwrap();
    for class in ["tm-keyword", "tm-string", "tm-comment", "tm-template-punct"] {
        assert!(classes.contains(class), "{class} not in {classes}");
    }

    driver.type_into(
        "#transform",
        "format default\ndrop when severity = 8\nlabel customer = \"Cardify\"\n",
    );
    let diagnostic = driver.wait_for("#diagnostics", "the diagnostic", |text| {
        text.contains("error[E0001]")
    });
    assert!(diagnostic.contains("--> transform.xf:2:20"), "{diagnostic}");
    assert!(
        diagnostic.contains("drop when severity = 8"),
        "{diagnostic}"
    );
    assert!(diagnostic.contains('^'), "{diagnostic}");
    let marked =
        driver.script("return document.querySelector('#highlight .mark-error').textContent");
    assert_eq!(marked, "=");
    assert_eq!(driver.text("#output"), "");

    driver.type_into(
        "#transform",
        "format default\ndrop when severity == 8\nlabel customer = \"Cardify\"\n",
    );
    let output = driver.wait_for("#output", "the output", |text| text.contains("Cardify"));
    assert!(output.contains("\"customer\": \"Cardify\""), "{output}");
    assert_eq!(driver.text("#diagnostics"), "");
    assert!(driver
        .script("return document.querySelector('#highlight .mark-error')")
        .is_null());
    // The trace pane: the condition that kept the record, with the value it read.
    let trace = driver.wait_for("#trace", "the trace", |text| text.contains("→ written"));
    assert!(trace.contains("kept: severity == 8 is false"), "{trace}");

    // Another vendor's fixture, picked from the list.
    driver.script(
        "const pick = document.getElementById('fixture'); \
         pick.value = 'queryai/detection-matched.json'; \
         pick.dispatchEvent(new Event('change'));",
    );
    let output = driver.wait_for("#output", "the fixture's output", |text| {
        text.contains("Suspicious Login Attempts")
    });
    assert!(output.contains("\"customer\": \"Cardify\""), "{output}");
    // A fixture without headers empties the headers field.
    assert_eq!(
        driver.script("return document.getElementById('headers').value"),
        ""
    );

    // A header line that is not `Name: value` is named in the status, the page still there.
    driver.type_into("#headers", "X-GitHub-Event code_scanning_alert");
    let status = driver.wait_for("#status", "the header line's error", |text| {
        text.contains("\"headers\", line 1")
    });
    assert!(status.contains("is not `Name: value`"), "{status}");

    // A GitHub payload comes with its X-GitHub-Event header, so that GitHub's
    // transform, picked from the list, works as it is.
    driver.script(
        "const pick = document.getElementById('fixture'); \
         pick.value = 'github/code_scanning_alert/created.payload.json'; \
         pick.dispatchEvent(new Event('change')); \
         const example = document.getElementById('example'); \
         example.value = 'github-splunk.xf'; \
         example.dispatchEvent(new Event('change'));",
    );
    assert_eq!(
        driver.script("return document.getElementById('headers').value"),
        "X-GitHub-Event: code_scanning_alert"
    );
    let output = driver.wait_for("#output", "GitHub's Splunk event", |text| {
        text.contains("\"sourcetype\": \"github:code_scanning_alert\"")
    });
    assert!(
        output.contains("\"github_event\": \"code_scanning_alert\""),
        "{output}"
    );
    driver.wait_for("#status", "ok", |text| text == "ok");
    assert_eq!(driver.text("#errors"), "");

    if let Ok(path) = std::env::var("XF_SCREENSHOT") {
        let png = driver.session("GET", "/screenshot", json!({}));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}
