//! Who may send to `xf serve`: the real binary, a real client on loopback,
//! every inbound scheme accepted and refused, and for every refusal nothing
//! kept and nothing delivered.
#![cfg(feature = "serve")]

mod support;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::{get, metric, post, post_with_head, send_raw, Server, Sink};
use xf::serve::receive::auth::{standard_webhooks_key, standard_webhooks_signature};

const SECOND: Duration = Duration::from_secs(1);
const BODY: &[u8] = br#"{"severity": 5, "description": "Task Scheduler Entries Modified"}"#;

/// A folder with a transform (`t.xf`) and the spool.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let setup = Setup {
            dir: tempfile::tempdir().unwrap(),
        };
        setup.file("t.xf", "label via = \"xf\"\n");
        setup
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    fn spool(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    /// The quick start on `POST /` to `sink`, with `flags` (the auth ones).
    fn quick(&self, sink: &Sink, flags: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_xf"));
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--spool"])
            .arg(self.spool())
            .args(["--transform", &self.file("t.xf", "label via = \"xf\"\n")])
            .args(["--to", &sink.url()])
            .args(flags)
            .envs(env.iter().copied());
        Server::start_command(command, &self.spool())
    }

    /// `xf serve p.xfp` (the folder's pipeline) with `env`, once it listens.
    fn serve_file(&self, env: &[(&str, &str)]) -> Server {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_xf"));
        command
            .arg("serve")
            .arg(self.dir.path().join("p.xfp"))
            .args(["--listen", "127.0.0.1:0"])
            .envs(env.iter().copied());
        Server::start_command(command, &self.spool())
    }

    /// A pipeline of one source at `/in` (its `auth` lines given) to `sink`.
    fn pipeline(&self, sink: &Sink, auth: &str, env: &[(&str, &str)]) -> Server {
        self.file(
            "p.xfp",
            &format!(
                "spool \"spool\"\nsource s at \"/in\" {{\n    transform \"t.xf\"\n{auth}\n}}\n\
                 destination d {{\n    uri \"{}\"\n}}\n",
                sink.url()
            ),
        );
        self.serve_file(env)
    }
}

/// Records that arrived at `sink` within a moment (none are expected late:
/// what was accepted is delivered at once on loopback).
fn delivered_after_a_moment(sink: &Sink, expected: usize) -> usize {
    if expected > 0 {
        sink.wait_for(10 * SECOND, "the accepted records", |r| r.len() >= expected);
    }
    std::thread::sleep(SECOND / 2);
    sink.delivered().len()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn bearer_tokens_any_of_several_and_nothing_kept_for_a_refusal() {
    let setup = Setup::new();
    let sink = Sink::start();
    let server = setup.quick(
        &sink,
        &[
            "--auth",
            "bearer",
            "--auth-secret-env",
            "XF_TEST_OLD",
            "--auth-secret-env",
            "XF_TEST_NEW",
        ],
        &[
            ("XF_TEST_OLD", "old-token-1"),
            ("XF_TEST_NEW", "new-token-2"),
        ],
    );
    for token in ["old-token-1", "new-token-2"] {
        let bearer = format!("Bearer {token}");
        let (status, answer) = post(server.address, "/", &[("Authorization", &bearer)], BODY);
        assert_eq!(status, 200, "{answer}");
    }
    let (status, head, body) = post_with_head(
        server.address,
        "/",
        &[("Authorization", "Bearer new-token-3")],
        BODY,
    );
    assert_eq!(status, 401, "{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: bearer realm=\"xf\", error=\"invalid_token\""),
        "{head}"
    );
    // The refusal echoes nothing that was sent or configured.
    assert!(!body.contains("new-token"), "{body}");
    let (status, head, _) = post_with_head(server.address, "/", &[], BODY);
    assert_eq!(status, 401);
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{head}"
    );
    let (status, _) = post(
        server.address,
        "/",
        &[("Authorization", "Basic b2xkLXRva2VuLTE=")],
        BODY,
    );
    assert_eq!(status, 401, "a token under another scheme is no token");

    assert_eq!(delivered_after_a_moment(&sink, 2), 2);
    let (_, metrics) = get(server.address, "/metrics");
    assert_eq!(
        metric(
            &metrics,
            "xf_refused_requests_total",
            "reason=\"unauthorized\""
        ),
        3.0
    );
    assert_eq!(metric(&metrics, "xf_records_received_total", ""), 2.0);
    let log = server.log();
    for secret in ["old-token-1", "new-token-2"] {
        assert!(!log.contains(secret), "a secret in the log: {log}");
        assert!(!metrics.contains(secret));
    }
}

#[test]
fn basic_credentials_and_an_allow_list() {
    let setup = Setup::new();
    let sink = Sink::start();
    setup.file("password", "s3cret: with spaces\n");
    let password = setup.dir.path().join("password").display().to_string();
    let server = setup.quick(
        &sink,
        &[
            "--auth",
            "basic",
            "--auth-user",
            "cii",
            "--auth-secret-file",
            &password,
        ],
        &[],
    );
    use base64::Engine as _;
    let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let good = format!("Basic {}", encode("cii:s3cret: with spaces"));
    let (status, answer) = post(server.address, "/", &[("Authorization", &good)], BODY);
    assert_eq!(status, 200, "{answer}");
    for wrong in [
        "cii:s3cret",
        "CII:s3cret: with spaces",
        "cii:s3cret: with spaces ",
    ] {
        let header = format!("Basic {}", encode(wrong));
        let (status, head, _) =
            post_with_head(server.address, "/", &[("Authorization", &header)], BODY);
        assert_eq!(status, 401, "{wrong}");
        assert!(head.contains("Basic realm=\"xf\""), "{head}");
    }
    assert_eq!(delivered_after_a_moment(&sink, 1), 1);
    drop(server);

    // An address outside the allow-list is forbidden, credentials or not.
    let sink = Sink::start();
    let server = setup.quick(
        &sink,
        &[
            "--auth",
            "basic",
            "--auth-user",
            "cii",
            "--auth-secret-file",
            &password,
            "--allow",
            "10.0.0.0/8",
        ],
        &[],
    );
    let (status, head, body) =
        post_with_head(server.address, "/", &[("Authorization", &good)], BODY);
    assert_eq!(status, 403, "{body}");
    assert!(
        !head.to_ascii_lowercase().contains("www-authenticate"),
        "{head}"
    );
    assert_eq!(delivered_after_a_moment(&sink, 0), 0);
}

