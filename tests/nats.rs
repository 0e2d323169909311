//! `xf serve` on NATS JetStream, against a real `nats-server -js` that each
//! test starts on a free loopback port with a store folder of its own.
//!
//! This target needs the `nats` feature and the `nats-server` program
//! (Debian: `apt-get install nats-server`); run it with
//! `cargo test --features nats --test nats`. The README's plain `cargo test`
//! does not build it.
#![cfg(feature = "nats")]

mod support;

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{get, metric, try_post, Answer, Server, Sink};

/// The nats-server to run: `XF_NATS_SERVER` (a path), else the PATH's.
/// `.ci/run` runs this target twice: with Debian's 2.9 and with the current
/// release it installs from PyPI (`.ci/venv/bin/nats-server`).
fn nats_server() -> String {
    std::env::var("XF_NATS_SERVER").unwrap_or_else(|_| "nats-server".to_string())
}

/// A `nats-server -js` on loopback; killed when dropped.
struct Nats {
    child: Option<Child>,
    port: u16,
    store: PathBuf,
    /// More flags: credentials, TLS.
    extra: Vec<String>,
}

impl Nats {
    fn start(store: &Path) -> Nats {
        Nats::start_with(store, &[])
    }

    fn start_with(store: &Path, extra: &[&str]) -> Nats {
        let mut nats = Nats::on_port(store, free_port(), extra);
        nats.run();
        nats
    }

    /// A server on `port`, not started yet ([`Nats::run`] starts it).
    fn on_port(store: &Path, port: u16, extra: &[&str]) -> Nats {
        Nats {
            child: None,
            port,
            store: store.to_path_buf(),
            extra: extra.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn run(&mut self) {
        let child = Command::new(nats_server())
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.store)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(self.log_file())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start nats-server ({error}): this test target needs it on the PATH \
                     (Debian: apt-get install nats-server)"
                )
            });
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            assert!(
                exited.is_none() && start.elapsed() < Duration::from_secs(20),
                "nats-server did not listen ({exited:?}): {}",
                std::fs::read_to_string(self.log_path()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log, beside its store folder.
    fn log_path(&self) -> PathBuf {
        self.store.with_extension("log")
    }

    fn log_file(&self) -> Stdio {
        if let Some(parent) = self.store.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null())
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// `kill -9`, then the same server again on the same port and store.
    fn restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.run();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `xf serve` on the JetStream queue (its spool folder is not used).
fn instance(dir: &Path, nats: &Nats, args: &[&str]) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xf"));
    command
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--queue", &nats.url()])
        // Short, so that the records of a killed instance go to another soon.
        .args(["--queue-ack-wait", "3"])
        .args(args);
    Server::start_command(command, dir)
}

/// `xf serve PIPELINE` on a free loopback port.
fn pipeline_command(pipeline: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xf"));
    command
        .arg("serve")
        .arg(pipeline)
        .args(["--listen", "127.0.0.1:0"]);
    command
}

/// `xf spool ARGS… --queue URL`: stdout, stderr, success.
fn spool(nats: &Nats, args: &[&str]) -> (String, String, bool) {
    let output = Command::new(env!("CARGO_BIN_EXE_xf"))
        .arg("spool")
        .args(args)
        .args(["--queue", &nats.url()])
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        output.status.success(),
    )
}

