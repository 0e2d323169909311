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
    Ok(match transform.apply_in(record, &context)? {
        xf::apply::Outcome::Emit(value) => vec![value],
        xf::apply::Outcome::Dropped => Vec::new(),
    })
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