#[test]
fn an_api_key_in_the_query_or_a_header() {
    let setup = Setup::new();
    let sink = Sink::start();
    setup.file("key", "k3y/with+odd=chars\n");
    let server = setup.pipeline(
        &sink,
        "    auth api_key query \"api_key\" = file \"key\"",
        &[],
    );
    let (status, answer) = post(
        server.address,
        "/in?api_key=k3y%2Fwith%2Bodd%3Dchars",
        &[],
        BODY,
    );
    assert_eq!(status, 200, "{answer}");
    for path in [
        "/in",
        "/in?api_key=k3y/with+odd=chars",
        "/in?key=k3y%2Fwith%2Bodd%3Dchars",
    ] {
        let (status, _) = post(server.address, path, &[], BODY);
        assert_eq!(status, 401, "{path}");
    }
    assert_eq!(delivered_after_a_moment(&sink, 1), 1);
    drop(server);

    let sink = Sink::start();
    let server = setup.quick(
        &sink,
        &[
            "--auth",
            "api_key",
            "--auth-header",
            "X-Api-Key",
            "--auth-secret-env",
            "XF_TEST_KEY",
        ],
        &[("XF_TEST_KEY", "qa-key")],
    );
    let (status, _) = post(server.address, "/", &[("X-Api-Key", "qa-key")], BODY);
    assert_eq!(status, 200);
    let (status, _) = post(server.address, "/", &[("X-Api-Key", "qa-ke")], BODY);
    assert_eq!(status, 401);
    assert_eq!(delivered_after_a_moment(&sink, 1), 1);
}

#[test]
fn standard_webhooks_signed_replayed_stale_and_tampered() {
    let setup = Setup::new();
    let sink = Sink::start();
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let server = setup.pipeline(
        &sink,
        "    auth standard_webhooks = env \"XF_TEST_WHSEC\"",
        &[("XF_TEST_WHSEC", secret)],
    );
    let key = standard_webhooks_key(secret).unwrap();
    let send = |id: &str, timestamp: i64, signed: &[u8], sent: &[u8]| {
        let signature = standard_webhooks_signature(&key, id, timestamp, signed);
        let timestamp = timestamp.to_string();
        post(
            server.address,
            "/in",
            &[
                ("webhook-id", id),
                ("webhook-timestamp", &timestamp),
                ("webhook-signature", &signature),
            ],
            sent,
        )
    };
    let (status, answer) = send("msg_1", now(), BODY, BODY);
    assert_eq!(status, 200, "{answer}");
    // The same message again (a sender's retry, or a replay): answered, not kept twice.
    let (status, answer) = send("msg_1", now(), BODY, BODY);
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"duplicate\":true"), "{answer}");
    // A signature over other bytes, a timestamp out of tolerance, no signature.
    let (status, _) = send("msg_2", now(), BODY, br#"{"severity": 9}"#);
    assert_eq!(status, 401);
    let (status, answer) = send("msg_3", now() - 600, BODY, BODY);
    assert_eq!(status, 401, "{answer}");
    assert!(answer.contains("tolerance"), "{answer}");
    let (status, _) = post(server.address, "/in", &[("webhook-id", "msg_4")], BODY);
    assert_eq!(status, 401);
    // A refused message's id is not burnt: sent right, it is taken.
    let (status, _) = send("msg_2", now(), BODY, BODY);
    assert_eq!(status, 200);
    assert_eq!(delivered_after_a_moment(&sink, 2), 2);
}

#[test]
fn github_signatures_over_the_exact_bytes() {
    let setup = Setup::new();
    let sink = Sink::start();
    let server = setup.pipeline(
        &sink,
        "    auth github = env \"XF_TEST_GH\"",
        &[("XF_TEST_GH", "It's a Secret to Everybody")],
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"It's a Secret to Everybody");
    let sign = |body: &[u8]| {
        let tag = ring::hmac::sign(&key, body);
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256={hex}")
    };
    let signature = sign(BODY);
    let (status, answer) = post(
        server.address,
        "/in",
        &[("X-Hub-Signature-256", &signature)],
        BODY,
    );
    assert_eq!(status, 200, "{answer}");
    // The same JSON with other whitespace is other bytes.
    let spaced = br#"{"severity": 5,  "description": "Task Scheduler Entries Modified"}"#;
    let (status, _) = post(
        server.address,
        "/in",
        &[("X-Hub-Signature-256", &signature)],
        spaced,
    );
    assert_eq!(status, 401);
    let (status, _) = post(server.address, "/in", &[], BODY);
    assert_eq!(status, 401);
    assert_eq!(delivered_after_a_moment(&sink, 1), 1);
}

#[test]
fn the_quick_start_without_auth_listens_only_on_loopback() {
    let setup = Setup::new();
    let t = setup.file("t.xf", "label via = \"xf\"\n");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_xf"))
        .args(["serve", "--listen", "0.0.0.0:0", "--spool"])
        .arg(setup.spool())
        .args(["--transform", &t, "--to", "http://127.0.0.1:9/"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("only on a loopback address"), "{stderr}");

    // Saying `--auth none` is a choice, and is allowed anywhere.
    let sink = Sink::start();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_xf"));
    command
        .args(["serve", "--listen", "0.0.0.0:0", "--spool"])
        .arg(setup.spool())
        .args(["--transform", &t, "--to", &sink.url(), "--auth", "none"]);
    let server = Server::start_command(command, &setup.spool());
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], server.address.port()));
    let (status, _) = post(local, "/", &[], BODY);
    assert_eq!(status, 200);
}