/// `xf spool ARGS… --queue URL` with a stdout whose reader is already gone:
/// its exit status and stderr (issue 28: a listing ends quietly then).
fn spool_into_closed_pipe(nats: &Nats, args: &[&str]) -> (Option<i32>, String) {
    let mut reader = Command::new("true")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let closed = reader.stdin.take().unwrap();
    reader.wait().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_xf"))
        .arg("spool")
        .args(args)
        .args(["--queue", &nats.url()])
        .stdout(closed)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn stats(nats: &Nats) -> Value {
    let (out, err, ok) = spool(nats, &["stats"]);
    assert!(ok, "xf spool stats: {err}");
    serde_json::from_str(&out).unwrap()
}

/// Markers delivered to `sink`, each with every id it came with.
fn arrivals(sink: &Sink) -> HashMap<String, Vec<String>> {
    let mut arrived: HashMap<String, Vec<String>> = HashMap::new();
    for (id, value) in sink.delivered() {
        if let Some(marker) = value["marker"].as_str() {
            arrived.entry(marker.to_string()).or_default().push(id);
        }
    }
    arrived
}

/// Waits until every accepted marker arrived at `sink`, then checks that
/// every copy carries the id it was answered with.
fn assert_all_arrive(sink: &Sink, accepted: &HashMap<String, String>, within: Duration) {
    let start = Instant::now();
    loop {
        let arrived = arrivals(sink);
        let missing: Vec<&String> = accepted
            .keys()
            .filter(|marker| !arrived.contains_key(*marker))
            .collect();
        if missing.is_empty() {
            for (marker, id) in accepted {
                for copy in &arrived[marker] {
                    assert_eq!(copy, id, "{marker} arrived with another id");
                }
            }
            return;
        }
        assert!(
            start.elapsed() < within,
            "{} of {} records answered 2xx never arrived, e.g. {:?}",
            missing.len(),
            accepted.len(),
            &missing[..missing.len().min(5)]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn three_instances_share_one_queue_through_kill_9_and_a_nats_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut nats = Nats::start(&dir.path().join("js"));
    let transform = dir.path().join("t.xf");
    std::fs::write(&transform, "label relayed = \"yes\"\n").unwrap();
    let (siem, soar) = (Sink::start(), Sink::start());
    // Deliveries are slow enough that records are in flight when an instance dies.
    siem.otherwise(Answer::Slow(Duration::from_millis(20)));
    let (transform, siem_url, soar_url) = (transform.display().to_string(), siem.url(), soar.url());
    let args = [
        "--transform",
        transform.as_str(),
        "--to",
        siem_url.as_str(),
        "--to",
        soar_url.as_str(),
    ];
    let instances: Vec<Arc<Mutex<Option<Server>>>> = (0..3)
        .map(|_| Arc::new(Mutex::new(Some(instance(dir.path(), &nats, &args)))))
        .collect();
    let addresses: Vec<SocketAddr> = instances
        .iter()
        .map(|i| i.lock().unwrap().as_ref().unwrap().address)
        .collect();

    // A bounded load: 4 senders, 150 bodies each, round robin over the
    // instances; a body without a 2xx goes to the next instance with the same
    // Idempotency-Key, as a sender behind a load balancer retries.
    let accepted = Arc::new(Mutex::new(HashMap::<String, String>::new()));
    let sent = Arc::new(AtomicUsize::new(0));
    let retried = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..4)
        .map(|sender| {
            let (accepted, sent, retried) = (
                Arc::clone(&accepted),
                Arc::clone(&sent),
                Arc::clone(&retried),
            );
            let addresses = addresses.clone();
            std::thread::spawn(move || {
                for n in 0..150 {
                    let marker = format!("s{sender}-n{n}");
                    let body = format!("{{\"marker\": \"{marker}\"}}");
                    let key = format!("delivery-{marker}");
                    let headers = [
                        ("content-type", "application/json"),
                        ("idempotency-key", key.as_str()),
                    ];
                    let mut turn = sender + n;
                    let started = Instant::now();
                    loop {
                        let address = addresses[turn % addresses.len()];
                        match try_post(address, "/", &headers, body.as_bytes()) {
                            Ok((200, answer)) => {
                                let answer: Value = serde_json::from_str(&answer).unwrap();
                                let id = answer["ids"][0].as_str().unwrap().to_string();
                                accepted.lock().unwrap().insert(marker, id);
                                break;
                            }
                            _ => {
                                retried.fetch_add(1, Ordering::SeqCst);
                                turn += 1;
                                assert!(
                                    started.elapsed() < Duration::from_secs(60),
                                    "{marker} was never accepted"
                                );
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        }
                    }
                    sent.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();

    let wait_for_sent = |count: usize| {
        let start = Instant::now();
        while sent.load(Ordering::SeqCst) < count {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "the load stalled"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for_sent(150);
    // kill -9 of one instance, with records leased to it in flight.
    instances[1].lock().unwrap().take().unwrap().kill();
    wait_for_sent(300);
    // The JetStream server itself dies and comes back on the same store.
    nats.restart();
    wait_for_sent(450);
    // The killed instance comes back (on a new port: senders go on without it).
    *instances[1].lock().unwrap() = Some(instance(dir.path(), &nats, &args));
    for sender in senders {
        sender.join().unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 600, "every body is accepted in the end");
    for sink in [&siem, &soar] {
        assert_all_arrive(sink, &accepted, Duration::from_secs(90));
    }
    // Shared work: the instances that ran throughout both delivered.
    for index in [0, 2] {
        let guard = instances[index].lock().unwrap();
        let server = guard.as_ref().unwrap();
        let (_, text) = get(server.address, "/metrics");
        let delivered = metric(
            &text,
            "xf_records_delivered_total",
            &format!("destination=\"{siem_url}\""),
        );
        assert!(delivered > 0.0, "instance {index} delivered nothing");
    }
    let repeats: usize = arrivals(&siem).values().map(|ids| ids.len() - 1).sum();
    eprintln!(
        "600 accepted, {} sends retried, {repeats} repeated deliveries to one destination",
        retried.load(Ordering::SeqCst)
    );
    // Nothing is left to deliver once all arrived: not pending, not in flight.
    let unsettled = |stats: &Value| -> u64 {
        stats["consumers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["not_yet_delivered"].as_u64().unwrap() + c["in_flight"].as_u64().unwrap())
            .sum()
    };
    let start = Instant::now();
    while unsettled(&stats(&nats)) != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            stats(&nats)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_sender_retry_with_the_same_delivery_id_is_kept_once() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(&dir.path().join("js"));
    let transform = dir.path().join("t.xf");
    std::fs::write(&transform, "label relayed = \"yes\"\n").unwrap();
    let sink = Sink::start();
    let (transform, url) = (transform.display().to_string(), sink.url());
    let args = ["--transform", transform.as_str(), "--to", url.as_str()];
    let (one, two) = (
        instance(dir.path(), &nats, &args),
        instance(dir.path(), &nats, &args),
    );
    let headers = [
        ("content-type", "application/json"),
        ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    ];
    let body = br#"[{"marker": "a"}, {"marker": "b"}]"#;
    let (status, first) = try_post(one.address, "/", &headers, body).unwrap();
    assert_eq!(status, 200, "{first}");
    // The same delivery again, to the other instance: the same ids, not kept again.
    let (status, second) = try_post(two.address, "/", &headers, body).unwrap();
    assert_eq!(status, 200, "{second}");
    let ids = |answer: &str| serde_json::from_str::<Value>(answer).unwrap()["ids"].clone();
    assert_eq!(ids(&first), ids(&second));
    sink.wait_for(Duration::from_secs(20), "both records", |r| r.len() >= 2);
    std::thread::sleep(Duration::from_secs(2));
    let arrived = arrivals(&sink);
    assert_eq!(arrived.len(), 2);
    assert!(arrived.values().all(|ids| ids.len() == 1), "{arrived:?}");
}

#[test]
fn a_down_destination_catches_up_and_poison_records_end_in_the_dead_letter_stream() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(&dir.path().join("js"));
    let transform = dir.path().join("t.xf");
    std::fs::write(&transform, "label relayed = \"yes\"\n").unwrap();
    // The SIEM is down for its first requests (while records keep coming);
    // the ticketing system refuses poison records with 500, always.
    let (siem, tickets) = (Sink::start(), Sink::start());
    siem.script(std::iter::repeat_n(Answer::Status(503), 6));
    tickets.answer_containing("poison", Answer::Status(500));
    let pipeline = dir.path().join("p.xfp");
    std::fs::write(
        &pipeline,
        format!(
            "queue nats \"{}\"\nqueue_ack_wait 3\nsource hooks at \"/\" {{\n    transform \"t.xf\"\n    auth none\n}}\n\
             destination siem {{\n    uri \"{}\"\n}}\n\
             destination tickets {{\n    uri \"{}\"\n    max_attempts 3\n}}\n",
            nats.url(),
            siem.url(),
            tickets.url()
        ),
    )
    .unwrap();
    let start_one = || Server::start_command(pipeline_command(&pipeline), dir.path());
    let (one, two) = (start_one(), start_one());
    let (mut accepted, mut good) = (HashMap::new(), HashMap::new());
    let mut poison = HashSet::new();
    for n in 0..60 {
        let marker = if n % 20 == 7 {
            format!("poison-{n}")
        } else {
            format!("good-{n}")
        };
        let body = format!("{{\"marker\": \"{marker}\"}}");
        let address = if n % 2 == 0 { one.address } else { two.address };
        let (status, answer) = try_post(
            address,
            "/",
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(status, 200, "{answer}");
        let id = serde_json::from_str::<Value>(&answer).unwrap()["ids"][0]
            .as_str()
            .unwrap()
            .to_string();
        if marker.starts_with("poison") {
            poison.insert(marker.clone());
        } else {
            good.insert(marker.clone(), id.clone());
        }
        accepted.insert(marker, id);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_all_arrive(&siem, &accepted, Duration::from_secs(120));
    assert_all_arrive(&tickets, &good, Duration::from_secs(60));
    // The poison records: three attempts each, then a dead letter.
    let start = Instant::now();
    let dead = loop {
        let (out, err, ok) = spool(&nats, &["list", "--dead"]);
        assert!(ok, "{err}");
        let dead: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if dead.len() >= poison.len() {
            break dead;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} of {} poison records are dead letters",
            dead.len(),
            poison.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let markers: HashSet<String> = dead
        .iter()
        .map(|d| d["record"]["marker"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(markers, poison);
    for letter in &dead {
        assert_eq!(letter["destination"], "tickets");
        assert_eq!(
            letter["id"],
            accepted[letter["record"]["marker"].as_str().unwrap()]
        );
        let reason = letter["reason"].as_str().unwrap();
        assert!(reason.contains("gave up after 3 attempts"), "{reason}");
        // Every attempt's result, whichever instance made it (issue 29).
        let log = letter["attempts"].as_array().expect("an attempt log");
        assert_eq!(log.len(), 3, "{letter}");
        assert!(
            log.iter()
                .all(|a| a["result"].as_str().is_some_and(|r| r.contains("500"))),
            "{letter}"
        );
    }
    let poison_attempts = || {
        tickets
            .received()
            .iter()
            .filter(|r| String::from_utf8_lossy(&r.body).contains("poison"))
            .count()
    };
    let attempts = poison_attempts();
    assert!(
        attempts >= 3 * poison.len() && attempts <= 4 * poison.len(),
        "{attempts} attempts on {} poison records",
        poison.len()
    );
    let stats = stats(&nats);
    assert_eq!(stats["dead_letters"][0]["destination"], "tickets");
    assert_eq!(stats["dead_letters"][0]["records"], poison.len());
    assert_eq!(
        spool_into_closed_pipe(&nats, &["list", "--dead"]),
        (Some(0), String::new())
    );
    // Replayed, they are tried again (and die again: the destination still refuses them).
    let (_, err, ok) = spool(&nats, &["replay"]);
    assert!(ok && err.contains("3 dead letter(s) queued again"), "{err}");
    let start = Instant::now();
    while poison_attempts() <= attempts {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the replayed records were not sent"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_stream_at_its_limits_refuses_with_503_and_drops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(&dir.path().join("js"));
    let transform = dir.path().join("t.xf");
    std::fs::write(&transform, "label relayed = \"yes\"\n").unwrap();
    let sink = Sink::start();
    sink.otherwise(Answer::Status(503));
    let (transform, url) = (transform.display().to_string(), sink.url());
    let server = instance(
        dir.path(),
        &nats,
        &[
            "--transform",
            transform.as_str(),
            "--to",
            url.as_str(),
            "--spool-max-records",
            "5",
        ],
    );
    let mut statuses = Vec::new();
    for n in 0..8 {
        let body = format!("{{\"marker\": \"m{n}\"}}");
        let (status, _) = try_post(
            server.address,
            "/",
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .unwrap();
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 503, 503, 503]);
    assert_eq!(stats(&nats)["records"], 5);
    for args in [&["stats"][..], &["list"]] {
        assert_eq!(
            spool_into_closed_pipe(&nats, args),
            (Some(0), String::new()),
            "{args:?}"
        );
    }
    let (_, text) = get(server.address, "/metrics");
    assert_eq!(
        metric(&text, "xf_refused_requests_total", "reason=\"spool_full\""),
        3.0
    );
    // The destination comes back: the five are delivered, and room is made.
    sink.otherwise(Answer::Ok);
    sink.wait_for(Duration::from_secs(60), "the five records", |r| {
        r.iter().filter(|r| r.answered == 200).count() >= 5
    });
}

/// `xf serve` that must not start: its exit status and log, within 30 s.
fn refused_start(mut command: Command) -> (std::process::ExitStatus, String) {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut log = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
            return (status, log);
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("xf serve neither started nor stopped within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_queue_is_reached_with_a_user_and_password_over_tls_or_a_token_and_refused_without() {
    let dir = tempfile::tempdir().unwrap();
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.path().join("nats.pem"), dir.path().join("nats.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let nats = Nats::start_with(
        &dir.path().join("js"),
        &[
            "--user",
            "xf",
            "--pass",
            "s3cret-pass",
            "--tls",
            "--tlscert",
            &cert,
            "--tlskey",
            &key,
        ],
    );
    let transform = dir.path().join("t.xf");
    std::fs::write(&transform, "label relayed = \"yes\"\n").unwrap();
    let sink = Sink::start();
    let (transform, url) = (transform.display().to_string(), sink.url());
    let tls_url = format!("tls://127.0.0.1:{}", nats.port);
    let command = |password: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xf"));
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--queue", &tls_url])
            .args([
                "--queue-user",
                "xf",
                "--queue-password-env",
                "XF_TEST_NATS_PASSWORD",
            ])
            .args(["--queue-ca-file", &cert])
            .args(["--transform", &transform, "--to", &url])
            .args(["--private-destination", "127.0.0.0/8"])
            .env("XF_TEST_NATS_PASSWORD", password);
        command
    };
    let server = Server::start_command(command("s3cret-pass"), dir.path());
    let (status, answer) = try_post(
        server.address,
        "/",
        &[("content-type", "application/json")],
        br#"{"marker": "over-tls"}"#,
    )
    .unwrap();
    assert_eq!(status, 200, "{answer}");
    sink.wait_for(Duration::from_secs(20), "the record", |r| r.len() == 1);
    drop(server);
    // A wrong password: xf says so and does not start.
    let (status, log) = refused_start(command("wrong"));
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("cannot open the queue on JetStream"), "{log}");
    assert!(log.to_lowercase().contains("authorization"), "{log}");
    // Without the CA, the server's certificate is not trusted.
    let mut untrusted = Command::new(env!("CARGO_BIN_EXE_xf"));
    untrusted
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--queue", &tls_url])
        .args([
            "--queue-user",
            "xf",
            "--queue-password-env",
            "XF_TEST_NATS_PASSWORD",
        ])
        .args([
            "--transform",
            &transform,
            "--to",
            &url,
            "--private-destination",
            "127.0.0.0/8",
        ])
        .env("XF_TEST_NATS_PASSWORD", "s3cret-pass");
    let (status, log) = refused_start(untrusted);
    assert_eq!(status.code(), Some(2), "{log}");

    // A token instead.
    let token_dir = tempfile::tempdir().unwrap();
    let nats = Nats::start_with(&token_dir.path().join("js"), &["--auth", "t0ken-for-xf"]);
    let mut command = Command::new(env!("CARGO_BIN_EXE_xf"));
    command
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--queue", &nats.url()])
        .args(["--queue-token-env", "XF_TEST_NATS_TOKEN"])
        .args(["--transform", &transform, "--to", &url])
        .env("XF_TEST_NATS_TOKEN", "t0ken-for-xf");
    let server = Server::start_command(command, token_dir.path());
    let (status, answer) = try_post(
        server.address,
        "/",
        &[("content-type", "application/json")],
        br#"{"marker": "with-a-token"}"#,
    )
    .unwrap();
    assert_eq!(status, 200, "{answer}");
    sink.wait_for(Duration::from_secs(20), "the second record", |r| {
        r.len() == 2
    });
}

/// Waits until the instance's `/readyz` answers `status`, or panics with its log.
fn wait_ready(server: &Server, status: u16, within: Duration) {
    let start = Instant::now();
    while get(server.address, "/readyz").0 != status {
        assert!(
            start.elapsed() < within,
            "/readyz never answered {status}: {}",
            server.log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Three `nats-server -js` in one cluster on loopback, each with its
/// monitoring port (to find the leaders), and a pipeline of two instances
/// with `queue_replicas 3` on it.
struct Cluster {
    nodes: Vec<Nats>,
    monitors: Vec<u16>,
    pipeline: PathBuf,
    sink: Sink,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let monitors: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let all_routes = routes
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let nodes: Vec<Nats> = (0..3)
            .map(|n| {
                let name = format!("node-{n}");
                let cluster = format!("nats://127.0.0.1:{}", routes[n]);
                Nats::start_with(
                    &dir.path().join(&name),
                    &[
                        "--name",
                        &name,
                        "--cluster_name",
                        "xf-test",
                        "--cluster",
                        &cluster,
                        "--routes",
                        &all_routes,
                        "-m",
                        &monitors[n].to_string(),
                    ],
                )
            })
            .collect();
        let urls = nodes.iter().map(Nats::url).collect::<Vec<_>>().join(",");
        std::fs::write(dir.path().join("t.xf"), "label relayed = \"yes\"\n").unwrap();
        let sink = Sink::start();
        let pipeline = dir.path().join("p.xfp");
        std::fs::write(
            &pipeline,
            format!(
                "queue nats \"{urls}\"\nqueue_replicas 3\nqueue_ack_wait {ACK_WAIT_S}\n\
                 source hooks at \"/\" {{\n    transform \"t.xf\"\n    auth none\n}}\n\
                 destination siem {{\n    uri \"{}\"\n}}\n",
                sink.url()
            ),
        )
        .unwrap();
        Cluster {
            nodes,
            monitors,
            pipeline,
            sink,
            dir,
        }
    }

    /// An instance: it waits for the cluster to elect its leaders and
    /// take the streams (`/readyz` 503 until then).
    fn instance(&self) -> Server {
        let server = Server::start_command(pipeline_command(&self.pipeline), self.dir.path());
        wait_ready(&server, 200, Duration::from_secs(90));
        server
    }

    /// The node (index) that leads the records stream, and the one that
    /// leads the destination's consumer, as the live nodes report them.
    fn leaders(&self) -> (Option<usize>, Option<usize>) {
        let (mut stream, mut consumer) = (None, None);
        for (n, node) in self.nodes.iter().enumerate() {
            if node.child.is_none() {
                continue;
            }
            let address: SocketAddr = ([127, 0, 0, 1], self.monitors[n]).into();
            let Some(jsz) = monitoring(address, "/jsz?streams=true&consumers=true") else {
                continue;
            };
            let index = |name: &Value| {
                name.as_str()
                    .and_then(|name| name.strip_prefix("node-"))
                    .and_then(|n| n.parse::<usize>().ok())
            };
            for account in jsz["account_details"].as_array().into_iter().flatten() {
                for detail in account["stream_detail"].as_array().into_iter().flatten() {
                    if detail["name"] != "xf-records" {
                        continue;
                    }
                    stream = stream.or(index(&detail["cluster"]["leader"]));
                    for c in detail["consumer_detail"].as_array().into_iter().flatten() {
                        consumer = consumer.or(index(&c["cluster"]["leader"]));
                    }
                }
            }
        }
        (stream, consumer)
    }

    fn kill(&mut self, node: usize) {
        if let Some(mut child) = self.nodes[node].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A nats-server monitoring page as JSON (HTTP/1.0: the answer is not chunked).
fn monitoring(address: SocketAddr, path: &str) -> Option<Value> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.split_once("\r\n\r\n")?.1).ok()
}

/// The pipeline's `queue_ack_wait` in the cluster tests: records leased to
/// an instance that died go to the other after it.
const ACK_WAIT_S: u64 = 3;

/// Sends `count` markers (`{prefix}{n}`), alternating between the servers
/// still running and each sent again after a refusal, as a sender would;
/// calls `at(n)` before each. Returns what was accepted: marker → id.
fn send_markers(
    servers: &[&Server],
    prefix: &str,
    count: usize,
    mut at: impl FnMut(usize),
) -> HashMap<String, String> {
    let mut accepted = HashMap::new();
    for n in 0..count {
        at(n);
        let marker = format!("{prefix}{n}");
        let body = format!("{{\"marker\": \"{marker}\"}}");
        let started = Instant::now();
        let mut attempt = n;
        loop {
            let address = servers[attempt % servers.len()].address;
            attempt += 1;
            match try_post(
                address,
                "/",
                &[
                    ("content-type", "application/json"),
                    ("idempotency-key", &marker),
                ],
                body.as_bytes(),
            ) {
                Ok((200, answer)) => {
                    let id = serde_json::from_str::<Value>(&answer).unwrap()["ids"][0]
                        .as_str()
                        .unwrap()
                        .to_string();
                    accepted.insert(marker, id);
                    break;
                }
                // During the new leaders' election: 503, and the sender retries.
                other => {
                    assert!(
                        started.elapsed() < Duration::from_secs(60),
                        "{marker} was never accepted: {other:?}"
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    accepted
}

/// Delivery resumed after a failure at `killed`: a record arrived at the
/// destination after it, within the ack wait and 10 s.
fn assert_delivery_resumes(sink: &Sink, killed: Instant) {
    let limit = Duration::from_secs(ACK_WAIT_S + 10);
    sink.wait_for(limit, "a delivery after the failure", |received| {
        received.iter().any(|r| r.answered == 200 && r.at > killed)
    });
}

/// Which part of the fleet dies in the middle of the load.
enum Failure {
    /// The node leading the destination's consumer: pulls sent while the
    /// consumer has no leader go unanswered (the stall of issue 29).
    ConsumersLeader,
    /// The node leading the records stream.
    StreamsLeader,
    /// A node that leads neither, and an instance, together.
    NodeAndInstance,
}

/// One cluster at a time: three nodes and two instances each are a load
/// of their own on a small machine, and their ports are picked free before
/// they are bound.
static ONE_CLUSTER: Mutex<()> = Mutex::new(());

fn a_cluster_of_three_loses_nothing(failure: Failure) {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|p| p.into_inner());
    let mut cluster = Cluster::start();
    let first = cluster.instance();
    let second = cluster.instance();
    // Records before the failure make the consumer (and its leader).
    let mut accepted = send_markers(&[&first, &second], "before-", 40, |_| {});
    assert_all_arrive(&cluster.sink, &accepted, Duration::from_secs(30));
    let (stream, consumer) = cluster.leaders();
    let (stream, consumer) = (
        stream.expect("the records stream's leader"),
        consumer.expect("the consumer's leader"),
    );
    let victim = match failure {
        Failure::ConsumersLeader => consumer,
        Failure::StreamsLeader => stream,
        Failure::NodeAndInstance => (0..3)
            .find(|n| *n != stream && *n != consumer)
            .unwrap_or((stream + 1) % 3),
    };
    let killed = Instant::now();
    cluster.kill(victim);
    let survivors: Vec<&Server> = match failure {
        Failure::NodeAndInstance => {
            // The second instance dies with records leased to it: the first
            // gets them after the ack wait.
            let mut second = second;
            let _ = second.child.kill();
            let _ = second.child.wait();
            let during = send_markers(&[&first], "during-", 80, |_| {});
            accepted.extend(during);
            assert_delivery_resumes(&cluster.sink, killed);
            assert_all_arrive(
                &cluster.sink,
                &accepted,
                Duration::from_secs(ACK_WAIT_S + 30),
            );
            return;
        }
        _ => vec![&first, &second],
    };
    accepted.extend(send_markers(&survivors, "after-", 120, |_| {}));
    assert_delivery_resumes(&cluster.sink, killed);
    assert_all_arrive(
        &cluster.sink,
        &accepted,
        Duration::from_secs(ACK_WAIT_S + 30),
    );
    for server in survivors {
        let log = server.log.lock().unwrap().clone();
        assert!(!log.contains("panicked"), "{log}");
    }
}

#[test]
fn a_cluster_of_three_loses_nothing_when_the_consumers_leader_dies() {
    a_cluster_of_three_loses_nothing(Failure::ConsumersLeader);
}

#[test]
fn a_cluster_of_three_loses_nothing_when_the_streams_leader_dies() {
    a_cluster_of_three_loses_nothing(Failure::StreamsLeader);
}

#[test]
fn a_cluster_of_three_loses_nothing_when_a_node_and_an_instance_die_together() {
    a_cluster_of_three_loses_nothing(Failure::NodeAndInstance);
}

#[test]
fn an_instance_started_before_nats_waits_for_it_and_refuses_with_503_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let sink = Sink::start();
    let transform = dir.path().join("t.xf");
    std::fs::write(&transform, "label relayed = \"yes\"\n").unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_xf"));
    command
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--queue", &url])
        .args(["--transform", &transform.display().to_string()])
        .args(["--to", &sink.url()]);
    let server = Server::start_command(command, dir.path());
    let (status, text) = get(server.address, "/readyz");
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("not ready"), "{text}");
    let body = br#"{"marker": "early"}"#;
    let headers = [("content-type", "application/json")];
    let (status, head, answer) = support::post_with_head(server.address, "/", &headers, body);
    assert_eq!(status, 503, "{answer}");
    assert!(
        head.to_ascii_lowercase().contains("\r\nretry-after: 5"),
        "{head}"
    );
    // Several tries go by, logged once.
    std::thread::sleep(Duration::from_secs(3));
    // Then NATS comes up on the port the instance keeps trying.
    let mut nats = Nats::on_port(&dir.path().join("js"), port, &[]);
    nats.run();
    wait_ready(&server, 200, Duration::from_secs(30));
    let (status, answer) = try_post(server.address, "/", &headers, body).unwrap();
    assert_eq!(status, 200, "{answer}");
    sink.wait_for(Duration::from_secs(20), "the record", |r| r.len() == 1);
    // NATS goes away and comes back: 503 while it is away, and delivery after.
    let mut child = nats.child.take().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    wait_ready(&server, 503, Duration::from_secs(30));
    let (status, _) = try_post(server.address, "/", &headers, body).unwrap();
    assert_eq!(status, 503);
    nats.run();
    let start = Instant::now();
    loop {
        let (status, answer) = try_post(
            server.address,
            "/",
            &headers,
            br#"{"marker": "after the outage"}"#,
        )
        .unwrap();
        if status == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never accepted again: {answer}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    sink.wait_for(Duration::from_secs(20), "the second record", |r| {
        r.len() == 2
    });
    let log = server.log.lock().unwrap().clone();
    assert_eq!(
        log.matches("cannot reach the JetStream queue").count(),
        1,
        "logged once, not per try: {log}"
    );
    assert!(log.contains("reached the JetStream queue"), "{log}");
    assert!(log.contains("lost the connection to NATS"), "{log}");
    assert!(
        !log.contains("cannot store records"),
        "a log line per refusal: {log}"
    );
}

/// Issue 28: `xf spool replay --transform` on JetStream, as on the embedded
/// spool: the records the transform failed on, run through the fixed
/// transform with the ids `xf serve` gave them; what still fails stays dead
/// with its new reason, and a second replay changes nothing.
#[test]
fn spool_replay_transform_runs_failed_records_through_the_fixed_transform() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(&dir.path().join("js"));
    let sink = Sink::start();
    let transform = dir.path().join("t.xf");
    std::fs::write(&transform, "set n = number(count)\n").unwrap();
    let pipeline = dir.path().join("p.xfp");
    std::fs::write(
        &pipeline,
        format!(
            "queue nats \"{}\"\nreload_poll 0\nsource hooks at \"/\" {{\n    transform \"t.xf\"\n    auth none\n}}\n\
             destination d {{\n    uri \"{}\"\n}}\n",
            nats.url(),
            sink.url()
        ),
    )
    .unwrap();
    let server = Server::start_command(pipeline_command(&pipeline), dir.path());
    let body =
        br#"[{"count": "five"}, {"count": "noise"}, {"count": "still bad"}, {"count": "3"}]"#;
    let (status, answer) = try_post(server.address, "/", &[], body).unwrap();
    assert_eq!(status, 200, "{answer}");
    let ids: Vec<String> = serde_json::from_str::<Value>(&answer).unwrap()["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect();
    let dead = || {
        let (out, err, ok) = spool(&nats, &["list", "--dead"]);
        assert!(ok, "{err}");
        out.lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .collect::<Vec<_>>()
    };
    let start = Instant::now();
    while dead().len() < 3 {
        assert!(start.elapsed() < Duration::from_secs(20), "{:?}", dead());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::write(
        &transform,
        "drop when count == \"noise\"\nwhen count == \"five\" {\n  set count = \"5\"\n}\nset n = number(count)\n",
    )
    .unwrap();
    let pipeline_path = pipeline.display().to_string();
    let replay = |more: &[&str]| {
        let mut args = vec!["replay", "--transform", pipeline_path.as_str()];
        args.extend(more);
        let (out, err, ok) = spool(&nats, &args);
        assert!(ok, "{err}");
        let lines: Vec<Value> = out
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        (lines, err)
    };
    let before = dead();
    let (dry, said) = replay(&["--dry-run"]);
    assert!(
        said.starts_with("3 record(s) the transform failed on, run through the current transforms: 1 queued (1 record(s) for destinations), 1 dropped, 1 still failing"),
        "{said}"
    );
    assert!(said.ends_with("; dry run: nothing was changed\n"), "{said}");
    assert_eq!(dead(), before, "a dry run changes nothing");
    let outcomes: Vec<(&str, &str)> = dry
        .iter()
        .map(|line| {
            (
                line["id"].as_str().unwrap(),
                line["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (ids[0].as_str(), "queued"),
            (ids[1].as_str(), "dropped"),
            (ids[2].as_str(), "failed")
        ]
    );
    assert_eq!(
        dry[0]["records"],
        serde_json::json!([{"id": ids[0], "destination": "d"}])
    );
    let (done, _) = replay(&[]);
    assert_eq!(done, dry);
    let start = Instant::now();
    while sink.delivered().len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the replayed record was not delivered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut delivered = sink.delivered();
    delivered.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want = vec![
        (ids[0].clone(), serde_json::json!({"count": "5", "n": 5})),
        (ids[3].clone(), serde_json::json!({"count": "3", "n": 3})),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(delivered, want);
    let left = dead();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["id"], ids[2].as_str());
    assert_eq!(left[0]["reason"], dry[2]["reason"]);
    assert!(
        left[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("set (line 5): "),
        "{}",
        left[0]
    );
    // A second replay: the same outcome for the one that still fails, and nothing changed.
    let (again, _) = replay(&[]);
    assert_eq!(again, vec![dry[2].clone()]);
    assert_eq!(dead(), left);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.delivered().len(), 2, "nothing delivered twice");
    assert!(server.terminate().success());
}

/// The ack wait of the destination's consumer, as the server has it (ns).
fn consumer_ack_wait(monitor: u16, consumer: &str) -> Option<u64> {
    let jsz = monitoring(
        ([127, 0, 0, 1], monitor).into(),
        "/jsz?streams=true&consumers=true&config=true",
    )?;
    for account in jsz["account_details"].as_array()? {
        for stream in account["stream_detail"].as_array().into_iter().flatten() {
            for c in stream["consumer_detail"].as_array().into_iter().flatten() {
                if c["name"] == consumer {
                    return c["config"]["ack_wait"].as_u64();
                }
            }
        }
    }
    None
}

#[test]
fn a_410_at_one_instance_disables_the_destination_at_every_one_and_enable_turns_it_on_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let monitor = free_port();
    let nats = Nats::start_with(&dir.path().join("js"), &["-m", &monitor.to_string()]);
    let transform = dir.path().join("t.xf");
    std::fs::write(&transform, "label relayed = \"yes\"\n").unwrap();
    let sink = Sink::start();
    let pipeline = dir.path().join("p.xfp");
    let write_pipeline = |ack_wait: u64| {
        std::fs::write(
            &pipeline,
            format!(
                "queue nats \"{}\"\nqueue_ack_wait {ack_wait}\n\
                 source hooks at \"/\" {{\n    transform \"t.xf\"\n    auth none\n}}\n\
                 destination siem {{\n    uri \"{}\"\n}}\n",
                nats.url(),
                sink.url()
            ),
        )
        .unwrap();
    };
    write_pipeline(3);
    let start_one = || Server::start_command(pipeline_command(&pipeline), dir.path());
    let (one, two) = (start_one(), start_one());
    let post_marker = |server: &Server, marker: &str| {
        let (status, answer) = try_post(
            server.address,
            "/",
            &[("content-type", "application/json")],
            format!("{{\"marker\": \"{marker}\"}}").as_bytes(),
        )
        .unwrap();
        assert_eq!(status, 200, "{answer}");
    };
    post_marker(&one, "first");
    sink.wait_for(Duration::from_secs(20), "the first record", |r| {
        r.len() == 1
    });
    assert_eq!(consumer_ack_wait(monitor, "siem"), Some(3_000_000_000));
    let disabled_at = |server: &Server| {
        metric(
            &get(server.address, "/metrics").1,
            "xf_destination_disabled",
            "siem",
        )
    };
    // The destination is gone: whichever instance gets the 410 disables it,
    // and the other follows within seconds.
    sink.otherwise(Answer::Status(410));
    post_marker(&two, "gone");
    let start = Instant::now();
    while disabled_at(&one) != 1.0 || disabled_at(&two) != 1.0 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "not disabled at both: {} {}",
            disabled_at(&one),
            disabled_at(&two)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let stats = stats(&nats);
    assert_eq!(stats["disabled"][0], "siem", "{stats}");
    // Records for it wait, at both instances.
    post_marker(&one, "waiting-1");
    post_marker(&two, "waiting-2");
    std::thread::sleep(Duration::from_secs(3));
    let gone_requests = sink.received().len();
    // The destination is back: one `xf spool enable` turns it on at both.
    sink.otherwise(Answer::Status(200));
    let (_, err, ok) = spool(&nats, &["enable", "siem"]);
    assert!(ok, "{err}");
    let start = Instant::now();
    while disabled_at(&one) != 0.0 || disabled_at(&two) != 0.0 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "not enabled at both"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    sink.wait_for(Duration::from_secs(30), "the waiting records", |r| {
        let delivered: HashSet<String> = r
            .iter()
            .filter(|r| r.answered == 200)
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .collect();
        ["waiting-1", "waiting-2", "gone"]
            .iter()
            .all(|m| delivered.iter().any(|b| b.contains(m)))
    });
    assert!(gone_requests >= 2);
    // A changed queue_ack_wait reaches the consumer the first start made.
    drop(one);
    drop(two);
    write_pipeline(7);
    let again = start_one();
    post_marker(&again, "after-restart");
    let start = Instant::now();
    while consumer_ack_wait(monitor, "siem") != Some(7_000_000_000) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the consumer kept its ack wait: {:?}",
            consumer_ack_wait(monitor, "siem")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
