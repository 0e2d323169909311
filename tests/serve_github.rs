//! `examples/github.xfp` through the real binary: `xf serve` takes each of
//! GitHub's example deliveries (`tests/fixtures/github/`, as the GitHub
//! transforms' test cases hold them), signed as GitHub signs, with its
//! `X-GitHub-Event`, and the stand-in destinations receive exactly the Splunk
//! events and OCSF findings the transforms' cases expect; what a transform can
//! read of such a request holds no credential.
#![cfg(feature = "serve")]

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::{post, Server, Sink};

const SECOND: Duration = Duration::from_secs(1);
const SECRET: &str = "It's a Secret to Everybody";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `sha256=` and the HMAC-SHA256 of `body` with the webhook's secret, in
/// lower-case hex: GitHub's `X-Hub-Signature-256`.
fn signature(body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The example pipeline in a fresh folder laid out as the repository is
/// (`examples/github.xfp`, `transforms/`), its destinations pointed at the
/// stand-ins and, when given, every source's transform replaced by `probe`.
fn lay_out(dir: &Path, splunk: &Sink, tickets: &Sink, probe: Option<&str>) -> PathBuf {
    std::fs::create_dir_all(dir.join("examples")).unwrap();
    std::fs::create_dir_all(dir.join("transforms")).unwrap();
    for entry in std::fs::read_dir(root().join("transforms")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "xf") {
            std::fs::copy(
                &path,
                dir.join("transforms").join(path.file_name().unwrap()),
            )
            .unwrap();
        }
    }
    let mut text = std::fs::read_to_string(root().join("examples/github.xfp")).unwrap();
    let mut replace = |from: &str, to: &str| {
        assert!(
            text.contains(from),
            "examples/github.xfp no longer has {from}"
        );
        text = text.replace(from, to);
    };
    replace(
        "https://splunk.example.com:8088/services/collector/event",
        &splunk.url(),
    );
    replace("https://tickets.example.com/hooks/xf", &tickets.url());
    if let Some(probe) = probe {
        std::fs::write(dir.join("examples/probe.xf"), probe).unwrap();
        replace("../transforms/github-splunk.xf", "probe.xf");
        replace("../transforms/github-ocsf.xf", "probe.xf");
    }
    let pipeline = dir.join("examples/github.xfp");
    std::fs::write(&pipeline, text).unwrap();
    pipeline
}

/// `xf serve PIPELINE --listen 127.0.0.1:0` with the example's secrets.
fn serve(pipeline: &Path) -> Server {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_xf"));
    command
        .arg("serve")
        .arg(pipeline)
        .args(["--listen", "127.0.0.1:0"])
        .envs([
            ("GITHUB_WEBHOOK_SECRET", SECRET),
            ("SPLUNK_HEC_TOKEN", "Splunk 5e1e2f9c"),
            ("TICKETS_AUTH", "Bearer t1ckets"),
        ]);
    Server::start_command(command, &pipeline.parent().unwrap().join("spool"))
}

/// One delivery as the GitHub transforms' test cases hold it: its body, the
/// headers of its `CASE.request.json`, and what each transform makes of it.
struct Case {
    name: String,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
    /// The Splunk event and the OCSF finding; `None` when it is dropped.
    splunk: Option<Value>,
    ocsf: Option<Value>,
}