#[test]
fn smuggling_and_traversal_attempts_are_refused_whole() {
    let setup = Setup::new();
    let sink = Sink::start();
    let server = setup.quick(
        &sink,
        &["--auth", "bearer", "--auth-secret-env", "XF_TEST_TOKEN"],
        &[("XF_TEST_TOKEN", "t0ken")],
    );
    let address = server.address;
    // Conflicting Content-Length and Transfer-Encoding: refused, never two requests.
    let smuggled = format!(
        "POST / HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer t0ken\r\n\
         Content-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n\
         0\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    let (status, text) = send_raw(address, smuggled.as_bytes());
    assert_ne!(status, 200, "{text}");
    assert_eq!(
        text.matches("HTTP/1.1").count(),
        1,
        "one answer only: {text}"
    );
    // Paths that climb or are encoded are no source's path.
    for path in ["/../", "/%2e%2e/", "//", "/./"] {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer t0ken\r\n\
             Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        );
        let (status, text) = send_raw(address, request.as_bytes());
        assert!(status == 404 || status == 400, "{path}: {text}");
    }
    // Headers too large: refused before anything is read.
    let big = "x".repeat(70 * 1024);
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {address}\r\nX-Big: {big}\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    let (status, _) = send_raw(address, request.as_bytes());
    assert_eq!(status, 431);
    // So are more than 100 headers.
    let many: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let request =
        format!("POST / HTTP/1.1\r\nHost: {address}\r\n{many}Content-Length: 2\r\n\r\n{{}}");
    let (status, _) = send_raw(address, request.as_bytes());
    assert_eq!(status, 431);
    // A URI alone over the limit is 414 (hyper's answer, documented so; issue 28).
    let long = format!("/?q={}", "x".repeat(70 * 1024));
    let request =
        format!("POST {long} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 2\r\n\r\n{{}}");
    let (status, _) = send_raw(address, request.as_bytes());
    assert_eq!(status, 414);
    assert_eq!(delivered_after_a_moment(&sink, 0), 0);
}

/// What a destination gets: the credential it is configured with, and
/// Standard Webhooks signatures it can verify (one per key while a secret is
/// rotated), the id the same on a retry, the timestamp the attempt's.
#[test]
fn destinations_get_credentials_and_verifiable_signatures() {
    use support::Answer;
    let setup = Setup::new();
    let sink = Sink::start();
    sink.script([Answer::Status(503)]);
    let old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let new = "whsec_dGhlLW5ldy1zZWNyZXQtb2YtdGhlLXJlY2VpdmVy";
    setup.file(
        "p.xfp",
        &format!(
            "spool \"spool\"\nsource s at \"/in\" {{\n    transform \"t.xf\"\n    auth none\n}}\n\
             destination d {{\n    uri \"{}\"\n    auth bearer = env \"XF_TEST_OUT\"\n\
             \x20   sign standard_webhooks = env \"XF_TEST_OLD\"\n\
             \x20   sign standard_webhooks = env \"XF_TEST_NEW\"\n}}\n",
            sink.url()
        ),
    );
    let server = setup.serve_file(&[
        ("XF_TEST_OUT", "outbound-token"),
        ("XF_TEST_OLD", old),
        ("XF_TEST_NEW", new),
    ]);
    let (status, answer) = post(server.address, "/in", &[], BODY);
    assert_eq!(status, 200, "{answer}");
    let id: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let id = id["ids"][0].as_str().unwrap().to_string();
    sink.wait_for(30 * SECOND, "a retry after the 503", |r| r.len() >= 2);
    let received = sink.received();
    let header = |r: &support::Received, name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    for attempt in &received[..2] {
        assert_eq!(header(attempt, "authorization"), "Bearer outbound-token");
        assert_eq!(
            header(attempt, "webhook-id"),
            id,
            "the same id on every attempt"
        );
        assert_eq!(header(attempt, "webhook-signature").split(' ').count(), 2);
        // The receiver verifies with either secret, as its Standard Webhooks library would.
        for secret in [old, new] {
            let mut headers = hyper::HeaderMap::new();
            for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
                headers.insert(name, header(attempt, name).parse().unwrap());
            }
            let receiver = xf::serve::receive::auth::Auth::new(
                Vec::new(),
                xf::serve::receive::auth::Scheme::StandardWebhooks {
                    keys: vec![standard_webhooks_key(secret).unwrap()],
                    tolerance: xf::serve::receive::auth::DEFAULT_TOLERANCE,
                },
            );
            receiver
                .check_body(&headers, &attempt.body, SystemTime::now())
                .expect("a signature the receiver verifies");
        }
    }
}

/// Over a client's rate: 429 with Retry-After, and nothing kept; the
/// per-address limit holds before authentication, so guessing is slow too.
#[test]
fn rate_limits_answer_429_with_retry_after() {
    let setup = Setup::new();
    let sink = Sink::start();
    let server = setup.quick(
        &sink,
        &[
            "--auth",
            "bearer",
            "--auth-secret-env",
            "XF_TEST_TOKEN",
            "--client-rate-limit",
            "3",
        ],
        &[("XF_TEST_TOKEN", "t0ken")],
    );
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for i in 0..8 {
        let token = if i % 2 == 0 {
            "Bearer t0ken"
        } else {
            "Bearer guess"
        };
        let (status, head, _) =
            post_with_head(server.address, "/", &[("Authorization", token)], BODY);
        if status == 429 {
            retry_after = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("retry-after: ")
                    .map(str::to_string)
            });
        }
        statuses.push(status);
    }
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!(limited >= 4, "{statuses:?}");
    assert_eq!(retry_after.as_deref(), Some("1"), "{statuses:?}");
    let accepted = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(delivered_after_a_moment(&sink, accepted), accepted);
    // A second later the client is let in again.
    std::thread::sleep(SECOND);
    let (status, _) = post(
        server.address,
        "/",
        &[("Authorization", "Bearer t0ken")],
        BODY,
    );
    assert_eq!(status, 200);
}

