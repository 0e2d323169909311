//! Crash safety of `xf serve`: under a concurrent load, `kill -9` at random
//! moments, many times, restarting on the same spool. Every record answered
//! 2xx must reach every destination at least once, every copy with the id
//! it was answered with; no record answered 4xx may arrive at all.
#![cfg(feature = "serve")]

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{try_post, Server, Sink};

/// A small deterministic generator (xorshift), seeded from the clock and printed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Default)]
struct Ledger {
    /// marker → the id the 2xx answer gave it.
    accepted: HashMap<String, String>,
    /// markers whose request was refused with a 4xx.
    refused: HashSet<String>,
}

#[test]
fn kill_9_under_load_loses_nothing_answered_2xx() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}");
    let mut random = Random(seed);
    let dir = tempfile::tempdir().unwrap();
    let transform = dir.path().join("t.xf");
    std::fs::write(&transform, "label relayed = \"yes\"\n").unwrap();
    let first = Sink::start();
    let second = Sink::start();
    let spool = dir.path().join("spool");
    let (transform, first_url, second_url) =
        (transform.display().to_string(), first.url(), second.url());
    let args = [
        "--transform",
        transform.as_str(),
        "--to",
        first_url.as_str(),
        "--to",
        second_url.as_str(),
    ];
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let rounds = 10;
    for round in 0..rounds {
        let server = Server::start(&spool, &args);
        let address = server.address;
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..8)
            .map(|client| {
                let stop = Arc::clone(&stop);
                let ledger = Arc::clone(&ledger);
                std::thread::spawn(move || {
                    let mut n = 0;
                    while !stop.load(Ordering::SeqCst) {
                        n += 1;
                        let marker = format!("r{round}-c{client}-n{n}");
                        // One in ten is malformed: refused, and must never arrive.
                        let (body, bad) = if n % 10 == 0 {
                            (format!("{{\"marker\": \"{marker}\", oops}}"), true)
                        } else {
                            (format!("{{\"marker\": \"{marker}\"}}"), false)
                        };
                        let (status, answer) = post_quietly(address, body.as_bytes());
                        let mut ledger = ledger.lock().unwrap();
                        match status {
                            200 => {
                                assert!(!bad, "a malformed body was accepted: {answer}");
                                let answer: Value = serde_json::from_str(&answer).unwrap();
                                let id = answer["ids"][0].as_str().unwrap().to_string();
                                ledger.accepted.insert(marker, id);
                            }
                            400..=499 => {
                                ledger.refused.insert(marker);
                            }
                            // Killed mid-request (no answer) or stopping: unknown.
                            _ => {}
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(150 + random.below(600)));
        server.kill();
        stop.store(true, Ordering::SeqCst);
        for client in clients {
            client.join().unwrap();
        }
    }
    // A last start delivers whatever the killed ones left in the spool.
    let server = Server::start(&spool, &args);
    let ledger = ledger.lock().unwrap();
    assert!(
        ledger.accepted.len() > 100,
        "too little load: {}",
        ledger.accepted.len()
    );
    assert!(!ledger.refused.is_empty());
    for sink in [&first, &second] {
        let start = Instant::now();
        loop {
            let got: HashSet<String> = sink
                .delivered()
                .iter()
                .filter_map(|(_, v)| v["marker"].as_str().map(str::to_string))
                .collect();
            let missing: Vec<&String> = ledger
                .accepted
                .keys()
                .filter(|marker| !got.contains(*marker))
                .collect();
            if missing.is_empty() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "{} records answered 2xx never arrived, e.g. {:?}\n{}",
                missing.len(),
                &missing[..missing.len().min(5)],
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        for (id, record) in sink.delivered() {
            let marker = record["marker"].as_str().unwrap();
            assert!(
                !ledger.refused.contains(marker),
                "{marker} was refused, yet arrived"
            );
            assert_eq!(record["relayed"], "yes");
            if let Some(answered) = ledger.accepted.get(marker) {
                assert_eq!(&id, answered, "{marker} arrived with another id");
            }
        }
    }
    eprintln!(
        "{} records answered 2xx over {rounds} kills; {} and {} deliveries (repeats included)",
        ledger.accepted.len(),
        first.delivered().len(),
        second.delivered().len()
    );
}

/// A POST that may meet a dead server: status 0 then.
fn post_quietly(address: std::net::SocketAddr, body: &[u8]) -> (u16, String) {
    try_post(address, "/", &[], body).unwrap_or((0, String::new()))
}
