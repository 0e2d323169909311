//! The mixed-stream transforms must give, for every record, exactly what its
//! own vendor's transform gives. The vendor is told here by a test-side rule
//! (a key each vendor's payloads have), independent of the `when` chain in
//! `transforms/mixed-*.xf`.

use std::path::Path;

use serde_json::Value;
use xf::Transform;

const NOW: i64 = 1_764_000_000_000;

fn load(name: &str) -> Transform {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("transforms")
        .join(name);
    Transform::from_path(&path).unwrap_or_else(|e| panic!("{name}: {}", e.render()))
}

/// The transform's output for one record, at the fixed time [`NOW`].
fn apply(transform: &Transform, record: Value) -> Result<Vec<Value>, xf::RecordError> {
    let context = xf::apply::Context {
        now: Some(NOW),
        ..Default::default()
    };
    Ok(transform.apply_in(record, &context)?.into_records())
}

fn vendor(record: &Value) -> Option<&'static str> {
    let has = |key: &str| record.get(key).is_some();
    if has("documentType") {
        Some("armor")
    } else if has("detail-type") {
        Some("cii")
    } else if has("SECURITY_RULE_NAME") {
        Some("datadog")
    } else if has("detection_name") {
        Some("queryai")
    } else if has("event") {
        Some("datatheorem")
    } else {
        None
    }
}

/// Every record of the shipped test inputs of every vendor, batches flattened.
fn records() -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/vendors");
    let mut records = Vec::new();
    for case in ["mixed-ocsf-fixtures", "mixed-ocsf-corpus"] {
        let text = std::fs::read_to_string(root.join(case).join("input.ndjson")).unwrap();
        for line in text.lines() {
            match serde_json::from_str(line).unwrap() {
                Value::Array(items) => records.extend(items),
                record => records.push(record),
            }
        }
    }
    records
}

fn same_as_each_vendor(target: &str, armor: &str) {
    let mixed = load(&format!("mixed-{target}.xf"));
    let records = records();
    let own: std::collections::HashMap<&str, Transform> =
        ["armor", "cii", "datadog", "datatheorem", "queryai"]
            .into_iter()
            .map(|vendor| {
                let file = match vendor {
                    "armor" => armor.to_string(),
                    other => format!("{other}-{target}.xf"),
                };
                (vendor, load(&file))
            })
            .collect();
    let mut by_vendor = std::collections::BTreeMap::new();
    for record in records {
        let got = apply(&mixed, record.clone());
        let Some(vendor) = vendor(&record) else {
            let error = got.expect_err("a payload of no known vendor is a record error");
            assert!(error.reason.contains("not a payload of a vendor xf knows"));
            continue;
        };
        let expected = apply(&own[vendor], record.clone());
        match (&got, &expected) {
            (Ok(got), Ok(expected)) => assert_eq!(got, expected, "{vendor}: {record}"),
            (Err(_), Err(_)) => {}
            _ => panic!("{vendor}: mixed gave {got:?}, its own transform {expected:?}"),
        }
        *by_vendor.entry(vendor).or_insert(0) += 1;
    }
    // Every vendor was seen, so the comparison covered each branch.
    assert_eq!(by_vendor.len(), 5, "{by_vendor:?}");
}

#[test]
fn mixed_splunk_is_each_vendors_splunk_transform() {
    same_as_each_vendor("splunk", "armor-splunk-kinds.xf");
}

#[test]
fn mixed_ocsf_is_each_vendors_ocsf_transform() {
    same_as_each_vendor("ocsf", "armor-ocsf.xf");
}