/// Destinations may not reach loopback, private or link-local addresses
/// unless allowed: an address in the URI is refused at start, a name is
/// refused as it resolves (and the record stays queued, not delivered).
#[test]
fn destinations_may_not_reach_private_addresses_unless_allowed() {
    let setup = Setup::new();
    let t = setup.file("t.xf", "label via = \"xf\"\n");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_xf"))
        .args(["serve", "--listen", "127.0.0.1:0", "--spool"])
        .arg(setup.spool())
        .args([
            "--transform",
            &t,
            "--to",
            "http://169.254.169.254/latest/meta-data",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("169.254.169.254 is a link-local address"),
        "{stderr}"
    );

    // A name that resolves to loopback, with only another network allowed.
    let sink = Sink::start();
    let by_name = format!("http://localhost:{}/", sink.address.port());
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_xf"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--spool"])
        .arg(setup.spool())
        .args(["--transform", &t, "--to", &by_name]);
    let mut child = command
        .args(["--private-destination", "10.0.0.0/8"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Started through the support code's own reader would allow loopback; read it here.
    let stderr = child.stderr.take().unwrap();
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let log_writer = std::sync::Arc::clone(&log);
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(at) = line.find("address=") {
                let text = line[at + 8..].split_whitespace().next().unwrap_or("");
                let _ = address_tx.send(text.parse::<std::net::SocketAddr>().unwrap());
            }
            log_writer.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let address = address_rx.recv_timeout(30 * SECOND).unwrap();
    let (status, _) = post(address, "/", &[], BODY);
    assert_eq!(status, 200, "accepted: the guard is about delivering");
    std::thread::sleep(3 * SECOND);
    assert!(
        sink.received().is_empty(),
        "nothing may reach a refused address"
    );
    let (_, metrics) = get(address, "/metrics");
    assert_eq!(metric(&metrics, "xf_queue_depth", ""), 1.0, "{metrics}");
    let _ = child.kill();
    let _ = child.wait();
}

/// A certificate and key made for this test: (certificate PEM, key PEM).
fn certificate() -> (String, String) {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    (made.cert.pem(), made.signing_key.serialize_pem())
}

/// An HTTPS POST that trusts only `ca`: its status, or the error.
fn https_post(url: &str, ca: &str, body: &'static [u8]) -> Result<u16, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
            .build()
            .map_err(|e| e.to_string())?;
        let response = client
            .post(url)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok(response.status().as_u16())
    })
}

/// TLS in xf: HTTPS with the configured pair, plain HTTP refused on that
/// port, and a renewed certificate taken when its files change.
#[test]
fn tls_termination_and_a_renewed_certificate() {
    let setup = Setup::new();
    let sink = Sink::start();
    let (cert, key) = certificate();
    let cert_file = setup.file("cert.pem", &cert);
    let key_file = setup.file("key.pem", &key);
    let server = setup.quick(
        &sink,
        &[
            "--auth",
            "none",
            "--tls-cert",
            &cert_file,
            "--tls-key",
            &key_file,
            "--reload-poll",
            "1",
        ],
        &[],
    );
    let url = format!("https://127.0.0.1:{}/", server.address.port());
    assert_eq!(https_post(&url, &cert, BODY), Ok(200));
    let (status, _) =
        support::try_post(server.address, "/", &[], BODY).unwrap_or((0, String::new()));
    assert_ne!(status, 200, "plain HTTP on the TLS port");

    // Renewed: a new pair in the same files is served after the next poll.
    let (renewed, renewed_key) = certificate();
    setup.file("key.pem", &renewed_key);
    setup.file("cert.pem", &renewed);
    let deadline = std::time::Instant::now() + 20 * SECOND;
    loop {
        match https_post(&url, &renewed, BODY) {
            Ok(200) => break,
            other if std::time::Instant::now() > deadline => {
                panic!(
                    "the renewed certificate is not served: {other:?}\n{}",
                    server.log()
                )
            }
            _ => std::thread::sleep(SECOND / 4),
        }
    }
    assert!(
        https_post(&url, &cert, BODY).is_err(),
        "the old certificate is gone"
    );
    assert_eq!(delivered_after_a_moment(&sink, 2), 2);
}

/// OAuth client credentials with xf as the authorization server: a token
/// from `POST /oauth/token` (form, JSON, Basic), used as a Bearer token, good
/// only on the sources of its client; RFC 6749's errors otherwise.
#[test]
fn oauth_tokens_from_xf_itself() {
    let setup = Setup::new();
    let sink = Sink::start();
    setup.file(
        "p.xfp",
        &format!(
            "spool \"spool\"\noauth_token_lifetime 600\n\
             source cii at \"/hooks/cii\" {{\n    transform \"t.xf\"\n    auth oauth client \"cii\" = env \"XF_TEST_CII\"\n}}\n\
             source other at \"/hooks/other\" {{\n    transform \"t.xf\"\n    auth oauth client \"other\" = env \"XF_TEST_OTHER\"\n}}\n\
             destination d {{\n    uri \"{}\"\n}}\n",
            sink.url()
        ),
    );
    let server = setup.serve_file(&[
        ("XF_TEST_CII", "cii-secret"),
        ("XF_TEST_OTHER", "other-secret"),
    ]);
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let (status, head, answer) = post_with_head(
        server.address,
        "/oauth/token",
        &form,
        b"grant_type=client_credentials&client_id=cii&client_secret=cii-secret&audience=xf",
    );
    assert_eq!(status, 200, "{answer}");
    assert!(
        head.to_ascii_lowercase()
            .contains("cache-control: no-store"),
        "{head}"
    );
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 600);
    let bearer = format!("Bearer {}", answer["access_token"].as_str().unwrap());
    let (status, _) = post(
        server.address,
        "/hooks/cii",
        &[("Authorization", &bearer)],
        BODY,
    );
    assert_eq!(status, 200);
    // Not the other client's source.
    let (status, _) = post(
        server.address,
        "/hooks/other",
        &[("Authorization", &bearer)],
        BODY,
    );
    assert_eq!(status, 401);
    // JSON and Basic ask the same way.
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("other:other-secret")
    );
    let (status, answer) = post(
        server.address,
        "/oauth/token",
        &[("Authorization", &basic)],
        br#"{"grant_type": "client_credentials"}"#,
    );
    assert_eq!(status, 200, "{answer}");
    // Issue 28: Basic for one client and the body's id and secret for
    // another gave the Basic client a token; RFC 6749 §2.3 allows one method.
    let mut basic_and_form = vec![("Authorization", basic.as_str())];
    basic_and_form.extend(form);
    let (status, answer) = post(
        server.address,
        "/oauth/token",
        &basic_and_form,
        b"grant_type=client_credentials&client_id=cii&client_secret=cii-secret",
    );
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("\"invalid_request\""), "{answer}");
    assert!(!answer.contains("access_token"), "{answer}");
    // RFC 6749's errors, and nothing of the secret echoed.
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("cii:not-it")
    );
    let (status, head, answer) = post_with_head(
        server.address,
        "/oauth/token",
        &[("Authorization", &wrong)],
        br#"{"grant_type": "client_credentials"}"#,
    );
    assert_eq!(status, 401);
    assert!(answer.contains("\"invalid_client\""), "{answer}");
    assert!(head.contains("Basic realm=\"xf\""), "{head}");
    assert!(!answer.contains("not-it") && !answer.contains("cii-secret"));
    let (status, answer) = post(
        server.address,
        "/oauth/token",
        &form,
        b"grant_type=password&client_id=cii&client_secret=cii-secret",
    );
    assert_eq!(status, 400);
    assert!(answer.contains("unsupported_grant_type"), "{answer}");
    let (status, _) = post(
        server.address,
        "/hooks/cii",
        &[("Authorization", "Bearer forged.token.here")],
        BODY,
    );
    assert_eq!(status, 401);
    assert_eq!(delivered_after_a_moment(&sink, 1), 1);
}

