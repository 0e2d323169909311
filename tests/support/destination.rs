//! The server tests' stand-in destination (`tests/support/sink.rs`) as a program, for
//! trying a pipeline on one machine (the README's "GitHub security alerts into
//! Splunk in five minutes"): `destination ADDRESS` listens on ADDRESS
//! (`127.0.0.1:9000`), answers every request 200 as the tests' destination
//! does, and prints each record it receives as one JSON line, in the order
//! received: `{"path": …, "id": …, "record": …}` (the URL's path it was sent
//! to, its `xf-record-id`, the record; a batch is a line per record).
//! `cargo build --example destination`, then `target/debug/examples/destination ADDRESS`.

// The tests use all of it; this program only the part that listens and keeps.
#[allow(dead_code)]
#[path = "sink.rs"]
mod sink;

use std::io::Write;

fn main() {
    let Some(address) = std::env::args().nth(1) else {
        eprintln!("usage: destination ADDRESS (such as 127.0.0.1:9000)");
        std::process::exit(2);
    };
    let sink = sink::Sink::start_on(&address);
    eprintln!("destination: listening on http://{}", sink.address);
    let mut printed = 0;
    loop {
        let received = sink.received();
        let mut out = std::io::stdout().lock();
        for request in &received[printed..] {
            for (id, record) in request.records() {
                let line = serde_json::json!({"path": request.path, "id": id, "record": record});
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    return; // its reader is gone
                }
            }
        }
        printed = received.len();
        drop(out);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
