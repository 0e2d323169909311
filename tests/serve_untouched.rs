//! `xf serve` reads a record only as far as routing it can see (its
//! transform's fields, what its destinations' `events` and `when` test) and
//! writes the other fields back as the bytes they came in. Here the real
//! binary runs the same pipeline twice, once as it is and once with its
//! transform made to see the whole record, on bodies in every awkward
//! spelling: the answers, what each destination received (byte for byte,
//! under the same record ids) and the dead letters must be the same.
#![cfg(feature = "serve")]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{get, metric, post, Server, Sink};

/// Appended to a transform, it makes the run see every field (a `rename`
/// of a top-level field), and changes nothing else: the field is absent.
const SEE_EVERYTHING: &str = "rename absent to absent_too\n";

/// Bodies as senders write them: escapes serde_json writes otherwise,
/// white space, numbers kept as written, keys given twice, batches, NDJSON,
/// records the transform or a `when` fails on, and bodies refused whole.
const BODIES: &[&str] = &[
    r#"{"a":"x\u00e9","b":1E400,"c":-0,"d":{"x":[1, 2]},"sev":7,"startTime":1700000000000,"z":"\/"}"#,
    "{ \"a\" : 1 ,\n \"b\":[ 1 ,2 ], \"z\": \"\\/\", \"y\" : {\"k\" : \"v\"} }",
    r#"{"a":1,"z":2,"z":3,"sev":9}"#,
    r#"{"a":1,"a":2,"q":[{"r":1,"r":2}]}"#,
    r#"{"q":{"r":1,"r":2},"a":"kept beside"}"#,
    r#"[{"a":1,"k":"x","sev":5},{"a":2, "k" : [1]},5,{"documentType":"OFFENSE_X","offenseType":"Incident","a":3,"w":1e-7}]"#,
    "{\"a\":1,\"t\":\"\\\"q\\\" \\\\ \\n\"}\n{\"a\":2,\"u\":\"\\u0001\",\"v\":\"\\ud83d\\ude00\"}\n{\"b\":\"é\u{2028}\",\"n\":12345678901234567890123}",
    r#"{"x":1}"#,
    r#"{}"#,
    r#"{"a":"drop me","k":1}"#,
    r#"{"sev":"high","k":[1.0,-0.0,1E2]}"#,
    r#"{"documentType":"EVENT_X","k":{"deep":[[[[1]]]]},"a":0}"#,
    r#""a string""#,
    "[]",
    r#"{"startTime":"not a time","k":true}"#,
    "{\"a\":1} {\"k\":2}\n{\"a\":3,\"k\":null}",
    r#"{"a":1,"b":tru}"#,
    r#"[{"a":1},{"k":"\ud800"}]"#,
    r#"{"k\u0065":1,"ke":2,"a":3}"#,
];

/// [`BODIES`], then larger ones: a batch that takes longer than a body's
/// time on the request's task (the rest goes to the blocking pool), one
/// over the 64 KiB read there at all, and a body sent gzipped; each with
/// its `Content-Encoding`.
fn bodies() -> Vec<(Option<&'static str>, Vec<u8>)> {
    let mut bodies: Vec<(Option<&str>, Vec<u8>)> = BODIES
        .iter()
        .map(|body| (None, body.as_bytes().to_vec()))
        .collect();
    let item = |n: usize| {
        format!(
            "{{\"a\": {n}, \"k\":\"x\\u00e9{}\",\"sev\":{},\"q\":[{n}, 1E2]}}",
            "y".repeat(150),
            n % 10
        )
    };
    // Items indented, as pretty-printers do: a line that starts with `{`
    // inside an open array would end the value there (see `xf::read`).
    for count in [250, 400] {
        let items: Vec<String> = (0..count).map(item).collect();
        let batch = format!("[{}]", items.join(",\n  ")).into_bytes();
        assert_eq!(batch.len() > 64 << 10, count == 400);
        bodies.push((None, batch));
    }
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gzip, BODIES[5].as_bytes()).unwrap();
    bodies.push((Some("gzip"), gzip.finish().unwrap()));
    bodies
}

/// A pipeline's source transform, as it is and as the one made to see everything.
const TRANSFORMS: &[&str] = &[
    "label l = \"x\"\nset n = b\ntag remove d\ntag add e.f = \"{{ a }}\"\ndrop when a == \"drop me\"\n",
    "format splunk\nhec time = epoch_ms(startTime)\nset n = b\n",
    "format splunk\nlabel l = 1\n",
];