/// The cases of `transforms/github-splunk.tests/` that write or drop a
/// record, with `github-ocsf.tests/`'s expectation for the same delivery.
fn cases() -> Vec<Case> {
    let splunk = root().join("transforms/github-splunk.tests");
    let ocsf = root().join("transforms/github-ocsf.tests");
    let expected = |dir: &Path, name: &str| -> Option<Option<Value>> {
        if dir.join(format!("{name}.dropped")).exists() {
            return Some(None);
        }
        let text = std::fs::read_to_string(dir.join(format!("{name}.output.ndjson"))).ok()?;
        Some(Some(serde_json::from_str(text.trim_end()).unwrap()))
    };
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(&splunk).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let Some(name) = file.strip_suffix(".request.json") else {
            continue;
        };
        let (Some(splunk_record), Some(ocsf_record)) =
            (expected(&splunk, name), expected(&ocsf, name))
        else {
            continue; // a case whose delivery is a record error
        };
        let request: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let headers = request["headers"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("x-hub-signature-256"))
            .map(|(name, value)| (name.clone(), value.as_str().unwrap().to_string()))
            .collect();
        cases.push(Case {
            name: name.to_string(),
            body: std::fs::read(splunk.join(format!("{name}.input.json"))).unwrap(),
            headers,
            splunk: splunk_record,
            ocsf: ocsf_record,
        });
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

/// POSTs a case's delivery to `path`, signed; the answer.
fn deliver(server: &Server, path: &str, case: &Case) -> Value {
    let signed = signature(&case.body);
    let mut headers: Vec<(&str, &str)> = case
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    headers.push(("X-Hub-Signature-256", &signed));
    let (status, answer) = post(server.address, path, &headers, &case.body);
    assert_eq!(status, 200, "{} to {path}: {answer}", case.name);
    serde_json::from_str(&answer).unwrap()
}

/// Records as text, sorted: a multiset to compare.
fn sorted(records: impl IntoIterator<Item = Value>) -> Vec<String> {
    let mut texts: Vec<String> = records.into_iter().map(|r| r.to_string()).collect();
    texts.sort();
    texts
}

#[test]
fn each_github_delivery_arrives_as_the_transforms_cases_expect() {
    let dir = tempfile::tempdir().unwrap();
    let (splunk, tickets) = (Sink::start(), Sink::start());
    let server = serve(&lay_out(dir.path(), &splunk, &tickets, None));
    let cases = cases();
    // Every event of the fixtures, and the pings.
    let events: std::collections::BTreeSet<&str> = cases
        .iter()
        .map(|c| c.name.split('-').next().unwrap())
        .collect();
    assert_eq!(events.len(), 7, "{events:?}");
    for case in &cases {
        for path in ["/hooks/github", "/hooks/github-tickets"] {
            let answer = deliver(&server, path, case);
            // Each body is one record received; a ping's is dropped.
            let dropped = usize::from(case.splunk.is_none());
            assert_eq!(answer["records"], 1, "{} to {path}: {answer}", case.name);
            assert_eq!(
                answer["dropped"], dropped,
                "{} to {path}: {answer}",
                case.name
            );
        }
    }

    // Splunk: every alert's event, exactly, with the HEC token.
    let expected_splunk: Vec<Value> = cases.iter().filter_map(|c| c.splunk.clone()).collect();
    assert_eq!(expected_splunk.len(), 13);
    splunk.wait_for(20 * SECOND, "every Splunk event", |received| {
        received
            .iter()
            .map(|r| r.ids.split(',').count())
            .sum::<usize>()
            >= expected_splunk.len()
    });
    // Tickets: the findings of the critical alerts still open, exactly; the
    // `when` reads the raw delivery, the findings say the same.
    let critical: BTreeMap<&str, &Value> = cases
        .iter()
        .filter_map(|c| Some((c.name.as_str(), c.ocsf.as_ref()?)))
        .filter(|(_, f)| f["severity_id"] == 5 && f["activity_id"] != 3)
        .collect();
    assert_eq!(
        critical.keys().copied().collect::<Vec<_>>(),
        [
            "repository_advisory-published",
            "secret_scanning_alert_location-created"
        ]
    );
    tickets.wait_for(20 * SECOND, "the critical findings", |received| {
        received.len() >= critical.len()
    });
    // Nothing else is on its way.
    std::thread::sleep(SECOND);
    let delivered_splunk = splunk.delivered().into_iter().map(|(_, v)| v);
    assert_eq!(sorted(delivered_splunk), sorted(expected_splunk));
    let delivered_tickets = tickets.delivered().into_iter().map(|(_, v)| v);
    assert_eq!(
        sorted(delivered_tickets),
        sorted(critical.values().map(|f| (*f).clone()))
    );
    for (sink, token) in [(&splunk, "Splunk 5e1e2f9c"), (&tickets, "Bearer t1ckets")] {
        for request in sink.received() {
            let auth = request.headers.iter().find(|(k, _)| k == "authorization");
            assert_eq!(auth.map(|(_, v)| v.as_str()), Some(token));
        }
    }

    // A delivery whose signature is not the secret's is refused, and kept nowhere.
    let created = cases
        .iter()
        .find(|c| c.name == "code_scanning_alert-created")
        .unwrap();
    let forged = signature(b"another body");
    let (status, _) = post(
        server.address,
        "/hooks/github",
        &[
            ("X-GitHub-Event", "code_scanning_alert"),
            ("X-Hub-Signature-256", &forged),
        ],
        &created.body,
    );
    assert_eq!(status, 401);
    std::thread::sleep(SECOND / 2);
    assert_eq!(splunk.delivered().len(), 13);
    assert!(server.terminate().success());
}

/// What a transform of either source reads of a GitHub delivery: the event
/// and its signature (which proves the body and is no secret), never the
/// credentials that came with it.
#[test]
fn a_github_sources_transform_cannot_read_the_credentials_of_a_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let (splunk, tickets) = (Sink::start(), Sink::start());
    let probe = "set whole = request\n\
                 set auth = coalesce(request.headers.authorization, \"withheld\")\n\
                 set proxy = coalesce(request.headers.\"proxy-authorization\", \"withheld\")\n\
                 set cookie = coalesce(request.headers.cookie, \"withheld\")\n\
                 set signature = request.headers.\"x-hub-signature-256\"\n\
                 message m = \"{{ request.headers.authorization }}{{ request.headers.cookie }}{{ request.headers['proxy-authorization'] }}\"\n";
    let server = serve(&lay_out(dir.path(), &splunk, &tickets, Some(probe)));
    let body = std::fs::read(
        root().join("tests/fixtures/github/secret_scanning_alert_location/created.payload.json"),
    )
    .unwrap();
    let signed = signature(&body);
    for path in ["/hooks/github", "/hooks/github-tickets"] {
        let (status, answer) = post(
            server.address,
            path,
            &[
                ("X-GitHub-Event", "secret_scanning_alert_location"),
                ("X-Hub-Signature-256", &signed),
                ("Authorization", "Bearer b3arer-s3cret"),
                ("Proxy-Authorization", "Basic cHJveHktczNjcmV0"),
                ("Cookie", "session=c00kie-s3cret"),
            ],
            &body,
        );
        assert_eq!(status, 200, "{path}: {answer}");
    }
    splunk.wait_for(10 * SECOND, "the probe's record", |r| !r.is_empty());
    tickets.wait_for(10 * SECOND, "the probe's record", |r| !r.is_empty());
    let records: Vec<Value> = [&splunk, &tickets]
        .into_iter()
        .flat_map(|sink| sink.delivered().into_iter().map(|(_, v)| v))
        .collect();
    assert_eq!(records.len(), 2);
    for record in records {
        let text = record.to_string();
        assert!(!text.contains("s3cret"), "a credential was read: {text}");
        for withheld in ["auth", "proxy", "cookie"] {
            assert_eq!(record[withheld], "withheld", "{text}");
        }
        assert_eq!(record["m"], "");
        let headers = record["whole"]["headers"].as_object().unwrap();
        for name in ["authorization", "proxy-authorization", "cookie"] {
            assert!(!headers.contains_key(name), "{name}: {text}");
        }
        assert_eq!(headers["x-github-event"], "secret_scanning_alert_location");
        assert_eq!(record["signature"], signed.as_str());
    }
    assert!(server.terminate().success());
}
