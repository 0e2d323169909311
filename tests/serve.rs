//! `xf serve`, the real binary, with real HTTP on both sides: what it
//! answers, what arrives at each destination, and what it keeps.
#![cfg(feature = "serve")]

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{get, metric, post, Answer, Server, Sink};

const SECOND: Duration = Duration::from_secs(1);

/// The transform of tests about delivery, not about transforming.
const LABEL: &str = "label l = \"x\"\n";

/// What a test runs in: a fresh folder for its files, the spool in `spool/`.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes a file into the folder: its path, as a flag takes it.
    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    fn spool(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    /// `xf serve --listen 127.0.0.1:0 --spool SPOOL FLAGS…`, once it listens.
    fn serve(&self, flags: &[&str]) -> Server {
        Server::start(&self.spool(), flags)
    }

    /// [`Setup::serve`] with `transform` (its text, in `t.xf`) for `POST /`, a
    /// `--to` for each sink, and `more` flags.
    fn relay(&self, transform: &str, to: &[&Sink], more: &[&str]) -> Server {
        let t = self.file("t.xf", transform);
        let urls: Vec<String> = to.iter().map(|sink| sink.url()).collect();
        let mut flags = vec!["--transform", t.as_str()];
        for url in &urls {
            flags.extend(["--to", url.as_str()]);
        }
        flags.extend(more);
        self.serve(&flags)
    }

    /// Writes the folder's pipeline (`p.xfp`): `settings`, one source at
    /// `/in` with transform `t.xf`, one destination at `uri`.
    fn write_pipeline(&self, settings: &str, uri: &str) {
        self.file(
            "p.xfp",
            &format!("spool \"spool\"\n{settings}\nsource s at \"/in\" {{\n    transform \"t.xf\"\n    auth none\n}}\ndestination d {{\n    uri \"{uri}\"\n}}\n"),
        );
    }

    /// `xf serve p.xfp --listen 127.0.0.1:0 FLAGS…` with `env`, once it listens.
    fn serve_pipeline(&self, flags: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_xf"));
        command
            .arg("serve")
            .arg(self.dir.path().join("p.xfp"))
            .args(["--listen", "127.0.0.1:0"])
            .args(flags)
            .envs(env.iter().copied());
        Server::start_command(command, &self.spool())
    }

    /// `xf spool ARGS… --spool SPOOL`: its stdout, stderr and status.
    fn spool_command(&self, args: &[&str]) -> (String, String, bool) {
        support::spool(&self.spool(), args)
    }
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

fn ids(answer: &str) -> Vec<String> {
    let answer: Value = serde_json::from_str(answer).unwrap();
    answer["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_webhook_is_transformed_and_delivered_with_its_id() {
    let setup = Setup::new();
    let sink = Sink::start();
    let server = setup.serve(&[
        "--transform",
        "transforms/armor-splunk.xf",
        "--to",
        &sink.url(),
        "--header",
        "Authorization: Splunk token-1",
    ]);
    let (status, answer) = post(
        server.address,
        "/",
        &[],
        &fixture("tests/fixtures/armor/detection-with-events.json"),
    );
    assert_eq!(status, 200, "{answer}");
    let sent = ids(&answer);
    assert_eq!(sent.len(), 2);
    sink.wait_for(10 * SECOND, "two records", |r| r.len() >= 2);
    let delivered = sink.delivered();
    let mut got: Vec<&str> = delivered.iter().map(|(id, _)| id.as_str()).collect();
    got.sort();
    let mut want: Vec<&str> = sent.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(got, want);
    // The same output as `xf run`.
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_xf"))
        .args([
            "run",
            "transforms/armor-splunk.xf",
            "tests/fixtures/armor/detection-with-events.json",
        ])
        .output()
        .unwrap();
    let expected: Vec<Value> = String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(expected.len(), 2);
    for (_, record) in &delivered {
        assert!(expected.contains(record), "{record}");
    }
    let request = &sink.received()[0];
    assert!(request
        .headers
        .iter()
        .any(|(k, v)| k == "authorization" && v == "Splunk token-1"));
    assert!(request
        .headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "application/json"));
    let (_, metrics) = get(server.address, "/metrics");
    assert_eq!(metric(&metrics, "xf_records_delivered_total", ""), 2.0);
    assert_eq!(get(server.address, "/healthz").0, 200);
    assert_eq!(get(server.address, "/readyz").0, 200);
    assert!(server.terminate().success());
    let (stats, _, ok) = setup.spool_command(&["stats"]);
    assert!(ok);
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["queued"], serde_json::json!([]));
}

#[test]
fn bad_bodies_get_clear_answers_and_are_kept_nowhere() {
    let setup = Setup::new();
    let sink = Sink::start();
    let server = setup.relay(
        "label seen = \"yes\"\n",
        &[&sink],
        &["--max-body", "1000000"],
    );
    let a = server.address;
    let (status, body) = post(a, "/", &[], b"{\"a\": 1}\n{\"a\": tru}\n");
    assert_eq!(status, 400);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (body["line"].as_u64(), body["column"].as_u64()),
        (Some(2), Some(10))
    );
    // Where `xf run` puts it, too.
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("line 2, column 10: malformed JSON: expected ident"));
    assert_eq!(post(a, "/", &[], b"").0, 400);
    assert_eq!(post(a, "/", &[], b"  \n ").0, 400);
    assert_eq!(
        post(
            a,
            "/",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"{}"
        )
        .0,
        415
    );
    assert_eq!(post(a, "/", &[("Content-Encoding", "br")], b"{}").0, 415);
    assert_eq!(post(a, "/", &[("Content-Encoding", "gzip")], b"{}").0, 400);
    // Too large, declared or not.
    let big = vec![b' '; 2_000_000];
    assert_eq!(post(a, "/", &[], &big).0, 413);
    // A gzip bomb: 40 KB that would be 50 MB.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&vec![b' '; 50 << 20]).unwrap();
    let bomb = encoder.finish().unwrap();
    assert_eq!(post(a, "/", &[("Content-Encoding", "gzip")], &bomb).0, 413);
    // Not a source; not a POST.
    assert_eq!(post(a, "/elsewhere", &[], b"{}").0, 404);
    assert_eq!(get(a, "/").0, 405);
    // And it still serves.
    let (status, answer) = post(a, "/", &[], br#"{"a": 1}"#);
    assert_eq!(status, 200, "{answer}");
    sink.wait_for(10 * SECOND, "the good record", |r| !r.is_empty());
    assert_eq!(sink.delivered().len(), 1);
    assert_eq!(
        sink.delivered()[0].1,
        serde_json::json!({"a": 1, "seen": "yes"})
    );
    let (_, metrics) = get(a, "/metrics");
    assert_eq!(
        metric(&metrics, "xf_refused_requests_total", "reason=\"not_json\""),
        1.0
    );
    assert_eq!(
        metric(
            &metrics,
            "xf_refused_requests_total",
            "reason=\"too_large\""
        ),
        2.0
    );
    assert!(server.terminate().success());
    let (list, _, _) = setup.spool_command(&["list", "--dead"]);
    assert_eq!(list, "", "refused bodies are kept nowhere");
}

