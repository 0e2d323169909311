//! The shipped JSON Schemas against the vendors' documented payloads: every
//! documented payload is valid, and mutated ones are invalid at the right
//! JSON pointer.

use serde_json::{json, Value};
use xf::schema::Schema;

fn fixture(path: &str) -> Value {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&full).unwrap()).unwrap()
}

fn schema(name: &str) -> Schema {
    Schema::load(name, None)
        .ok()
        .unwrap_or_else(|| panic!("schema {name} loads"))
}

/// Each documented payload, with the schema it is an instance of. A file
/// holding an array is a batch: each item is checked.
const DOCUMENTED: &[(&str, &str)] = &[
    ("armor/detection-only.json", "armor-detection"),
    ("armor/events-only.json", "armor-event"),
    ("armor/transform-config.json", "armor-transform-config"),
    (
        "armor/notification-config.json",
        "armor-notification-config",
    ),
    ("datadog/signal-unexpected-ip.json", "datadog-signal"),
    ("datadog/signal-card-fraud.json", "datadog-signal"),
    ("queryai/detection-matched.json", "queryai-detection"),
    ("queryai/detection-error.json", "queryai-detection"),
    ("queryai/test-message.json", "queryai-test"),
    ("cii/failed-check.json", "cii-event"),
    ("cii/webhook-test.json", "cii-event"),
    (
        "datatheorem/policy-violation-resolved.json",
        "datatheorem-event",
    ),
    ("datatheorem/hello-world.json", "datatheorem-event"),
];

#[test]
fn every_documented_payload_is_valid() {
    for (file, name) in DOCUMENTED {
        let schema = schema(name);
        let items = match fixture(file) {
            Value::Array(items) => items,
            single => vec![single],
        };
        for item in items {
            assert_eq!(schema.check(&item), None, "{file} against {name}");
        }
    }
}

#[test]
fn armor_detection_with_events_has_one_of_each() {
    let items = fixture("armor/detection-with-events.json");
    let (detection, event) = (schema("armor-detection"), schema("armor-event"));
    for item in items.as_array().unwrap() {
        assert!(detection.is_valid(item) != event.is_valid(item), "{item}");
    }
}

#[test]
fn the_hec_events_armor_documents_are_valid_hec_events() {
    let hec = schema("splunk-hec-event");
    for file in [
        "armor/expected-splunk-detection-with-events.json",
        "armor/expected-splunk-events-only.json",
    ] {
        for event in fixture(file).as_array().unwrap() {
            assert_eq!(hec.check(event), None, "{file}");
        }
    }
}

/// Applies `change` to a copy of a payload; the schema must then report a
/// violation at `pointer`.
fn assert_invalid_at(file: &str, name: &str, pointer: &str, change: impl FnOnce(&mut Value)) {
    let mut payload = fixture(file);
    if let Value::Array(items) = payload {
        payload = items.into_iter().next().unwrap();
    }
    change(&mut payload);
    let violations = schema(name).violations(&payload);
    assert!(
        violations.iter().any(|v| v.pointer == pointer),
        "{file} against {name}: expected a violation at {pointer:?}, got {violations:?}"
    );
}

fn remove(pointer: &str) -> impl FnOnce(&mut Value) + '_ {
    move |payload| {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        payload
            .pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .shift_remove(key);
    }
}

fn set(pointer: &str, value: Value) -> impl FnOnce(&mut Value) + '_ {
    move |payload| *payload.pointer_mut(pointer).unwrap() = value
}

#[test]
fn a_missing_required_field_is_reported_on_its_parent() {
    assert_invalid_at(
        "armor/detection-only.json",
        "armor-detection",
        "",
        remove("/offenseId"),
    );
    assert_invalid_at(
        "armor/events-only.json",
        "armor-event",
        "",
        remove("/eventId"),
    );
    assert_invalid_at(
        "datadog/signal-card-fraud.json",
        "datadog-signal",
        "",
        remove("/SECURITY_SIGNAL_ID"),
    );
    assert_invalid_at(
        "queryai/detection-error.json",
        "queryai-detection",
        "",
        remove("/outcome"),
    );
    assert_invalid_at(
        "cii/failed-check.json",
        "cii-event",
        "/detail",
        remove("/detail/checkId"),
    );
    assert_invalid_at(
        "datatheorem/policy-violation-resolved.json",
        "datatheorem-event",
        "",
        remove("/time"),
    );
    assert_invalid_at(
        "armor/transform-config.json",
        "armor-transform-config",
        "",
        remove("/format"),
    );
}

