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

/// GitHub's deliveries (`tests/fixtures/github/EVENT/ACTION.payload.json`),
/// each an instance of its event's schema: the event is the folder's name, as
/// GitHub names it in `X-GitHub-Event`.
fn github_fixtures() -> Vec<(String, &'static str, String)> {
    let root = format!("{}/tests/fixtures/github", env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for event in std::fs::read_dir(&root).unwrap() {
        let event = event.unwrap().path();
        if !event.is_dir() {
            continue;
        }
        let name = event.file_name().unwrap().to_str().unwrap().to_string();
        let schema = match name.as_str() {
            "code_scanning_alert" => "github-code-scanning-alert",
            "secret_scanning_alert" => "github-secret-scanning-alert",
            "secret_scanning_alert_location" => "github-secret-scanning-alert-location",
            "dependabot_alert" => "github-dependabot-alert",
            "repository_advisory" => "github-repository-advisory",
            "security_advisory" => "github-security-advisory",
            "ping" => "github-ping",
            other => panic!("tests/fixtures/github/{other}: no schema for this event"),
        };
        for file in std::fs::read_dir(&event).unwrap() {
            let file = file.unwrap().path();
            let relative =
                file.strip_prefix(format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR")));
            found.push((
                relative.unwrap().display().to_string(),
                schema,
                name.clone(),
            ));
        }
    }
    found.sort();
    found
}

#[test]
fn every_github_delivery_is_valid_against_its_events_schema_and_no_other() {
    let fixtures = github_fixtures();
    // Every event of issue 26 and the ping, each with at least one delivery.
    let events: std::collections::BTreeSet<&str> = fixtures.iter().map(|(_, s, _)| *s).collect();
    assert_eq!(events.len(), 7, "{events:?}");
    for (file, name, _) in &fixtures {
        let payload = fixture(file);
        assert_eq!(schema(name).check(&payload), None, "{file} against {name}");
        // A body sent under another event's name does not pass for it (the
        // transforms take the event from the header and validate by it).
        for (_, other, _) in &fixtures {
            if other != name {
                assert!(!schema(other).is_valid(&payload), "{file} passes {other}");
            }
        }
    }
}

#[test]
fn github_payloads_are_checked_where_their_transforms_read() {
    assert_invalid_at(
        "github/code_scanning_alert/created.payload.json",
        "github-code-scanning-alert",
        "/alert",
        remove("/alert/rule"),
    );
    assert_invalid_at(
        "github/code_scanning_alert/created.payload.json",
        "github-code-scanning-alert",
        "/alert/rule/security_severity_level",
        |p| p["alert"]["rule"]["security_severity_level"] = json!("severe"),
    );
    assert_invalid_at(
        "github/code_scanning_alert/created.payload.json",
        "github-code-scanning-alert",
        "/alert/created_at",
        set("/alert/created_at", json!("yesterday")),
    );
    assert_invalid_at(
        "github/dependabot_alert/created.payload.json",
        "github-dependabot-alert",
        "/alert/security_advisory/severity",
        set("/alert/security_advisory/severity", json!("moderate")),
    );
    assert_invalid_at(
        "github/secret_scanning_alert/reopened.payload.json",
        "github-secret-scanning-alert",
        "/action",
        set("/action", json!("closed")),
    );
    assert_invalid_at(
        "github/secret_scanning_alert_location/created.payload.json",
        "github-secret-scanning-alert-location",
        "",
        remove("/location"),
    );
    assert_invalid_at(
        "github/repository_advisory/published.payload.json",
        "github-repository-advisory",
        "/repository_advisory/ghsa_id",
        set("/repository_advisory/ghsa_id", json!("GHSA-0000")),
    );
    assert_invalid_at(
        "github/security_advisory/published.payload.json",
        "github-security-advisory",
        "/security_advisory/severity",
        set("/security_advisory/severity", json!("urgent")),
    );
    assert_invalid_at(
        "github/ping/payload.json",
        "github-ping",
        "/hook_id",
        set("/hook_id", json!("109948940")),
    );
}

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

// --- OCSF: the generated Detection Finding schema and the observables and profile checks ---

/// Each vendor's OCSF transform, with its fixtures and its generated corpus
/// (`tests/ocsf/`, see the README there), paths relative to `tests/`.
const OCSF_INPUTS: &[(&str, &[&str])] = &[
    (
        "armor",
        &[
            "fixtures/armor/detection-with-events.json",
            "fixtures/armor/detection-only.json",
            "fixtures/armor/events-only.json",
            "ocsf/armor.ndjson",
        ],
    ),
    (
        "cii",
        &[
            "fixtures/cii/failed-check.json",
            "fixtures/cii/webhook-test.json",
            "ocsf/cii.ndjson",
        ],
    ),
    (
        "datadog",
        &[
            "fixtures/datadog/signal-unexpected-ip.json",
            "fixtures/datadog/signal-card-fraud.json",
            "ocsf/datadog.ndjson",
        ],
    ),
    (
        "datatheorem",
        &[
            "fixtures/datatheorem/policy-violation-resolved.json",
            "fixtures/datatheorem/hello-world.json",
            "ocsf/datatheorem.ndjson",
        ],
    ),
    (
        "queryai",
        &[
            "fixtures/queryai/detection-matched.json",
            "fixtures/queryai/detection-error.json",
            "fixtures/queryai/test-message.json",
            "ocsf/queryai.ndjson",
        ],
    ),
];

/// Streams a file through a transform: the records written, and the record errors.
fn run(transform: &xf::Transform, input: &str) -> (Vec<Value>, String) {
    let path = format!("{}/tests/{input}", env!("CARGO_MANIFEST_DIR"));
    let (mut output, mut errors) = (Vec::new(), String::new());
    let mut stream = xf::stream::Stream::new(
        transform,
        &mut output,
        None::<Vec<u8>>,
        |e| errors.push_str(&format!("{e}\n")),
        xf::stream::Options::default(),
    );
    stream
        .run(input, std::fs::File::open(&path).unwrap())
        .unwrap();
    drop(stream);
    let records = String::from_utf8(output)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (records, errors)
}

#[test]
fn every_ocsf_transform_writes_valid_findings_from_fixtures_and_corpus() {
    let ocsf = schema("ocsf-detection-finding");
    for (vendor, inputs) in OCSF_INPUTS {
        let file = format!("{}/transforms/{vendor}-ocsf.xf", env!("CARGO_MANIFEST_DIR"));
        let transform =
            xf::Transform::from_path(&file).unwrap_or_else(|e| panic!("{}", e.render()));
        let mut findings = 0;
        for input in *inputs {
            // The transform validates its own output: an invalid finding would be a record error.
            let (records, errors) = run(&transform, input);
            assert_eq!(errors, "", "{vendor}-ocsf.xf over {input}");
            for (line, record) in records.iter().enumerate() {
                let violations = ocsf.violations(record);
                assert!(
                    violations.is_empty(),
                    "{vendor}-ocsf.xf over {input}, output line {}: {violations:?}",
                    line + 1
                );
            }
            findings += records.len();
        }
        assert!(findings >= 40, "{vendor}: only {findings} findings");
    }
}

#[test]
fn the_ocsf_schemas_are_what_the_generator_writes() {
    let root = env!("CARGO_MANIFEST_DIR");
    let script = format!("{root}/scripts/ocsf_schema.py");
    for (class, file) in [
        ("detection_finding", "ocsf-detection-finding"),
        ("vulnerability_finding", "ocsf-vulnerability-finding"),
    ] {
        let output = match std::process::Command::new("python3")
            .arg(&script)
            .args(["--class", class])
            .output()
        {
            Ok(output) => output,
            Err(error) => {
                eprintln!("skipped: python3 cannot run ({error}), so {script} was not compared");
                return;
            }
        };
        assert!(
            output.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let committed =
            std::fs::read_to_string(format!("{root}/schemas/{file}.schema.json")).unwrap();
        assert!(
            String::from_utf8(output.stdout).unwrap() == committed,
            "schemas/{file}.schema.json is not what the generator writes; rerun \
             `python3 scripts/ocsf_schema.py --class {class} > schemas/{file}.schema.json`"
        );
    }
}

#[test]
fn an_ocsf_vulnerability_finding_needs_its_vulnerabilities() {
    let ocsf = schema("ocsf-vulnerability-finding");
    let finding = json!({
        "activity_id": 1, "activity_name": "Create", "category_uid": 2, "category_name": "Findings",
        "class_uid": 2002, "class_name": "Vulnerability Finding",
        "type_uid": 200201, "type_name": "Vulnerability Finding: Create",
        "severity_id": 3, "severity": "Medium", "time": 1687615032000u64,
        "metadata": {"product": {"name": "Dependabot", "vendor_name": "GitHub"}, "version": "1.3.0"},
        "finding_info": {"uid": "o/r/dependabot/20", "title": "semver vulnerable to ReDoS"},
        "vulnerabilities": [{"cve": {"uid": "CVE-2022-25883"}, "affected_packages": [{"name": "semver", "version": "< 7.5.2"}]}],
        "observables": [{"name": "vulnerabilities[].cve.uid", "type_id": 18, "type": "CVE Object: uid", "value": "CVE-2022-25883"}]
    });
    assert_eq!(ocsf.check(&finding), None);
    let invalid_at = |pointer: &str, change: &dyn Fn(&mut Value)| {
        let mut record = finding.clone();
        change(&mut record);
        let violations = ocsf.violations(&record);
        assert!(
            violations.iter().any(|v| v.pointer == pointer),
            "expected a violation at {pointer:?}, got {violations:?}"
        );
    };
    invalid_at("", &|f| {
        f.as_object_mut().unwrap().shift_remove("vulnerabilities");
    });
    // A vulnerability names a CVE or a CWE; a package, its version.
    invalid_at("/vulnerabilities/0", &|f| {
        f["vulnerabilities"][0] = json!({"title": "x"})
    });
    invalid_at("/vulnerabilities/0/affected_packages/0", &|f| {
        f["vulnerabilities"][0]["affected_packages"][0] = json!({"name": "semver"})
    });
    invalid_at("/type_uid", &|f| f["type_uid"] = json!(200401));
    // A Detection Finding's attribute is no Vulnerability Finding's.
    invalid_at("", &|f| {
        f["evidences"] = json!([{"file": {"name": "a", "type_id": 1}}])
    });
    invalid_at("/observables/0", &|f| {
        f["observables"][0]["value"] = json!("CVE-1999-0001")
    });
}

/// GitHub's deliveries through `github-ocsf.xf`, each with the request
/// `xf serve` would give it: every finding valid against its class's schema
/// (Detection Finding for code and secret scanning, Vulnerability Finding for
/// Dependabot and advisories), every ping dropped.
#[test]
fn the_github_ocsf_transform_writes_valid_findings_of_the_right_class() {
    let transform = xf::Transform::from_path(format!(
        "{}/transforms/github-ocsf.xf",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("{}", e.render()));
    let (detection, vulnerability) = (
        schema("ocsf-detection-finding"),
        schema("ocsf-vulnerability-finding"),
    );
    let mut classes = std::collections::BTreeMap::new();
    for (file, _, event) in github_fixtures() {
        let request = xf::apply::Request::new(
            [("X-GitHub-Event", event.as_bytes())],
            &xf::apply::RequestParts {
                source: Some("github"),
                received_at: Some(1_764_000_000_000),
                ..Default::default()
            },
        );
        let context = xf::apply::Context {
            request: Some(&request),
            ..Default::default()
        };
        let records = transform
            .apply_in(fixture(&file), &context)
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .into_records();
        if event == "ping" {
            assert!(records.is_empty(), "{file}: a ping is dropped");
            continue;
        }
        assert_eq!(records.len(), 1, "{file}");
        let finding = &records[0];
        let (class, schema) = match event.as_str() {
            "code_scanning_alert" | "secret_scanning_alert" | "secret_scanning_alert_location" => {
                (2004, &detection)
            }
            _ => (2002, &vulnerability),
        };
        assert_eq!(finding["class_uid"], class, "{file}");
        let violations = schema.violations(finding);
        assert!(violations.is_empty(), "{file}: {violations:?}");
        // The delivery stays whole under unmapped, and nothing of xf's own
        // (the shared reading, xf_github) is left in it.
        assert_eq!(
            finding["unmapped"],
            fixture(&file),
            "{file}: unmapped is the delivery"
        );
        *classes.entry(class).or_insert(0) += 1;
    }
    assert_eq!(classes.get(&2004), Some(&7), "{classes:?}");
    assert_eq!(classes.get(&2002), Some(&6), "{classes:?}");
}

/// A valid finding with evidence and observables of both kinds (a scalar, an object).
fn finding() -> Value {
    json!({
        "activity_id": 1, "activity_name": "Create", "category_uid": 2, "category_name": "Findings",
        "class_uid": 2004, "class_name": "Detection Finding",
        "type_uid": 200401, "type_name": "Detection Finding: Create",
        "severity_id": 4, "severity": "High", "time": 1736935200000u64,
        "metadata": {"product": {"name": "Query.ai", "vendor_name": "Query.ai"}, "version": "1.3.0"},
        "finding_info": {"uid": "run-456", "title": "Suspicious Login Attempts"},
        "evidences": [{"src_endpoint": {"ip": "10.0.0.1"}}, {"user": {"name": "jane"}}],
        "observables": [
            {"name": "evidences[].src_endpoint.ip", "type_id": 2, "type": "IP Address", "value": "10.0.0.1"},
            {"name": "evidences[].user", "type_id": 21, "type": "User"}
        ],
        "unmapped": {"anything": {"goes": [1, {"ip": "10.0.0.1"}]}}
    })
}

/// `change` makes the valid [`finding`] invalid at `pointer`.
fn assert_finding_invalid_at(pointer: &str, change: impl FnOnce(&mut Value)) {
    let ocsf = schema("ocsf-detection-finding");
    let mut record = finding();
    change(&mut record);
    let violations = ocsf.violations(&record);
    assert!(
        violations.iter().any(|v| v.pointer == pointer),
        "expected a violation at {pointer:?} in {record}, got {violations:?}"
    );
    assert!(ocsf.check(&record).is_some());
}

#[test]
fn the_ocsf_schema_holds_the_full_class() {
    let ocsf = schema("ocsf-detection-finding");
    assert_eq!(ocsf.check(&finding()), None);
    // Attributes OCSF does not define, at the root and in an object; unmapped is open.
    assert_finding_invalid_at("", |f| f["vendor_field"] = json!(1));
    assert_finding_invalid_at("/finding_info", |f| f["finding_info"]["rule"] = json!("x"));
    // Required attributes at every level, and an object's at_least_one constraint.
    assert_finding_invalid_at("/finding_info", remove("/finding_info/title"));
    assert_finding_invalid_at("/metadata/product", remove("/metadata/product/vendor_name"));
    assert_finding_invalid_at("/evidences/0", set("/evidences/0", json!({})));
    // Enums, their sibling captions, type_uid = class_uid * 100 + activity_id.
    assert_finding_invalid_at("/severity_id", set("/severity_id", json!(7)));
    assert_finding_invalid_at("/severity", set("/severity", json!("Low")));
    assert_finding_invalid_at("/activity_name", set("/activity_name", json!("Update")));
    assert_finding_invalid_at("/type_uid", set("/type_uid", json!(200402)));
    // Data types.
    assert_finding_invalid_at(
        "/evidences/0/src_endpoint/ip",
        set("/evidences/0/src_endpoint/ip", json!("not an address")),
    );
    assert_finding_invalid_at("/time", set("/time", json!("2025-01-15T10:00:00Z")));
}

#[test]
fn profile_attributes_need_their_profile_declared() {
    let ocsf = schema("ocsf-detection-finding");
    let device = json!({"hostname": "web-01", "type_id": 1, "type": "Server"});
    assert_finding_invalid_at("/device", |f| f["device"] = device.clone());
    let mut declared = finding();
    declared["device"] = device;
    declared["metadata"]["profiles"] = json!(["host"]);
    assert_eq!(ocsf.check(&declared), None);
    // A declared profile's required attributes are required: security_control's action_id.
    assert_finding_invalid_at("", |f| {
        f["metadata"]["profiles"] = json!(["security_control"])
    });
    assert_finding_invalid_at("/metadata/profiles/0", |f| {
        f["metadata"]["profiles"] = json!(["no_such_profile"])
    });
    // Deeper down: in an array's items, and in an object inside another.
    assert_finding_invalid_at("/resources/1/region", |f| {
        f["resources"] = json!([{"uid": "r-0"}, {"uid": "r-1", "region": "eu-west-1"}])
    });
    assert_finding_invalid_at("/device/container", |f| {
        f["device"] = json!({"type_id": 1, "container": {"name": "c"}});
        f["metadata"]["profiles"] = json!(["host"]);
    });
}

#[test]
fn observables_name_an_attribute_the_record_holds() {
    let at = |index: usize, key: &'static str, value: Value| {
        move |f: &mut Value| f["observables"][index][key] = value
    };
    // No such attribute (a vendor's field name), or one inside the open unmapped object.
    assert_finding_invalid_at("/observables/0", at(0, "name", json!("sourceIp")));
    assert_finding_invalid_at("/observables/0", at(0, "name", json!("unmapped.anything")));
    // Array hops are written [] and nothing else is.
    assert_finding_invalid_at(
        "/observables/0",
        at(0, "name", json!("evidences.src_endpoint.ip")),
    );
    assert_finding_invalid_at(
        "/observables/0",
        at(0, "name", json!("evidences[].src_endpoint[].ip")),
    );
    // An attribute the class defines but the record does not hold.
    assert_finding_invalid_at(
        "/observables/0",
        at(0, "name", json!("evidences[].dst_endpoint.ip")),
    );
    // The type_id is the attribute's observable type; an attribute without one cannot be observed.
    assert_finding_invalid_at("/observables/0", |f| {
        f["observables"][0]["type_id"] = json!(1);
        f["observables"][0]["type"] = json!("Hostname");
    });
    assert_finding_invalid_at("/observables/0", |f| {
        f["observables"][0] = json!({"name": "finding_info.title", "type_id": 99, "value": "Suspicious Login Attempts"});
    });
    // The type is the type_id's caption.
    assert_finding_invalid_at("/observables/0/type", at(0, "type", json!("Hostname")));
    // The value is a value at that path; an object's observable has none.
    assert_finding_invalid_at("/observables/0", at(0, "value", json!("10.0.0.2")));
    assert_finding_invalid_at("/observables/1", at(1, "value", json!("jane")));
}