/// Tokens of another issuer: JWTs signed in the test with a key whose
/// public half is in the source's JWKS file; issuer, audience and expiry held.
#[test]
fn jwts_of_another_issuer_checked_against_a_jwks_file() {
    use base64::Engine as _;
    let url64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let signing = rcgen::KeyPair::generate().unwrap();
    let raw = signing.public_key_raw();
    let jwks = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
        "x": url64(&raw[1..33]), "y": url64(&raw[33..65]),
    }]});
    let setup = Setup::new();
    setup.file("keys.json", &jwks.to_string());
    let sink = Sink::start();
    let server = setup.pipeline(
        &sink,
        "    auth jwt jwks \"keys.json\" issuer \"https://issuer.example\" audience \"xf-hooks\"",
        &[],
    );
    let key = jsonwebtoken::EncodingKey::from_ec_der(&signing.serialize_der());
    let token = |issuer: &str, audience: &str, expires_in: i64, kid: &str| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid.into());
        let claims = serde_json::json!({
            "iss": issuer, "aud": audience, "sub": "sender", "exp": now() + expires_in,
        });
        format!(
            "Bearer {}",
            jsonwebtoken::encode(&header, &claims, &key).unwrap()
        )
    };
    let send = |bearer: &str| post(server.address, "/in", &[("Authorization", bearer)], BODY).0;
    assert_eq!(
        send(&token("https://issuer.example", "xf-hooks", 300, "k1")),
        200
    );
    assert_eq!(
        send(&token("https://other.example", "xf-hooks", 300, "k1")),
        401
    );
    assert_eq!(
        send(&token("https://issuer.example", "someone-else", 300, "k1")),
        401
    );
    assert_eq!(
        send(&token("https://issuer.example", "xf-hooks", -120, "k1")),
        401
    );
    assert_eq!(
        send(&token("https://issuer.example", "xf-hooks", 300, "k2")),
        401
    );
    // A token signed with another key, naming ours.
    let other = rcgen::KeyPair::generate().unwrap();
    let forged_key = jsonwebtoken::EncodingKey::from_ec_der(&other.serialize_der());
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("k1".into());
    let claims =
        serde_json::json!({"iss": "https://issuer.example", "aud": "xf-hooks", "exp": now() + 300});
    let forged = jsonwebtoken::encode(&header, &claims, &forged_key).unwrap();
    assert_eq!(send(&format!("Bearer {forged}")), 401);
    assert_eq!(delivered_after_a_moment(&sink, 1), 1);
}

/// Issue 28: a refused start said `error: error: destination …`, and
/// `xf serve --help` left `oauth` out of `--auth`'s schemes (the quick start
/// takes it, as the README says).
#[test]
fn refusals_say_error_once_and_the_help_names_every_quick_start_scheme() {
    let setup = Setup::new();
    let transform = setup.file("t.xf", "label via = \"xf\"\n");
    for to in ["http://10.0.0.1/", "http://127.0.0.1:9/"] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_xf"))
            .args(["serve", "--listen", "127.0.0.1:0", "--spool"])
            .arg(setup.spool())
            .args(["--transform", &transform, "--to", to, "--auth", "none"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.starts_with("error: destination `"), "{stderr}");
        assert!(!stderr.contains("error: error"), "{stderr}");
    }
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_xf"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let auth = help
        .split("--auth <SCHEME>")
        .nth(1)
        .and_then(|rest| rest.split("\n      --").next())
        .unwrap_or_else(|| panic!("{help}"));
    let bogus = std::process::Command::new(env!("CARGO_BIN_EXE_xf"))
        .args(["serve", "--listen", "127.0.0.1:0", "--spool"])
        .arg(setup.spool())
        .args([
            "--transform",
            &transform,
            "--to",
            "https://siem.example.com/",
        ])
        .args(["--auth", "bogus", "--auth-secret-env", "PATH"])
        .output()
        .unwrap();
    let refused = String::from_utf8_lossy(&bogus.stderr);
    for scheme in [
        "none",
        "basic",
        "bearer",
        "api_key",
        "standard_webhooks",
        "github",
        "oauth",
    ] {
        assert!(auth.contains(scheme), "{scheme}: {auth}");
        assert!(refused.contains(scheme), "{scheme}: {refused}");
    }
}