/// The destinations: all records, those with `sev >= 5`, Armor incidents.
fn pipeline(sinks: &[Sink]) -> String {
    format!(
        "spool \"spool\"\nsource s at \"/in\" {{\n    transform \"t.xf\"\n    auth none\n}}\n\
         destination all {{\n    uri \"{}\"\n}}\n\
         destination severe {{\n    uri \"{}\"\n    when sev >= 5\n}}\n\
         destination incidents {{\n    uri \"{}\"\n    events security_incident\n}}\n",
        sinks[0].url(),
        sinks[1].url(),
        sinks[2].url()
    )
}

/// What one server made of the bodies.
#[derive(Debug, PartialEq)]
struct Outcome {
    /// Each body's status and answer.
    answers: Vec<(u16, String)>,
    /// What each destination received: (destination, record id) → body.
    delivered: BTreeMap<(usize, String), String>,
    /// The dead letters, without the time they were written.
    dead: Vec<Value>,
}

fn run(transform: &str) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let sinks = [Sink::start(), Sink::start(), Sink::start()];
    std::fs::write(dir.path().join("t.xf"), transform).unwrap();
    std::fs::write(dir.path().join("p.xfp"), pipeline(&sinks)).unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_xf"));
    command
        .arg("serve")
        .arg(dir.path().join("p.xfp"))
        .args(["--listen", "127.0.0.1:0"]);
    let spool = dir.path().join("spool");
    let server = Server::start_command(command, &spool);
    let answers: Vec<(u16, String)> = bodies()
        .iter()
        .enumerate()
        .map(|(n, (encoding, body))| {
            // A delivery id gives the records the same ids on both servers.
            let key = format!("body-{n}");
            let mut headers = vec![("Idempotency-Key", key.as_str())];
            headers.extend(encoding.map(|encoding| ("Content-Encoding", encoding)));
            post(server.address, "/in", &headers, body)
        })
        .collect();
    wait_until_delivered(&server);
    assert!(server.terminate().success());
    let mut delivered = BTreeMap::new();
    for (at, sink) in sinks.iter().enumerate() {
        for request in sink.received() {
            assert_eq!(request.answered, 200);
            let body = String::from_utf8(request.body).unwrap();
            assert!(delivered.insert((at, request.ids), body).is_none());
        }
    }
    let (list, _, _) = support::spool(&spool, &["list", "--dead"]);
    let dead = list
        .lines()
        .map(|line| {
            let mut letter: Value = serde_json::from_str(line).unwrap();
            let letter = letter.as_object_mut().unwrap();
            letter.retain(|key, _| !key.ends_with("_at") && !key.ends_with("_ms"));
            Value::Object(letter.clone())
        })
        .collect();
    Outcome {
        answers,
        delivered,
        dead,
    }
}

/// Waits until nothing is queued any more (twice in a row, a moment apart).
fn wait_until_delivered(server: &Server) {
    let start = Instant::now();
    let mut empty = 0;
    while empty < 2 {
        assert!(start.elapsed() < Duration::from_secs(60), "still queued");
        std::thread::sleep(Duration::from_millis(100));
        let (_, metrics) = get(server.address, "/metrics");
        let queued = metric(&metrics, "xf_queue_depth", "");
        empty = if queued == 0.0 { empty + 1 } else { 0 };
    }
}

#[test]
fn records_read_as_far_as_routing_sees_are_delivered_byte_for_byte_as_read_whole() {
    for transform in TRANSFORMS {
        let partial = run(transform);
        let whole = run(&format!("{transform}{SEE_EVERYTHING}"));
        // Both ran what was meant: most bodies taken, records delivered to
        // each destination, some refused, some dead-lettered.
        let taken = partial.answers.iter().filter(|(s, _)| *s == 200).count();
        assert!(taken >= bodies().len() - 2, "{:?}", partial.answers);
        for destination in 0..3 {
            assert!(
                partial.delivered.keys().any(|(d, _)| *d == destination),
                "destination {destination} received nothing through {transform}"
            );
        }
        assert!(!partial.dead.is_empty());
        assert_eq!(partial.answers, whole.answers, "{transform}");
        assert_eq!(partial.dead, whole.dead, "{transform}");
        assert_eq!(partial.delivered, whole.delivered, "{transform}");
    }
}