#[test]
fn records_the_transform_fails_on_are_dead_lettered_and_the_body_accepted() {
    let setup = Setup::new();
    let sink = Sink::start();
    let server = setup.relay(
        "set n = number(count)\ndrop when kind == \"noise\"\n",
        &[&sink],
        &[],
    );
    let body = br#"[{"count": "5"}, {"count": "five"}, {"count": 1, "kind": "noise"}, 7]"#;
    let (status, answer) = post(server.address, "/", &[], body);
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["records"], 4);
    assert_eq!(answer["dropped"], 1);
    assert_eq!(answer["dead_lettered"], 2);
    sink.wait_for(10 * SECOND, "one record", |r| !r.is_empty());
    assert!(server.terminate().success());
    let (list, _, _) = setup.spool_command(&["list", "--dead"]);
    let dead: Vec<Value> = list
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dead.len(), 2, "{list}");
    assert_eq!(dead[0]["record"], serde_json::json!({"count": "five"}));
    assert!(
        dead[0]["reason"].as_str().unwrap().contains("five"),
        "{}",
        dead[0]
    );
    assert_eq!(dead[1]["record"], serde_json::json!(7));
    assert_eq!(dead[0]["destination"], Value::Null);
}

#[test]
fn failed_deliveries_are_retried_with_the_same_id_until_they_arrive() {
    let setup = Setup::new();
    let sink = Sink::start();
    sink.script([
        Answer::RetryAfter(503, 1),
        Answer::Status(500),
        Answer::Reset,
        Answer::Status(429),
    ]);
    let server = setup.relay(LABEL, &[&sink], &[]);
    let (status, answer) = post(server.address, "/", &[], br#"{"a": 1}"#);
    assert_eq!(status, 200);
    let id = ids(&answer).remove(0);
    sink.wait_for(60 * SECOND, "a delivery after four failures", |r| {
        r.iter().any(|r| r.answered == 200)
    });
    let received = sink.received();
    assert_eq!(received.len(), 5);
    assert!(
        received.iter().all(|r| r.ids == id),
        "one id on every attempt"
    );
    // Retry-After: 1 was honoured.
    assert!(received[1].at - received[0].at >= Duration::from_millis(900));
    let (_, metrics) = get(server.address, "/metrics");
    assert_eq!(metric(&metrics, "xf_delivery_retries_total", ""), 4.0);
    assert_eq!(metric(&metrics, "xf_records_delivered_total", ""), 1.0);
}

#[test]
fn a_refusal_is_dead_lettered_with_its_attempts_and_can_be_replayed() {
    let setup = Setup::new();
    let sink = Sink::start();
    sink.script([Answer::Status(400)]);
    let server = setup.relay(LABEL, &[&sink], &[]);
    let (status, answer) = post(server.address, "/", &[], br#"{"a": 1}"#);
    assert_eq!(status, 200);
    let id = ids(&answer).remove(0);
    sink.wait_for(10 * SECOND, "one attempt", |r| !r.is_empty());
    std::thread::sleep(Duration::from_millis(300));
    let (list, _, _) = setup.spool_command(&["list", "--dead"]);
    let dead: Value = serde_json::from_str(list.lines().next().unwrap()).unwrap();
    assert_eq!(dead["id"], id.as_str());
    assert_eq!(dead["destination"], sink.url().as_str());
    assert!(dead["reason"].as_str().unwrap().contains("400"), "{dead}");
    assert_eq!(dead["attempts"].as_array().unwrap().len(), 1);
    // A dry run says what a replay would do, and does nothing.
    let (_, said, ok) = setup.spool_command(&["replay", "--dry-run"]);
    assert!(ok, "{said}");
    assert_eq!(
        said,
        "1 dead letter(s) would be queued again (dry run: nothing was changed)\n"
    );
    assert_eq!(setup.spool_command(&["list", "--dead"]).0, list);
    // Replayed beside the running server: delivered this time, with the same id.
    let (_, said, ok) = setup.spool_command(&["replay"]);
    assert!(ok, "{said}");
    sink.wait_for(10 * SECOND, "the replay", |r| r.len() >= 2);
    assert_eq!(sink.received()[1].ids, id);
    assert_eq!(sink.received()[1].answered, 200);
}

/// Issue 28: `xf spool stats | head` panicked on the closed pipe. Each
/// listing ends quietly, as `xf run` does, when its reader has gone away.
#[test]
fn spool_listings_end_quietly_when_their_reader_has_gone() {
    let setup = Setup::new();
    let sink = Sink::start();
    // The first record refused for good (a dead letter), the second kept queued.
    sink.script([Answer::Status(400)]);
    sink.otherwise(Answer::Status(503));
    let server = setup.relay(LABEL, &[&sink], &[]);
    assert_eq!(post(server.address, "/", &[], br#"{"a": 1}"#).0, 200);
    sink.wait_for(10 * SECOND, "the refusal", |r| !r.is_empty());
    assert_eq!(post(server.address, "/", &[], br#"{"a": 2}"#).0, 200);
    sink.wait_for(10 * SECOND, "a try of the second", |r| r.len() >= 2);
    std::thread::sleep(Duration::from_millis(300));
    for args in [&["stats"][..], &["list"], &["list", "--dead"]] {
        // Each has something to print…
        let (printed, said, ok) = setup.spool_command(args);
        assert!(ok && !printed.is_empty(), "{args:?}: {said}");
        // …and nowhere to print it.
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_xf"))
            .arg("spool")
            .args(args)
            .arg("--spool")
            .arg(setup.spool())
            .stdout(support::closed_pipe())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
    // The README's `xf spool purge --spool DIR --queued` (it was `--queue`,
    // which also names a JetStream server, so it could not run).
    let (_, said, ok) = setup.spool_command(&["purge", "--queued"]);
    assert!(ok, "{said}");
    assert_eq!(said, "1 record(s) deleted\n");
    let (_, said, ok) = setup.spool_command(&["purge"]);
    assert!(ok, "{said}");
    assert_eq!(said, "1 record(s) deleted\n");
    let (stats, _, _) = setup.spool_command(&["stats"]);
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["dead_letters"], serde_json::json!([]), "{stats}");
}

#[test]
fn a_410_disables_the_destination_until_it_is_enabled() {
    let setup = Setup::new();
    let sink = Sink::start();
    sink.script([Answer::Status(410)]);
    let server = setup.relay(LABEL, &[&sink], &[]);
    assert_eq!(post(server.address, "/", &[], br#"{"a": 1}"#).0, 200);
    sink.wait_for(10 * SECOND, "one attempt", |r| !r.is_empty());
    assert_eq!(post(server.address, "/", &[], br#"{"a": 2}"#).0, 200);
    std::thread::sleep(3 * SECOND);
    assert_eq!(
        sink.received().len(),
        1,
        "nothing is sent to a disabled destination"
    );
    let (stats, _, _) = setup.spool_command(&["stats"]);
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["disabled"][0], sink.url().as_str());
    assert_eq!(
        stats["queued"][0]["records"], 2,
        "and nothing is lost: {stats}"
    );
    let (_, said, ok) = setup.spool_command(&["enable", &sink.url()]);
    assert!(ok, "{said}");
    sink.wait_for(15 * SECOND, "both records", |r| {
        r.iter().filter(|r| r.answered == 200).count() == 2
    });
}

#[test]
fn a_dead_destination_does_not_hold_back_a_healthy_one() {
    let setup = Setup::new();
    let healthy = Sink::start();
    let down = Sink::start();
    down.otherwise(Answer::Status(503));
    let server = setup.relay(LABEL, &[&healthy, &down], &[]);
    let mut slowest = Duration::ZERO;
    for i in 0..200 {
        let body = format!("{{\"n\": {i}}}");
        assert_eq!(post(server.address, "/", &[], body.as_bytes()).0, 200);
        let sent = Instant::now();
        healthy.wait_for(10 * SECOND, "the record", |r| r.len() > i);
        slowest = slowest.max(sent.elapsed());
    }
    assert!(
        slowest < 2 * SECOND,
        "the healthy destination waited {slowest:?}"
    );
    // The dead one was probed, not flooded: one request at a time, with backoff.
    assert!(
        down.received().len() < 20,
        "{} requests",
        down.received().len()
    );
    // It comes back and catches up.
    down.otherwise(Answer::Ok);
    down.wait_for(60 * SECOND, "the backlog", |r| {
        r.iter().filter(|r| r.answered == 200).count() == 200
    });
}

#[test]
fn a_full_spool_answers_503_with_retry_after() {
    let setup = Setup::new();
    let down = Sink::start();
    down.otherwise(Answer::Status(503));
    let server = setup.relay(LABEL, &[&down], &["--spool-max-records", "3"]);
    for _ in 0..3 {
        assert_eq!(post(server.address, "/", &[], br#"{"a": 1}"#).0, 200);
    }
    let (status, body) = post(server.address, "/", &[], br#"{"a": 1}"#);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("full"), "{body}");
}

#[test]
fn armor_notifications_subscribe_by_event_type() {
    let setup = Setup::new();
    let incidents = Sink::start();
    let everything = Sink::start();
    let text = String::from_utf8(fixture("tests/fixtures/armor/notification-config.json")).unwrap();
    let notification = setup.file(
        "incidents.json",
        &text.replace("http://www.google.com", &incidents.url()),
    );
    let server = setup.serve(&[
        "--transform",
        "transforms/armor-default.xf",
        "--armor-notification",
        &notification,
        "--to",
        &everything.url(),
    ]);
    let detection = fixture("tests/fixtures/armor/detection-only.json");
    let mut incident: Value = serde_json::from_slice(&detection).unwrap();
    let first = if incident.is_array() {
        incident[0].clone()
    } else {
        incident.clone()
    };
    incident = first;
    incident["offenseType"] = "Incident".into();
    assert_eq!(post(server.address, "/", &[], &detection).0, 200);
    assert_eq!(
        post(server.address, "/", &[], incident.to_string().as_bytes()).0,
        200
    );
    everything.wait_for(10 * SECOND, "both", |r| r.len() >= 2);
    incidents.wait_for(10 * SECOND, "the incident", |r| !r.is_empty());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(incidents.received().len(), 1);
    let request = &incidents.received()[0];
    assert!(request
        .headers
        .iter()
        .any(|(k, v)| k == "authorization" && v == "Splunk hec_access_token"));
    let (_, metrics) = get(server.address, "/metrics");
    assert_eq!(
        metric(
            &metrics,
            "xf_records_delivered_total",
            "Test Create Notification Liza 1"
        ),
        1.0
    );
}

#[test]
fn batches_go_out_as_hec_stacks_and_splunk_codes_are_read() {
    let setup = Setup::new();
    let hec = Sink::start();
    hec.script([Answer::Body(503, r#"{"text":"Server is busy","code":9}"#)]);
    hec.otherwise(Answer::Body(200, r#"{"text":"Success","code":0}"#));
    let server = setup.serve(&[
        "--transform",
        "transforms/armor-splunk.xf",
        "--to",
        &hec.url(),
        "--format",
        "hec",
        "--batch-linger",
        "300",
    ]);
    let body: Vec<u8> = fixture("tests/fixtures/armor/detection-with-events.json");
    assert_eq!(post(server.address, "/", &[], &body).0, 200);
    hec.wait_for(30 * SECOND, "the batch, after busy", |r| {
        r.iter().any(|r| r.answered == 200)
    });
    let received = hec.received();
    assert_eq!(received[0].ids, received[1].ids);
    let delivered = hec.delivered();
    assert_eq!(delivered.len(), 2, "one request, two stacked events");
    assert!(String::from_utf8_lossy(&received[1].body).contains("}\n{"));
}

#[test]
fn sigterm_finishes_what_is_in_flight_and_a_restart_delivers_the_rest() {
    let setup = Setup::new();
    let sink = Sink::start();
    sink.otherwise(Answer::Status(503));
    let server = setup.relay(LABEL, &[&sink], &[]);
    let mut sent = Vec::new();
    for i in 0..20 {
        let (status, answer) = post(
            server.address,
            "/",
            &[],
            format!("{{\"n\":{i}}}").as_bytes(),
        );
        assert_eq!(status, 200);
        sent.extend(ids(&answer));
    }
    assert!(server.terminate().success(), "SIGTERM exits 0");
    sink.otherwise(Answer::Ok);
    let server = setup.relay(LABEL, &[&sink], &[]);
    sink.wait_for(60 * SECOND, "every record after the restart", |r| {
        r.iter().filter(|r| r.answered == 200).count() >= 20
    });
    let mut got: Vec<String> = sink.delivered().into_iter().map(|(id, _)| id).collect();
    got.sort();
    got.dedup();
    sent.sort();
    assert_eq!(got, sent);
    drop(server);
}

#[test]
fn a_failing_destination_is_mailed_about_through_a_real_smtp_relay() {
    let (relay_address, mails) = support::smtp_relay();

    let setup = Setup::new();
    let down = Sink::start();
    down.otherwise(Answer::Status(500));
    let errors = Sink::start();
    let text = String::from_utf8(fixture("tests/fixtures/armor/notification-config.json")).unwrap();
    let notification = setup.file(
        "n.json",
        &text
            .replace("http://www.google.com", &down.url())
            .replace("\"security_incident\"", "\"security_detection\""),
    );
    let server = setup.serve(&[
        "--transform",
        "transforms/armor-default.xf",
        "--armor-notification",
        &notification,
        "--smtp",
        &relay_address.to_string(),
        "--mail-from",
        "xf@relay.test",
        "--error-webhook",
        &errors.url(),
    ]);
    let detection = fixture("tests/fixtures/armor/detection-only.json");
    for _ in 0..3 {
        assert_eq!(post(server.address, "/", &[], &detection).0, 200);
    }
    let start = Instant::now();
    while mails.lock().unwrap().is_empty() {
        assert!(start.elapsed() < 30 * SECOND, "no mail: {}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    errors.wait_for(30 * SECOND, "the error webhook", |r| !r.is_empty());
    std::thread::sleep(3 * SECOND);
    let mails = mails.lock().unwrap();
    assert_eq!(mails.len(), 1, "one mail per interval");
    assert_eq!(mails[0].0, vec!["test@armor.com".to_string()]);
    let text = String::from_utf8_lossy(&mails[0].1);
    assert!(text.contains("Test Create Notification Liza 1"), "{text}");
    assert!(text.contains("500"), "{text}");
    let notice: Value = serde_json::from_slice(&errors.received()[0].body).unwrap();
    assert_eq!(notice["destination"], "Test Create Notification Liza 1");
}

#[test]
fn a_pipeline_file_routes_by_source_event_type_and_condition() {
    let setup = Setup::new();
    let all = Sink::start();
    let severe = Sink::start();
    let armor_only = Sink::start();
    setup.file("tag.xf", "label via = \"xf\"\n");
    setup.file("key.txt", "key-from-a-file\n");
    let pipeline = setup.file(
        "p.xfp",
        &format!(
            r#"# two sources, three destinations
spool "spool"
source armor at "/hooks/armor" {{
    transform "tag.xf"
    auth none
}}
source other at "/hooks/other" {{
    transform "tag.xf"
    auth none
}}
destination all {{
    uri "{}"
    header "Authorization" = env "XF_TEST_PIPELINE_TOKEN"
}}
destination severe {{
    uri "{}"
    when severity >= 5
    format ndjson
    batch_linger 0
}}
destination armor_only {{
    uri "{}"
    from armor
    header "X-Api-Key" = file "key.txt"
}}
"#,
            all.url(),
            severe.url(),
            armor_only.url()
        ),
    );
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_xf"))
        .args(["check", &pipeline, "--private-destination", "127.0.0.1"])
        .env("XF_TEST_PIPELINE_TOKEN", "Bearer t")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let server = setup.serve_pipeline(&[], &[("XF_TEST_PIPELINE_TOKEN", "Bearer t")]);
    let a = server.address;
    assert_eq!(post(a, "/hooks/armor", &[], br#"{"severity": 7}"#).0, 200);
    assert_eq!(post(a, "/hooks/armor", &[], br#"{"severity": 2}"#).0, 200);
    assert_eq!(post(a, "/hooks/other", &[], br#"{"severity": 9}"#).0, 200);
    assert_eq!(post(a, "/", &[], br#"{"severity": 9}"#).0, 404);
    all.wait_for(10 * SECOND, "three records", |r| r.len() >= 3);
    severe.wait_for(10 * SECOND, "two records", |r| {
        r.iter().map(|r| r.ids.split(',').count()).sum::<usize>() >= 2
    });
    armor_only.wait_for(10 * SECOND, "two records", |r| r.len() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    let severities = |sink: &Sink| {
        let mut s: Vec<i64> = sink
            .delivered()
            .iter()
            .map(|(_, v)| {
                assert_eq!(v["via"], "xf");
                v["severity"].as_i64().unwrap()
            })
            .collect();
        s.sort();
        s
    };
    assert_eq!(severities(&all), vec![2, 7, 9]);
    assert_eq!(severities(&severe), vec![7, 9]);
    assert_eq!(severities(&armor_only), vec![2, 7]);
    let header = |sink: &Sink, name: &str| {
        sink.received()[0]
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header(&all, "authorization").as_deref(), Some("Bearer t"));
    assert_eq!(
        header(&armor_only, "x-api-key").as_deref(),
        Some("key-from-a-file")
    );
    assert_eq!(
        header(&severe, "content-type").as_deref(),
        Some("application/x-ndjson")
    );
}

/// Waits until the server's log holds `text` `times` times.
fn wait_for_log(server: &Server, text: &str, times: usize) {
    let start = Instant::now();
    while server.log().matches(text).count() < times {
        assert!(
            start.elapsed() < 20 * SECOND,
            "no {text:?}: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_reloads_a_changed_pipeline_and_keeps_the_old_one_when_the_new_is_broken() {
    let setup = Setup::new();
    let first = Sink::start();
    let second = Sink::start();
    setup.file("t.xf", "label version = \"one\"\n");
    // No polling: only the signal reloads.
    setup.write_pipeline("reload_poll 0", &first.url());
    let server = setup.serve_pipeline(&[], &[]);
    let hup = || {
        std::process::Command::new("kill")
            .args(["-HUP", &server.child.id().to_string()])
            .status()
            .unwrap();
    };
    assert_eq!(post(server.address, "/in", &[], br#"{"n": 1}"#).0, 200);
    first.wait_for(10 * SECOND, "the first record", |r| !r.is_empty());
    // A new transform and a new destination, swapped in whole.
    setup.file("t.xf", "label version = \"two\"\n");
    setup.write_pipeline("reload_poll 0", &second.url());
    hup();
    wait_for_log(&server, "the new pipeline runs", 1);
    assert_eq!(post(server.address, "/in", &[], br#"{"n": 2}"#).0, 200);
    second.wait_for(10 * SECOND, "the second record", |r| !r.is_empty());
    assert_eq!(second.delivered()[0].1["version"], "two");
    // A broken one is refused with its diagnostics; the running one goes on.
    setup.file("t.xf", "lable version = \"three\"\n");
    hup();
    wait_for_log(&server, "refused", 1);
    assert!(server.log().contains("E0002"), "{}", server.log());
    assert_eq!(post(server.address, "/in", &[], br#"{"n": 3}"#).0, 200);
    second.wait_for(10 * SECOND, "the third record", |r| r.len() >= 2);
    assert_eq!(second.delivered()[1].1["version"], "two");
    assert_eq!(first.received().len(), 1);
    assert!(
        !server.log().contains("changed: reloading"),
        "{}",
        server.log()
    );
}

#[test]
fn a_changed_file_reloads_without_a_signal_and_a_broken_one_is_refused_until_fixed() {
    let setup = Setup::new();
    let sink = Sink::start();
    setup.file("t.xf", "label version = \"one\"\n");
    setup.write_pipeline("", &sink.url());
    let server = setup.serve_pipeline(&["--reload-poll", "1"], &[]);
    let version = |n: usize| {
        let body = format!("{{\"n\": {n}}}");
        assert_eq!(post(server.address, "/in", &[], body.as_bytes()).0, 200);
        sink.wait_for(10 * SECOND, "the record", |r| r.len() >= n);
        sink.delivered()[n - 1].1["version"].clone()
    };
    assert_eq!(version(1), "one");
    // The transform file itself, now with an include.
    setup.file("version.xf", "label version = \"second\"\n");
    setup.file("t.xf", "include \"version.xf\"\n");
    wait_for_log(&server, "the new pipeline runs", 1);
    let log = server.log();
    let changed = log.lines().find(|l| l.contains("files changed")).unwrap();
    assert!(changed.contains("t.xf"), "names the file: {log}");
    assert_eq!(version(2), "second");
    // A file the transform read, broken: refused, and the running version goes on.
    setup.file("version.xf", "lable version = \"third\"\n");
    wait_for_log(&server, "the old one keeps running", 1);
    assert!(server.log().contains("E0702"), "{}", server.log());
    assert_eq!(version(3), "second");
    // Not tried again while nothing changes.
    std::thread::sleep(3 * SECOND);
    assert_eq!(
        server.log().matches("refused").count(),
        1,
        "{}",
        server.log()
    );
    // Fixed, it loads.
    setup.file("version.xf", "label version = \"fourth\"\n");
    wait_for_log(&server, "the new pipeline runs", 2);
    assert_eq!(version(4), "fourth");
}

/// RSS of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap()
}

#[test]
fn slow_senders_huge_bodies_and_idle_crowds_do_not_stop_it() {
    use std::io::Read;
    let setup = Setup::new();
    let sink = Sink::start();
    let server = setup.relay(
        LABEL,
        &[&sink],
        &[
            "--header-timeout",
            "1",
            "--body-timeout",
            "2",
            "--max-connections",
            "12000",
        ],
    );
    let a = server.address;
    let before = rss_kib(server.child.id());

    // A slow-loris: headers never finished. The server closes the connection.
    let mut loris = std::net::TcpStream::connect(a).unwrap();
    loris
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-")
        .unwrap();
    loris.set_read_timeout(Some(10 * SECOND)).unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = loris.read_to_end(&mut rest);
    assert!(
        started.elapsed() < 5 * SECOND,
        "a slow sender held its connection"
    );

    // A body that stops halfway: 408 after the body timeout.
    let mut half = std::net::TcpStream::connect(a).unwrap();
    half.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":")
        .unwrap();
    half.set_read_timeout(Some(10 * SECOND)).unwrap();
    let mut answer = String::new();
    let _ = half.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // 100 MB sent without a length (chunked): refused at the limit, not read whole.
    let mut big = std::net::TcpStream::connect(a).unwrap();
    big.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let chunk = vec![b' '; 1 << 20];
    let mut refused = false;
    for _ in 0..100 {
        let head = format!("{:x}\r\n", chunk.len());
        if big.write_all(head.as_bytes()).is_err()
            || big.write_all(&chunk).is_err()
            || big.write_all(b"\r\n").is_err()
        {
            refused = true;
            break;
        }
    }
    let _ = big.write_all(b"0\r\n\r\n");
    big.set_read_timeout(Some(10 * SECOND)).unwrap();
    let mut answer = String::new();
    let _ = big.read_to_string(&mut answer);
    assert!(refused || answer.starts_with("HTTP/1.1 413"), "{answer}");

    // 10,000 idle connections, then a real webhook is still served.
    let idle: Vec<std::net::TcpStream> = (0..10_000)
        .filter_map(|_| std::net::TcpStream::connect(a).ok())
        .collect();
    assert!(idle.len() > 9_000, "{} connections", idle.len());
    let (status, _) = post(a, "/", &[], br#"{"alive": true}"#);
    assert_eq!(status, 200);
    let during = rss_kib(server.child.id());
    assert!(
        during < before + 200 * 1024,
        "10,000 idle connections took {} KiB",
        during - before
    );
    drop(idle);
    sink.wait_for(10 * SECOND, "the record", |r| !r.is_empty());
    assert_eq!(post(a, "/", &[], br#"{"alive": 2}"#).0, 200);
}

#[test]
fn records_a_fan_out_makes_get_ids_of_their_own_and_a_redelivery_is_kept_once() {
    let setup = Setup::new();
    let sink = Sink::start();
    let server = setup.relay(
        "fan_out vuln in alert.vulnerabilities\nset package = vuln\ntag remove alert\n",
        &[&sink],
        &[],
    );
    let body = br#"{"alert": {"number": 1, "vulnerabilities": ["a", "b", "c"]}}"#;
    let delivery = [("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")];
    let (status, answer) = post(server.address, "/", &delivery, body);
    assert_eq!(status, 200, "{answer}");
    let sent = ids(&answer);
    assert_eq!(sent.len(), 1, "one id per record received: {answer}");
    sink.wait_for(10 * SECOND, "three records", |r| r.len() >= 3);
    let mut delivered = sink.delivered();
    delivered.sort_by(|a, b| a.0.cmp(&b.0));
    let want: Vec<(String, Value)> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(k, package)| {
            (
                format!("{}-{}", sent[0], k + 1),
                serde_json::json!({ "package": package }),
            )
        })
        .collect();
    assert_eq!(delivered, want);
    // A redelivery of the same delivery (GitHub's "Redeliver", a sender's
    // retry) within the window is answered as a duplicate and kept nowhere:
    // once on the embedded spool, as on JetStream.
    let (status, again) = post(server.address, "/", &delivery, body);
    assert_eq!(status, 200, "{again}");
    assert!(again.contains("\"duplicate\":true"), "{again}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.delivered().len(), 3, "delivered once");
    // An alert with no vulnerabilities makes no records: accepted, counted as dropped.
    let (status, answer) = post(
        server.address,
        "/",
        &[],
        br#"{"alert": {"vulnerabilities": []}}"#,
    );
    assert_eq!(status, 200, "{answer}");
    let (_, metrics) = get(server.address, "/metrics");
    assert_eq!(
        metric(&metrics, "xf_records_dropped_total", ""),
        1.0,
        "{metrics}"
    );
    // Still once: the redelivery was kept nowhere.
    let mut once: Vec<String> = sink.delivered().into_iter().map(|(id, _)| id).collect();
    once.sort();
    let want_ids: Vec<String> = want.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(once, want_ids);
    assert!(server.terminate().success());
}

/// A body of many records is transformed partly on the request's own task
/// (for at most a moment) and the rest on the blocking pool: every record is
/// answered, in the body's order, and delivered with its id.
#[test]
fn a_body_of_many_records_is_answered_and_delivered_whole_and_in_order() {
    let setup = Setup::new();
    let sink = Sink::start();
    let server = setup.relay(LABEL, &[&sink], &["--format", "ndjson"]);
    const COUNT: usize = 3000;
    let body: String = (0..COUNT).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let (status, answer) = post(server.address, "/", &[], body.as_bytes());
    assert_eq!(status, 200, "{answer}");
    let sent = ids(&answer);
    assert_eq!(sent.len(), COUNT);
    sink.wait_for(30 * SECOND, "every record", |_| {
        sink.delivered().len() >= COUNT
    });
    let delivered: std::collections::HashMap<String, Value> =
        sink.delivered().into_iter().collect();
    assert_eq!(delivered.len(), COUNT, "each record once");
    for (n, id) in sent.iter().enumerate() {
        let record = &delivered[id];
        assert_eq!(
            record["n"], n,
            "the id answered at {n} names record {record}"
        );
        assert_eq!(record["l"], "x");
    }
}

/// `xf check` runs the load-time rules `xf serve` runs: a destination, a
/// token endpoint or an error webhook at an address the request forgery
/// guard refuses fails both, in the same words, unless the pipeline allows it.
#[test]
fn check_refuses_what_serve_refuses_at_start_in_the_same_words() {
    let setup = Setup::new();
    setup.file("t.xf", LABEL);
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_xf"))
            .args(args)
            .arg(setup.dir.path().join("p.xfp"))
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    for (settings, uri, why) in [
        ("", "http://10.0.0.1/hec", "10.0.0.1 is"),
        ("", "http://169.254.169.254/latest", "169.254.169.254 is"),
        ("", "http://127.0.0.1:9/", "127.0.0.1 is"),
        (
            "error_webhook \"http://[::1]:9/notices\"",
            "https://siem.example.com/",
            "error: the error webhook: ::1 is",
        ),
    ] {
        setup.write_pipeline(settings, uri);
        let (check, said) = run(&["check"]);
        assert_eq!(check, Some(2), "xf check on {uri}: {said}");
        assert!(said.contains(why), "{said}");
        let line = said.lines().find(|l| l.contains(why)).unwrap().to_string();
        let (serve, refused) = run(&["serve", "--listen", "127.0.0.1:0"]);
        assert_eq!(serve, Some(2), "xf serve on {uri}: {refused}");
        assert!(
            refused.contains(&line),
            "serve said {refused:?}, check said {line:?}"
        );
    }
    // Allowed in the pipeline, or by the flag both take: both take it.
    setup.write_pipeline("private_destinations \"10.0.0.0/8\"", "http://10.0.0.1/hec");
    let (check, said) = run(&["check"]);
    assert_eq!(check, Some(0), "{said}");
    setup.write_pipeline("", "http://10.0.0.1/hec");
    let (check, said) = run(&["check", "--private-destination", "10.0.0.0/8"]);
    assert_eq!(check, Some(0), "{said}");
}

/// Which content types a source takes, as the README lists them: the body is
/// read as JSON under any of them; anything that says it is something else
/// is refused with 415 and kept nowhere.
#[test]
fn content_types_are_taken_or_refused_as_the_readme_says() {
    let setup = Setup::new();
    let sink = Sink::start();
    let server = setup.relay(LABEL, &[&sink], &[]);
    let a = server.address;
    let taken = [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.github+json",
        "application/cloudevents+json",
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/x-jsonlines",
        "text/json",
        "text/plain",
        "text/plain; charset=utf-8",
    ];
    for content_type in taken {
        let (status, answer) = post(a, "/", &[("Content-Type", content_type)], b"{\"a\":1}");
        assert_eq!(status, 200, "{content_type}: {answer}");
    }
    // No Content-Type at all (the helper would add one): by hand.
    {
        use std::io::Read;
        let mut stream = std::net::TcpStream::connect(a).unwrap();
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {a}\r\nConnection: close\r\nContent-Length: 7\r\n\r\n{{\"a\":1}}"
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let refused = [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "text/html",
        "application/octet-stream",
    ];
    for content_type in refused {
        let (status, answer) = post(a, "/", &[("Content-Type", content_type)], b"{\"a\":1}");
        assert_eq!(status, 415, "{content_type}: {answer}");
    }
    // Only what was taken arrives.
    sink.wait_for(10 * SECOND, "the records taken", |_| {
        sink.delivered().len() > taken.len()
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.delivered().len(), taken.len() + 1);
}

/// Issue 28: records the transform failed on are run again, as received,
/// through the pipeline's current transforms, with the ids `xf serve` would
/// give them; `--dry-run` changes nothing, and a second replay neither.
#[test]
fn spool_replay_transform_runs_failed_records_through_the_fixed_transform() {
    let setup = Setup::new();
    let sink = Sink::start();
    setup.file("t.xf", "set n = number(count)\n");
    setup.file("f.xf", "fail \"not ready\"\n");
    let pipeline = setup.file(
        "p.xfp",
        &format!(
            "spool \"spool\"\nreload_poll 0\nsource s at \"/in\" {{\n    transform \"t.xf\"\n    auth none\n}}\nsource f at \"/fan\" {{\n    transform \"f.xf\"\n    auth none\n}}\ndestination d {{\n    uri \"{}\"\n}}\n",
            sink.url()
        ),
    );
    let server = setup.serve_pipeline(&[], &[]);
    let body =
        br#"[{"count": "five"}, {"count": "noise"}, {"count": "still bad"}, {"count": "3"}]"#;
    let (status, answer) = post(server.address, "/in", &[], body);
    assert_eq!(status, 200, "{answer}");
    let in_ids = ids(&answer);
    let delivery = [("X-GitHub-Delivery", "6a9c1e1e-0000-4000-8000-000000000001")];
    let (status, answer) = post(
        server.address,
        "/fan",
        &delivery,
        br#"{"vulns": ["a", "b"]}"#,
    );
    assert_eq!(status, 200, "{answer}");
    let fan_id = ids(&answer).remove(0);
    sink.wait_for(10 * SECOND, "the record that worked", |r| !r.is_empty());
    let dead_letters = || {
        let (list, said, ok) = setup.spool_command(&["list", "--dead"]);
        assert!(ok, "{said}");
        list
    };
    let before = dead_letters();
    assert_eq!(before.lines().count(), 4, "{before}");
    // The transforms fixed on disk; the server (reload_poll 0) keeps the old ones.
    setup.file(
        "t.xf",
        "drop when count == \"noise\"\nwhen count == \"five\" {\n  set count = \"5\"\n}\nset n = number(count)\n",
    );
    setup.file(
        "f.xf",
        "fan_out v in vulns\nset package = v\ntag remove vulns\n",
    );
    let replay = |more: &[&str]| {
        let mut args = vec!["replay", "--transform", pipeline.as_str()];
        args.extend(more);
        let (stdout, stderr, ok) = setup.spool_command(&args);
        assert!(ok, "{stderr}");
        let lines: Vec<Value> = stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        (lines, stderr)
    };
    let (dry, said) = replay(&["--dry-run"]);
    assert_eq!(
        said,
        "4 record(s) the transform failed on, run through the current transforms: 2 queued (3 record(s) for destinations), 1 dropped, 1 still failing (kept as dead letters with their new reason), 0 skipped (left as they were); dry run: nothing was changed\n"
    );
    assert_eq!(dead_letters(), before, "a dry run changes nothing");
    let expected = serde_json::json!([
        {"id": in_ids[0], "source": "/in", "outcome": "queued", "records": [{"id": in_ids[0], "destination": "d"}]},
        {"id": in_ids[1], "source": "/in", "outcome": "dropped"},
        {"id": in_ids[2], "source": "/in", "outcome": "failed", "reason": dry[2]["reason"]},
        {"id": fan_id, "source": "/fan", "outcome": "queued", "records": [
            {"id": format!("{fan_id}-1"), "destination": "d"},
            {"id": format!("{fan_id}-2"), "destination": "d"}
        ]}
    ]);
    assert_eq!(Value::from(dry.clone()), expected);
    assert!(
        dry[2]["reason"]
            .as_str()
            .unwrap()
            .starts_with("set (line 5): "),
        "the new transform's reason: {}",
        dry[2]
    );
    // The replay itself: the same outcomes, and what it queued is delivered by the running server.
    let (done, said) = replay(&[]);
    assert_eq!(done, dry);
    assert!(!said.contains("dry run"), "{said}");
    sink.wait_for(10 * SECOND, "the replayed records", |r| r.len() >= 4);
    let mut delivered = sink.delivered();
    delivered.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want = vec![
        (in_ids[0].clone(), serde_json::json!({"count": "5", "n": 5})),
        (in_ids[3].clone(), serde_json::json!({"count": "3", "n": 3})),
        (format!("{fan_id}-1"), serde_json::json!({"package": "a"})),
        (format!("{fan_id}-2"), serde_json::json!({"package": "b"})),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(delivered, want);
    let after = dead_letters();
    let left: Vec<Value> = after
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(left.len(), 1, "{after}");
    assert_eq!(left[0]["id"], in_ids[2].as_str());
    assert_eq!(left[0]["record"], serde_json::json!({"count": "still bad"}));
    assert_eq!(left[0]["reason"], dry[2]["reason"]);
    // A second replay changes nothing: the one that still fails stays as it is.
    let (again, said) = replay(&[]);
    assert_eq!(Value::from(again), serde_json::json!([expected[2]]));
    assert!(said.starts_with("1 record(s) "), "{said}");
    assert_eq!(dead_letters(), after);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.delivered().len(), 4, "nothing delivered twice");
    assert!(server.terminate().success());
    // A pipeline that does not load replays nothing, and says why; a transform is no pipeline.
    setup.file("t.xf", "lable x = \"y\"\n");
    let (_, said, ok) = setup.spool_command(&["replay", "--transform", pipeline.as_str()]);
    assert!(!ok);
    assert!(said.contains("E0002"), "{said}");
    assert!(
        said.ends_with("does not load: nothing was replayed\n"),
        "{said}"
    );
    let transform = setup.dir.path().join("t.xf").display().to_string();
    let (_, said, ok) = setup.spool_command(&["replay", "--transform", transform.as_str()]);
    assert!(!ok);
    assert!(said.contains("names the pipeline file (.xfp)"), "{said}");
    assert_eq!(dead_letters(), after);
}

/// `request` in `xf serve`: each record of a batch body reads the request's
/// headers, its source's name and path, when it came, the sender's delivery
/// id and its own position in the body; the credentials it was sent with
/// (Authorization, Cookie, the source's API-key header) read as nothing, in
/// expressions, conditions and templates alike.
#[test]
fn the_transform_reads_the_request_but_never_its_credentials() {
    let setup = Setup::new();
    let sink = Sink::start();
    setup.file(
        "t.xf",
        "set event = request.headers.\"x-github-event\"\n\
         set source = request.source\n\
         set path = request.path\n\
         set index = request.index\n\
         set delivery = request.delivery_id\n\
         set received = request.received_at\n\
         set key = coalesce(request.headers.\"x-gh-token\", \"withheld\")\n\
         set auth = coalesce(request.headers.authorization, \"withheld\")\n\
         set cookie = coalesce(request.headers.cookie, \"withheld\")\n\
         set whole = request\n\
         when request.headers.\"x-github-event\" == \"code_scanning_alert\" and request.index == 1 {\n  set second = true\n}\n\
         message m = \"{{ request.headers['x-github-event'] }}/{{ request.index }}/{{ request.headers['x-gh-token'] }}{{ request.headers.authorization }}\"\n",
    );
    setup.file(
        "p.xfp",
        &format!(
            "spool \"spool\"\nsource gh at \"/hooks/gh\" {{\n    transform \"t.xf\"\n    auth api_key header \"X-Gh-Token\" = env \"XF_TEST_REQUEST_KEY\"\n}}\ndestination d {{\n    uri \"{}\"\n}}\n",
            sink.url()
        ),
    );
    let server = setup.serve_pipeline(&[], &[("XF_TEST_REQUEST_KEY", "k3y-s3cret")]);
    let headers = [
        ("X-GitHub-Event", "code_scanning_alert"),
        ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ("X-Gh-Token", "k3y-s3cret"),
        ("Authorization", "Bearer b3arer-s3cret"),
        ("Cookie", "session=c00kie-s3cret"),
    ];
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (status, answer) = post(
        server.address,
        "/hooks/gh",
        &headers,
        br#"[{"n": "a"}, {"n": "b"}]"#,
    );
    assert_eq!(status, 200, "{answer}");
    sink.wait_for(10 * SECOND, "two records", |r| r.len() >= 2);
    let mut delivered: Vec<Value> = sink.delivered().into_iter().map(|(_, v)| v).collect();
    delivered.sort_by_key(|v| v["index"].as_i64());
    assert_eq!(delivered.len(), 2);
    for (k, record) in delivered.iter().enumerate() {
        let text = record.to_string();
        assert!(!text.contains("s3cret"), "a credential was read: {text}");
        assert_eq!(record["n"], ["a", "b"][k]);
        assert_eq!(record["event"], "code_scanning_alert");
        assert_eq!(record["source"], "gh");
        assert_eq!(record["path"], "/hooks/gh");
        assert_eq!(record["index"], k);
        assert_eq!(record["delivery"], "72d3162e-cc78-11e3-81ab-4c9367dc0958");
        let received = record["received"].as_i64().unwrap();
        assert!(received >= before && received < before + 60_000, "{text}");
        for withheld in ["key", "auth", "cookie"] {
            assert_eq!(record[withheld], "withheld", "{text}");
        }
        let headers = record["whole"]["headers"].as_object().unwrap();
        assert_eq!(headers["x-github-event"], "code_scanning_alert");
        for name in ["x-gh-token", "authorization", "cookie"] {
            assert!(!headers.contains_key(name), "{text}");
        }
        assert_eq!(record["whole"]["index"], k);
        // Nothing else of the request: no query, no remote address.
        let mut fields: Vec<&str> = record["whole"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "delivery_id",
                "headers",
                "index",
                "path",
                "received_at",
                "source"
            ]
        );
        assert_eq!(record["second"].as_bool(), (k == 1).then_some(true));
        assert_eq!(record["m"], format!("code_scanning_alert/{k}/"));
    }
    assert!(server.terminate().success());
}

/// A destination's `when` reads the request too: GitHub names the event only
/// in `X-GitHub-Event`, so a destination for Dependabot alerts chooses by it.
#[test]
fn a_destinations_when_chooses_by_the_request() {
    let setup = Setup::new();
    let (dependabot, everything) = (Sink::start(), Sink::start());
    setup.file("t.xf", "label relayed = \"yes\"\n");
    setup.file(
        "p.xfp",
        &format!(
            "spool \"spool\"\nsource gh at \"/hooks/gh\" {{\n    transform \"t.xf\"\n    auth none\n}}\n\
             destination dependabot {{\n    uri \"{}\"\n    when request.headers.\"x-github-event\" == \"dependabot_alert\" and request.source == \"gh\"\n}}\n\
             destination everything {{\n    uri \"{}\"\n}}\n",
            dependabot.url(),
            everything.url()
        ),
    );
    let server = setup.serve_pipeline(&[], &[]);
    for (event, n) in [
        ("dependabot_alert", "1"),
        ("ping", "2"),
        ("dependabot_alert", "3"),
    ] {
        let (status, answer) = post(
            server.address,
            "/hooks/gh",
            &[("X-GitHub-Event", event)],
            format!("{{\"n\": \"{n}\"}}").as_bytes(),
        );
        assert_eq!(status, 200, "{answer}");
    }
    everything.wait_for(10 * SECOND, "three records", |r| r.len() >= 3);
    dependabot.wait_for(10 * SECOND, "two records", |r| r.len() >= 2);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut chosen: Vec<String> = dependabot
        .delivered()
        .into_iter()
        .map(|(_, v)| v["n"].as_str().unwrap().to_string())
        .collect();
    chosen.sort();
    assert_eq!(chosen, ["1", "3"]);
    assert!(server.terminate().success());
}