/// Issue 28: a JWKS of symmetric (`oct`) keys only can authenticate nobody
/// (HMAC is never taken for another issuer's tokens), and passed `xf check`.
/// Refused at load, as an empty key set is: by `xf check` and by `xf serve`,
/// with the same message, at the JWKS file's place in the pipeline.
#[test]
fn a_jwks_of_symmetric_keys_only_is_refused_at_load() {
    let setup = Setup::new();
    setup.file(
        "keys.json",
        r#"{"keys": [{"kty": "oct", "kid": "h1", "alg": "HS256", "k": "c2VjcmV0LWtleS1vZi10aGUtdGVzdA"}]}"#,
    );
    setup.file(
        "p.xfp",
        "spool \"spool\"\nsource s at \"/in\" {\n    transform \"t.xf\"\n    auth jwt jwks \"keys.json\" issuer \"https://issuer.example\" audience \"xf\"\n}\n\
         destination d {\n    uri \"https://siem.example.com/in\"\n}\n",
    );
    let pipeline = setup.dir.path().join("p.xfp");
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_xf"))
        .arg("check")
        .arg(&pipeline)
        .output()
        .unwrap();
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_xf"))
        .arg("serve")
        .arg(&pipeline)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A server that started (the old behaviour) is stopped, and fails below.
    let started = std::time::Instant::now();
    while serve.try_wait().unwrap().is_none() && started.elapsed() < 20 * SECOND {
        std::thread::sleep(SECOND / 20);
    }
    let _ = serve.kill();
    let serve = serve.wait_with_output().unwrap();
    for (what, output) in [("xf check", &check), ("xf serve", &serve)] {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            stderr.contains("the JWKS document holds only symmetric (`oct`) keys"),
            "{what}: {stderr}"
        );
        // At the file's name in the pipeline: line 4, column 19.
        assert!(stderr.contains("p.xfp:4:19"), "{what}: {stderr}");
    }
    assert!(check.stdout.is_empty());
}