/// GitHub's deliveries (`tests/fixtures/github/EVENT/ACTION.payload.json`),
/// each with the request `xf serve` gives it: its `X-GitHub-Event` header.
fn github_deliveries() -> Vec<(String, Value, xf::apply::Request)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github");
    let mut found = Vec::new();
    for event in std::fs::read_dir(&root).unwrap() {
        let event = event.unwrap().path();
        if !event.is_dir() {
            continue;
        }
        let name = event.file_name().unwrap().to_str().unwrap().to_string();
        for file in std::fs::read_dir(&event).unwrap() {
            let file = file.unwrap().path();
            let payload = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            let request = xf::apply::Request::new(
                [("X-GitHub-Event", name.as_bytes())],
                &xf::apply::RequestParts::default(),
            );
            found.push((file.display().to_string(), payload, request));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// A GitHub delivery goes through GitHub's own transform, told by its header;
/// without the header its body says no event, so it is no vendor's (but the
/// ping, dropped in its documented shape).
fn github_is_githubs_own(target: &str) {
    let mixed = load(&format!("mixed-{target}.xf"));
    let own = load(&format!("github-{target}.xf"));
    let deliveries = github_deliveries();
    assert!(deliveries.len() >= 16, "{}", deliveries.len());
    for (file, payload, request) in deliveries {
        let context = xf::apply::Context {
            now: Some(NOW),
            request: Some(&request),
            ..Default::default()
        };
        let got = mixed
            .apply_in(payload.clone(), &context)
            .map(|o| o.into_records());
        let expected = own
            .apply_in(payload.clone(), &context)
            .map(|o| o.into_records());
        assert_eq!(got.unwrap(), expected.unwrap(), "{file}");
        match apply(&mixed, payload) {
            Ok(records) => {
                assert!(
                    file.contains("/ping/") && records.is_empty(),
                    "{file}: {records:?}"
                )
            }
            Err(error) => assert!(
                error.reason.contains("not a payload of a vendor xf knows"),
                "{file}: {error}"
            ),
        }
    }
}

#[test]
fn mixed_splunk_takes_github_by_its_event_header() {
    github_is_githubs_own("splunk");
}

#[test]
fn mixed_ocsf_takes_github_by_its_event_header() {
    github_is_githubs_own("ocsf");
}

/// Payloads that look like a vendor's connectivity test, or like its shape,
/// without being one: each must come out (emitted) or fail (a record error,
/// dead-lettered), never be dropped as a test it is not.
fn near_misses() -> Vec<Value> {
    [
        // Data Theorem's test is exactly {"event": "Hello, world!"}.
        r#"{"event": "Hello, world!", "time": 1}"#,
        r#"{"event": "hello"}"#,
        r#"{"event": ""}"#,
        r#"{"event": null}"#,
        r#"{"event": 7}"#,
        r#"{"event": ["Hello, world!"]}"#,
        r#"{"event": {"name": "push"}}"#,
        r#"{"event": "push", "repository": {"full_name": "o/r"}}"#,
        // CII's test is a WebhookTest in CII's envelope.
        r#"{"detail-type": "WebhookTest"}"#,
        r#"{"detail-type": "WebhookTest", "detail": {}}"#,
        r#"{"detail-type": "WebhookTest", "source": "aws.guardduty", "detail": {"id": "x"}}"#,
        r#"{"detail-type": "GuardDuty Finding", "source": "aws.guardduty", "detail": {"severity": 8}}"#,
        // Query.ai's test is {"test": "message", "detection_name": …}.
        r#"{"test": "message", "detection_id": 7}"#,
        r#"{"test": "message", "detection_name": 7}"#,
        r#"{"test": "other"}"#,
        r#"{"test": true, "detection_id": 1}"#,
        // GitHub's ping has zen, hook_id and the hook (its schema's shape).
        r#"{"zen": "Keep it logically awesome.", "hook_id": 1}"#,
        r#"{"zen": "Keep it logically awesome.", "hook_id": "1", "hook": {"type": "Repository", "id": 1, "events": ["*"]}}"#,
        // Armor's `events` filter would drop a documentType of no Armor kind.
        r#"{"documentType": "INVOICE"}"#,
        r#"{"documentType": 7, "offenseType": "Incident"}"#,
        r#"{"documentType": "offense_detection"}"#,
    ]
    .iter()
    .map(|text| serde_json::from_str(text).unwrap())
    .collect()
}

/// Objects of many shapes, deterministically: keys drawn from those the
/// mixed transforms test (and others), values of every kind, nested a little.
/// No value is a connectivity test's marker ("Hello, world!", "WebhookTest",
/// "message"), so none of these may be dropped.
fn foreign_payloads(count: usize) -> Vec<Value> {
    const KEYS: &[&str] = &[
        "event",
        "type",
        "test",
        "detail-type",
        "detail",
        "documentType",
        "offenseType",
        "SECURITY_SIGNAL_ID",
        "detection_id",
        "detection_name",
        "time",
        "id",
        "data",
        "alert",
        "action",
        "severity",
        "source",
        "name",
        "payload",
        "version",
        "zen",
        "hook_id",
    ];
    const WORDS: &[&str] = &[
        "",
        "push",
        "OFFENSE",
        "EVENT",
        "Incident",
        "hello world",
        "Hello, World",
        "webhooktest",
        "test",
        "1",
        "critical",
        "{{ x }}",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |bound: usize| {
        // xorshift64*: enough variety, the same every run.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % bound
    };
    fn value(next: &mut dyn FnMut(usize) -> usize, depth: usize) -> Value {
        match next(if depth > 1 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => Value::Bool(next(2) == 0),
            2 => Value::from(next(1000) as i64 - 500),
            3 | 4 => Value::from(WORDS[next(WORDS.len())]),
            5 => Value::Array((0..next(3)).map(|_| value(next, depth + 1)).collect()),
            _ => object(next, depth + 1),
        }
    }
    fn object(next: &mut dyn FnMut(usize) -> usize, depth: usize) -> Value {
        let mut members = serde_json::Map::new();
        for _ in 0..next(5) + usize::from(depth == 0) {
            members.insert(KEYS[next(KEYS.len())].to_string(), value(next, depth));
        }
        Value::Object(members)
    }
    (0..count).map(|_| object(&mut next, 0)).collect()
}

/// The documented connectivity tests of the vendors, which are dropped.
fn connectivity_tests() -> Vec<Value> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    [
        "datatheorem/hello-world.json",
        "cii/webhook-test.json",
        "queryai/test-message.json",
        "github/ping/payload.json",
        "github/ping/with-organization.payload.json",
    ]
    .iter()
    .map(|file| {
        serde_json::from_str(&std::fs::read_to_string(fixtures.join(file)).unwrap()).unwrap()
    })
    .collect()
}

fn none_dropped_by_mistake(target: &str) {
    let mixed = load(&format!("mixed-{target}.xf"));
    for test in connectivity_tests() {
        assert_eq!(
            apply(&mixed, test.clone()).unwrap(),
            Vec::<Value>::new(),
            "{test}"
        );
    }
    let payloads: Vec<Value> = near_misses()
        .into_iter()
        .chain(foreign_payloads(5000))
        .collect();
    let (mut emitted, mut unknown, mut refused_by_a_vendor) = (0, 0, 0);
    for payload in &payloads {
        match apply(&mixed, payload.clone()) {
            Ok(records) if records.is_empty() => {
                panic!(
                    "mixed-{target}.xf dropped a payload that is no connectivity test: {payload}"
                )
            }
            Ok(_) => emitted += 1,
            Err(error) if error.reason.contains("not a payload of a vendor xf knows") => {
                unknown += 1
            }
            Err(_) => refused_by_a_vendor += 1,
        }
    }
    // Every payload is accounted for, and the generator reached the vendors'
    // own transforms (their schemas refuse it), not only the chain's end.
    assert_eq!(emitted + unknown + refused_by_a_vendor, payloads.len());
    assert!(
        unknown > 0 && refused_by_a_vendor > 100,
        "emitted {emitted}, unknown {unknown}, refused by a vendor's transform {refused_by_a_vendor}"
    );
}

#[test]
fn mixed_splunk_drops_only_connectivity_tests() {
    none_dropped_by_mistake("splunk");
}

#[test]
fn mixed_ocsf_drops_only_connectivity_tests() {
    none_dropped_by_mistake("ocsf");
}