#[test]
fn a_severity_outside_the_vendors_enum_is_reported_where_it_is() {
    assert_invalid_at(
        "armor/detection-only.json",
        "armor-detection",
        "/severity",
        set("/severity", json!(11)),
    );
    assert_invalid_at(
        "datadog/signal-card-fraud.json",
        "datadog-signal",
        "/SECURITY_SIGNAL_SEVERITY",
        |p| {
            p["SECURITY_SIGNAL_SEVERITY"] = json!("urgent");
        },
    );
    assert_invalid_at(
        "queryai/detection-matched.json",
        "queryai-detection",
        "/severity",
        set("/severity", json!("SEVERE")),
    );
    assert_invalid_at(
        "cii/failed-check.json",
        "cii-event",
        "/detail/severity",
        set("/detail/severity", json!("LOW")),
    );
    assert_invalid_at(
        "datatheorem/policy-violation-resolved.json",
        "datatheorem-event",
        "/event/data/relevance",
        set("/event/data/relevance", json!("MEH")),
    );
}

#[test]
fn a_wrong_type_is_reported_where_it_is() {
    assert_invalid_at(
        "armor/events-only.json",
        "armor-event",
        "/startTime",
        set("/startTime", json!("1590673504")),
    );
    assert_invalid_at(
        "armor/events-only.json",
        "armor-event",
        "/destPort",
        set("/destPort", json!(70000)),
    );
    assert_invalid_at(
        "datadog/signal-unexpected-ip.json",
        "datadog-signal",
        "/SECURITY_SIGNAL_ATTRIBUTES/network/client/ip/0",
        set(
            "/SECURITY_SIGNAL_ATTRIBUTES/network/client/ip/0",
            json!(1234),
        ),
    );
    assert_invalid_at(
        "queryai/detection-error.json",
        "queryai-detection",
        "/errors/0",
        remove("/errors/0/message"),
    );
    assert_invalid_at(
        "cii/failed-check.json",
        "cii-event",
        "/time",
        set("/time", json!("yesterday")),
    );
    assert_invalid_at(
        "armor/transform-config.json",
        "armor-transform-config",
        "/transform/0/type",
        set("/transform/0/type", json!("add_static_tag")),
    );
    assert_invalid_at(
        "armor/notification-config.json",
        "armor-notification-config",
        "/event_type/0",
        set("/event_type/0", json!("security_alert")),
    );
}

#[test]
fn an_error_outcome_needs_its_errors() {
    assert_invalid_at(
        "queryai/detection-error.json",
        "queryai-detection",
        "/errors",
        set("/errors", json!([])),
    );
    // A MATCHED outcome has none, and is valid.
    assert_eq!(
        schema("queryai-detection").check(&fixture("queryai/detection-matched.json")),
        None
    );
}

#[test]
fn hec_events_are_flat_with_a_numeric_time() {
    let hec = schema("splunk-hec-event");
    let good = json!({"time": 1590673504.5, "sourcetype": "x", "event": {"a": 1}, "fields": {"k": "v", "l": ["a", "b"]}});
    assert_eq!(hec.check(&good), None);
    let nested = json!({"event": {}, "fields": {"k": {"nested": true}}});
    assert!(hec
        .violations(&nested)
        .iter()
        .any(|v| v.pointer == "/fields/k"));
    let text_time = json!({"event": {}, "time": "2020-05-28T13:45:02Z"});
    assert!(hec
        .violations(&text_time)
        .iter()
        .any(|v| v.pointer == "/time"));
}

#[test]
fn an_ocsf_finding_needs_its_required_attributes() {
    let ocsf = schema("ocsf-detection-finding");
    let finding = json!({
        "activity_id": 1, "category_uid": 2, "class_uid": 2004, "type_uid": 200401,
        "severity_id": 4, "time": 1736935200000u64,
        "metadata": {"product": {"name": "Query.ai", "vendor_name": "Query.ai"}, "version": "1.3.0"},
        "finding_info": {"uid": "run-456", "title": "Suspicious Login Attempts"}
    });
    assert_eq!(ocsf.check(&finding), None);
    let mut wrong_class = finding.clone();
    wrong_class["class_uid"] = json!(2001);
    assert!(ocsf
        .violations(&wrong_class)
        .iter()
        .any(|v| v.pointer == "/class_uid"));
    let mut no_uid = finding.clone();
    no_uid["finding_info"]
        .as_object_mut()
        .unwrap()
        .shift_remove("uid");
    assert!(ocsf
        .violations(&no_uid)
        .iter()
        .any(|v| v.pointer == "/finding_info"));
}
