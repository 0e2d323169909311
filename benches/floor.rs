//! The benchmark's floor: the work of `transforms/armor-splunk.xf`, hand-coded
//! in Rust over serde_json (with the same features as xf: key order kept,
//! numbers verbatim). It reads NDJSON on stdin and writes HEC events on stdout.
//! xf is measured against this; see `benches/bench.py`.

use std::collections::HashMap;
use std::io::{self, BufRead, BufWriter, Write};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{Map, Value};

const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn tags() -> HashMap<String, (String, String)> {
    let mut tags = HashMap::new();
    let text = include_str!("../transforms/armor-tags.csv");
    for line in text.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        tags.insert(
            cells[0].to_string(),
            (cells[1].to_string(), cells[2].to_string()),
        );
    }
    tags
}

fn is_subscribed(record: &Value) -> bool {
    match record.get("documentType").and_then(Value::as_str) {
        Some(t) if t.starts_with("EVENT_") => true,
        Some(_) if record.get("offenseType").and_then(Value::as_str) == Some("Incident") => true,
        Some(t) => t.starts_with("OFFENSE_"),
        None => false,
    }
}

fn transform(mut record: Value, tags: &HashMap<String, (String, String)>) -> Option<Value> {
    if !is_subscribed(&record) {
        return None;
    }
    let key = match record.get("accountId") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let (index, provider_type) = tags.get(&key).cloned().unwrap_or_default();
    let map = record.as_object_mut()?;
    map.insert("idx".into(), "Alpha".into());
    map.insert("provider_id".into(), "Lotlux".into());
    map.insert("customer_id".into(), "Cardify".into());
    map.insert("account_id".into(), "Home".into());
    map.insert("index".into(), index.into());
    let event = map
        .entry("event")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(event) = event.as_object_mut() {
        event.insert("provider_id".into(), "Lotlux".into());
        event.insert("provider_type".into(), provider_type.into());
    }
    let link = match map.get("eventId") {
        Some(Value::String(id)) => Some(id.clone()),
        Some(v @ Value::Number(_)) => Some(v.to_string()),
        _ => None,
    };
    if let Some(id) = link {
        let kql = format!(
            "eventId:\"{}\"",
            id.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let rison = kql.replace('!', "!!").replace('\'', "!'");
        let url = format!(
            "https://kibana.example.com/app/discover#/?_a=(query:(language:kuery,query:'{}'))",
            utf8_percent_encode(&rison, COMPONENT)
        );
        map.insert("link_event_kibana".into(), url.into());
    }
    map.shift_remove("classificationTag");
    let time = map.get("startTime").cloned();
    let mut envelope = Map::new();
    if let Some(time) = time {
        envelope.insert("time".into(), time);
    }
    envelope.insert("sourcetype".into(), "_json".into());
    envelope.insert("event".into(), record);
    Some(Value::Object(envelope))
}

fn main() -> io::Result<()> {
    let tags = tags();
    let stdin = io::stdin().lock();
    let mut out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    for line in stdin.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let records = match serde_json::from_str::<Value>(&line)? {
            Value::Array(items) => items,
            other => vec![other],
        };
        for record in records {
            if let Some(event) = transform(record, &tags) {
                serde_json::to_writer(&mut out, &event)?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()
}