/// OAuth client credentials for a destination: the token fetched from the
/// token endpoint (a test server) and reused, fetched anew after a 401 and
/// the request tried again at once, and a failing token endpoint a
/// retriable failure with its own metric.
#[test]
fn destinations_with_oauth_client_credentials() {
    use support::Answer;
    let setup = Setup::new();
    let tokens = Sink::start();
    tokens.script([
        Answer::Body(
            200,
            r#"{"access_token":"tok-1","token_type":"Bearer","expires_in":3600}"#,
        ),
        Answer::Body(
            200,
            r#"{"access_token":"tok-2","token_type":"Bearer","expires_in":3600}"#,
        ),
        Answer::Body(503, r#"{"error":"temporarily_unavailable"}"#),
    ]);
    tokens.otherwise(Answer::Body(
        200,
        r#"{"access_token":"tok-3","expires_in":3600}"#,
    ));
    let sink = Sink::start();
    // The first record's first try: 401 (the token was revoked, say).
    sink.script([Answer::Status(401)]);
    setup.file(
        "p.xfp",
        &format!(
            "spool \"spool\"\nsource s at \"/in\" {{\n    transform \"t.xf\"\n    auth none\n}}\n\
             destination d {{\n    uri \"{}\"\n\
             \x20   auth oauth token_url \"{}\" client \"xf-client\" = env \"XF_TEST_CLIENT_SECRET\"\n\
             \x20   oauth_scope \"alerts.write\"\n    oauth_param \"resource\" = \"siem\"\n    concurrency 1\n}}\n",
            sink.url(),
            tokens.url()
        ),
    );
    let server = setup.serve_file(&[("XF_TEST_CLIENT_SECRET", "client secret/with+odd=chars")]);
    let header = |r: &support::Received, name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (status, _) = post(server.address, "/in", &[], BODY);
    assert_eq!(status, 200);
    sink.wait_for(10 * SECOND, "the retry with a fresh token", |r| {
        r.len() >= 2
    });
    let (status, _) = post(server.address, "/in", &[], BODY);
    assert_eq!(status, 200);
    sink.wait_for(10 * SECOND, "the second record", |r| r.len() >= 3);
    let received = sink.received();
    let authorizations: Vec<String> = received
        .iter()
        .map(|r| header(r, "authorization"))
        .collect();
    assert_eq!(
        authorizations,
        ["Bearer tok-1", "Bearer tok-2", "Bearer tok-2"],
        "a token is reused"
    );
    let asked = tokens.received();
    assert_eq!(asked.len(), 2, "one token request per token");
    use base64::Engine as _;
    let basic = header(&asked[0], "authorization");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(basic.strip_prefix("Basic ").unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(decoded).unwrap(),
        "xf-client:client+secret%2Fwith%2Bodd%3Dchars",
        "RFC 6749: form-encoded, then Basic"
    );
    let form = String::from_utf8(asked[0].body.clone()).unwrap();
    assert_eq!(
        form,
        "grant_type=client_credentials&scope=alerts.write&resource=siem"
    );

    // The token endpoint fails once: the record waits and is delivered after.
    let (_, metrics) = get(server.address, "/metrics");
    assert_eq!(metric(&metrics, "xf_token_failures_total", ""), 0.0);
    sink.script([Answer::Status(401)]);
    let (status, _) = post(server.address, "/in", &[], BODY);
    assert_eq!(status, 200);
    sink.wait_for(
        20 * SECOND,
        "delivery once the token endpoint is back",
        |r| r.iter().filter(|r| r.answered == 200).count() >= 3,
    );
    let (_, metrics) = get(server.address, "/metrics");
    assert_eq!(
        metric(&metrics, "xf_token_failures_total", ""),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        header(sink.received().last().unwrap(), "authorization"),
        "Bearer tok-3"
    );
    assert!(
        !server.log().contains("client secret"),
        "no secret in the log"
    );
}

/// Outgoing TLS is verified: against the system's roots, plus a
/// destination's own CA file. The destination here is a second `xf serve`
/// serving HTTPS with a certificate made by the test.
#[test]
fn outgoing_tls_is_verified_with_a_destinations_ca_file() {
    let setup = Setup::new();
    let sink = Sink::start();
    let (cert, key) = certificate();
    let cert_file = setup.file("b-cert.pem", &cert);
    let key_file = setup.file("b-key.pem", &key);
    let second = Setup::new();
    let relay = second.quick(
        &sink,
        &[
            "--auth",
            "none",
            "--tls-cert",
            &cert_file,
            "--tls-key",
            &key_file,
        ],
        &[],
    );
    let https = format!("https://127.0.0.1:{}/", relay.address.port());
    for (ca, delivered) in [("    ca_file \"b-cert.pem\"\n", 1), ("", 0)] {
        let first = Setup::new();
        first.file("b-cert.pem", &cert);
        first.file(
            "p.xfp",
            &format!(
                "spool \"spool\"\nsource s at \"/in\" {{\n    transform \"t.xf\"\n    auth none\n}}\n\
                 destination d {{\n    uri \"{https}\"\n{ca}}}\n"
            ),
        );
        let server = first.serve_file(&[]);
        let before = sink.delivered().len();
        let (status, _) = post(server.address, "/in", &[], BODY);
        assert_eq!(status, 200);
        if delivered == 1 {
            sink.wait_for(15 * SECOND, "delivery over verified TLS", |r| {
                r.len() > before
            });
        } else {
            std::thread::sleep(3 * SECOND);
            assert_eq!(
                sink.delivered().len(),
                before,
                "an unknown CA is never trusted"
            );
        }
    }
}

/// A destination that redirects (here to another server, as it could to a
/// metadata address) is not followed: the 3xx is a failure, the record
/// dead-lettered, and the redirect's target never reached.
#[test]
fn redirects_are_never_followed() {
    use support::Answer;
    let setup = Setup::new();
    let elsewhere = Sink::start();
    let sink = Sink::start();
    sink.otherwise(Answer::Redirect(elsewhere.url()));
    let server = setup.quick(&sink, &["--max-attempts", "1"], &[]);
    let (status, _) = post(server.address, "/", &[], BODY);
    assert_eq!(status, 200);
    sink.wait_for(10 * SECOND, "the attempt", |r| !r.is_empty());
    std::thread::sleep(SECOND);
    assert!(elsewhere.received().is_empty(), "a redirect was followed");
    let (_, metrics) = get(server.address, "/metrics");
    assert_eq!(
        metric(&metrics, "xf_records_dead_lettered_total", "destination="),
        1.0,
        "{metrics}"
    );
}

/// The time a wrong secret takes to be refused does not tell how close it
/// was: a token that differs from the secret in its last byte and one that
/// differs in its first take the same time (minimum over many interleaved
/// batches, which noise only ever lengthens). The bound is generous: the
/// comparison is constant-time by construction (fixed-length digests
/// compared with `subtle`, against every secret), and this checks that no
/// early exit crept in that would show at this scale.
#[test]
fn refusing_a_secret_takes_no_time_that_tells_how_close_it_was() {
    use std::time::Instant;
    use xf::serve::receive::auth::{Auth, Scheme};
    use xf::serve::receive::digest::Digest;
    let secret = "s".repeat(64);
    let auth = Auth::new(
        Vec::new(),
        Scheme::Bearer(vec![Digest::of(secret.as_bytes())]),
    );
    let headers = |token: &str| {
        let mut map = hyper::HeaderMap::new();
        map.insert("authorization", format!("Bearer {token}").parse().unwrap());
        map
    };
    let close = headers(&format!("{}t", "s".repeat(63)));
    let far = headers(&format!("t{}", "s".repeat(63)));
    let peer = std::net::IpAddr::from([127, 0, 0, 1]);
    let batch = |headers: &hyper::HeaderMap| {
        let started = Instant::now();
        for _ in 0..2_000 {
            assert!(auth
                .check_head(peer, std::hint::black_box(headers), None)
                .is_err());
        }
        started.elapsed()
    };
    let (mut close_best, mut far_best) = (Duration::MAX, Duration::MAX);
    for _ in 0..60 {
        close_best = close_best.min(batch(&close));
        far_best = far_best.min(batch(&far));
    }
    let ratio = close_best.as_secs_f64() / far_best.as_secs_f64();
    assert!(
        (0.8..1.25).contains(&ratio),
        "close {close_best:?} vs far {far_best:?} per 2,000 refusals"
    );
}

/// A destination's token is fetched anew before it expires (here it lasts 2 s,
/// so it is replaced after half its life).
#[test]
fn a_destinations_token_is_renewed_before_it_expires() {
    use support::Answer;
    let setup = Setup::new();
    let tokens = Sink::start();
    tokens.script([
        Answer::Body(200, r#"{"access_token":"short-1","expires_in":2}"#),
        Answer::Body(200, r#"{"access_token":"short-2","expires_in":2}"#),
    ]);
    let sink = Sink::start();
    setup.file(
        "p.xfp",
        &format!(
            "spool \"spool\"\nsource s at \"/in\" {{\n    transform \"t.xf\"\n    auth none\n}}\n\
             destination d {{\n    uri \"{}\"\n\
             \x20   auth oauth token_url \"{}\" client \"c\" = env \"XF_TEST_SECRET\"\n\
             \x20   oauth_client_auth body\n    oauth_body json\n}}\n",
            sink.url(),
            tokens.url()
        ),
    );
    let server = setup.serve_file(&[("XF_TEST_SECRET", "s")]);
    let (status, _) = post(server.address, "/in", &[], BODY);
    assert_eq!(status, 200);
    sink.wait_for(10 * SECOND, "the first record", |r| !r.is_empty());
    std::thread::sleep(SECOND + SECOND / 2);
    let (status, _) = post(server.address, "/in", &[], BODY);
    assert_eq!(status, 200);
    sink.wait_for(10 * SECOND, "the second record", |r| r.len() >= 2);
    let used: Vec<String> = sink
        .received()
        .iter()
        .map(|r| {
            r.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(used, ["Bearer short-1", "Bearer short-2"]);
    // Asked with the id and secret in a JSON body, as configured.
    let asked: serde_json::Value = serde_json::from_slice(&tokens.received()[0].body).unwrap();
    assert_eq!(
        asked,
        serde_json::json!({"grant_type": "client_credentials", "client_id": "c", "client_secret": "s"})
    );
}

/// A stand-in issuer on loopback: answers `GET /jwks.json` with the key set
/// (or the status) it is told, and counts the fetches.
#[derive(Clone)]
struct StandInIssuer {
    address: std::net::SocketAddr,
    /// (status, body), and the fetches so far.
    state: std::sync::Arc<std::sync::Mutex<((u16, String), usize)>>,
}

impl StandInIssuer {
    fn start(status: u16, body: String) -> StandInIssuer {
        let state = std::sync::Arc::new(std::sync::Mutex::new(((status, body), 0)));
        let shared = std::sync::Arc::clone(&state);
        let address = support::serve_http(move |_request| {
            let state = std::sync::Arc::clone(&shared);
            async move {
                let mut state = state.lock().unwrap();
                state.1 += 1;
                let (status, body) = state.0.clone();
                hyper::Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .header("cache-control", "public, max-age=3600")
                    .body(body)
                    .map_err(std::io::Error::other)
            }
        });
        StandInIssuer { address, state }
    }

    fn url(&self) -> String {
        format!("http://{}/jwks.json", self.address)
    }

    fn answer(&self, status: u16, body: String) {
        self.state.lock().unwrap().0 = (status, body);
    }

    fn fetches(&self) -> usize {
        self.state.lock().unwrap().1
    }
}

/// An EC P-256 signing key and its public JWK, named `kid`.
fn ec_key(kid: &str) -> (jsonwebtoken::EncodingKey, serde_json::Value) {
    use base64::Engine as _;
    let url64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let signing = rcgen::KeyPair::generate().unwrap();
    let raw = signing.public_key_raw();
    let jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
        "x": url64(&raw[1..33]), "y": url64(&raw[33..65]),
    });
    (
        jsonwebtoken::EncodingKey::from_ec_der(&signing.serialize_der()),
        jwk,
    )
}

/// Issue 28: `auth jwt jwks_uri "…"`: the issuer's key set fetched from its
/// URL when a token first needs it, kept (max-age), fetched again for a key
/// it does not hold (a rotation) but not for every unknown `kid`, a 503 while
/// no set could be fetched yet, and the URL under the request forgery guard.
#[test]
fn jwts_checked_against_a_key_set_fetched_from_the_issuer() {
    let (key_a, jwk_a) = ec_key("a");
    let (key_b, jwk_b) = ec_key("b");
    let (key_c, _) = ec_key("c");
    let issuer = StandInIssuer::start(500, "{}".into());
    let setup = Setup::new();
    let sink = Sink::start();
    let auth = format!(
        "    auth jwt jwks_uri \"{}\" issuer \"https://issuer.example\" audience \"xf-hooks\"",
        issuer.url()
    );
    // The guard: a key set on a loopback address is refused unless allowed, by xf check as by xf serve.
    let pipeline = setup.file(
        "p.xfp",
        &format!(
            "spool \"spool\"\nsource s at \"/in\" {{\n    transform \"t.xf\"\n{auth}\n}}\n\
             destination d {{\n    uri \"{}\"\n}}\n",
            sink.url()
        ),
    );
    let check = |flags: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_xf"))
            .args(["check", &pipeline])
            .args(flags)
            .output()
            .unwrap()
    };
    let refused = check(&[]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("error: source `s`: its key set (jwks_uri): 127.0.0.1 is a loopback address"),
        "{said}"
    );
    assert!(check(&["--private-destination", "127.0.0.1"])
        .status
        .success());
    assert_eq!(issuer.fetches(), 0, "xf check fetches nothing");
    let server = setup.serve_file(&[]);
    let token = |key: &jsonwebtoken::EncodingKey, kid: &str| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid.into());
        let claims = serde_json::json!({
            "iss": "https://issuer.example", "aud": "xf-hooks", "sub": "sender", "exp": now() + 300,
        });
        format!(
            "Bearer {}",
            jsonwebtoken::encode(&header, &claims, key).unwrap()
        )
    };
    let send = |bearer: &str| post(server.address, "/in", &[("Authorization", bearer)], BODY);
    // No set yet, and the issuer fails: 503 with Retry-After, and not a fetch per request.
    let (status, answer) = send(&token(&key_a, "a"));
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer.contains("the issuer's key set could not be fetched yet"),
        "{answer}"
    );
    issuer.answer(200, serde_json::json!({"keys": [jwk_a]}).to_string());
    assert_eq!(send(&token(&key_a, "a")).0, 503);
    assert_eq!(issuer.fetches(), 1);
    let (_, metrics) = get(server.address, "/metrics");
    assert_eq!(
        metric(
            &metrics,
            "xf_refused_requests_total",
            "reason=\"keys_unavailable\""
        ),
        2.0,
        "{metrics}"
    );
    // After the retry interval (10 s), the set is fetched and kept.
    std::thread::sleep(Duration::from_millis(10_200));
    assert_eq!(send(&token(&key_a, "a")).0, 200);
    assert_eq!(send(&token(&key_a, "a")).0, 200);
    assert_eq!(issuer.fetches(), 2, "kept for its max-age");
    // The issuer rotates to key b: a token naming b fetches the set again, once.
    issuer.answer(200, serde_json::json!({"keys": [jwk_b]}).to_string());
    assert_eq!(send(&token(&key_b, "b")).0, 200);
    assert_eq!(issuer.fetches(), 3);
    // a is gone from the set, and c never was: refused, without another fetch within the interval.
    assert_eq!(send(&token(&key_a, "a")).0, 401);
    assert_eq!(send(&token(&key_c, "c")).0, 401);
    // A token signed by c but naming b: refused by the signature.
    assert_eq!(send(&token(&key_c, "b")).0, 401);
    assert_eq!(issuer.fetches(), 3);
    assert_eq!(delivered_after_a_moment(&sink, 3), 3);
    assert!(server.terminate().success());
    // Plain http elsewhere than this machine's loopback is refused at load.
    setup.file(
        "p.xfp",
        &format!(
            "spool \"spool\"\nsource s at \"/in\" {{\n    transform \"t.xf\"\n    auth jwt jwks_uri \"http://issuer.example/jwks.json\" issuer \"i\" audience \"a\"\n}}\n\
             destination d {{\n    uri \"{}\"\n}}\n",
            sink.url()
        ),
    );
    let refused = check(&["--private-destination", "127.0.0.1"]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("a key set is fetched over https"), "{said}");
}
