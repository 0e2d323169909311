//! `xf serve`'s request bodies: any bytes, plain or declared gzip, become
//! records or a refusal with a status and a JSON error; never a panic, and
//! never more decoded than the limit. Read with a set of fields seen (the
//! others kept as their bytes), a body gives exactly what reading every
//! field gives: the same refusal, or the same records, whose seen fields
//! hold the same values, written back to the same bytes, with the same
//! dead letters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use xf::serve::receive::body::{decode, records, BodyLimits, Received};
use xf::value::untouched::FieldSet;

/// Field sets a transform may see: a few common names, and none at all.
const SEEN: [&[&str]; 2] = [&["a", "b", "startTime", "k"], &[]];

fuzz_target!(|data: &[u8]| {
    let limits = BodyLimits {
        max_body: 1 << 16,
        max_decoded: 1 << 16,
        max_record: 1 << 12,
        max_records: 64,
    };
    // The first byte says whether the rest is sent as gzip.
    let Some((first, body)) = data.split_first() else {
        return;
    };
    let encoding = (first & 1 == 1).then_some("gzip");
    let decoded = match decode(encoding, body, &limits) {
        Ok(decoded) => decoded,
        Err(refusal) => {
            assert!((400..500).contains(&refusal.status()));
            let _ = refusal.body().to_string();
            return;
        }
    };
    let body = decoded.as_deref().unwrap_or(body);
    assert!(body.len() <= limits.max_decoded.max(data.len()));
    let whole = records(body, &limits, None);
    match &whole {
        Ok(records) => {
            assert!(records.len() <= limits.max_records);
            for record in records {
                assert!(record.kept().is_none());
                if record.from_batch() {
                    // An item's dead letter is its value written, as it always was.
                    assert_eq!(record.letter(), serde_json::to_vec(&record.record).unwrap());
                }
            }
        }
        Err(refusal) => {
            assert!((400..500).contains(&refusal.status()));
            let _ = refusal.body().to_string();
        }
    }
    for names in SEEN {
        let seen: FieldSet = names.iter().map(|name| name.to_string()).collect();
        let partial = records(body, &limits, Some(&seen));
        match (&whole, &partial) {
            (Ok(whole), Ok(partial)) => {
                assert_eq!(whole.len(), partial.len());
                for (whole, partial) in whole.iter().zip(partial) {
                    same_record(whole, partial, &seen);
                }
            }
            (Err(whole), Err(partial)) => assert_eq!(whole, partial),
            _ => panic!(
                "whole: {:?}, with kept fields: {:?}",
                whole.as_ref().map(Vec::len),
                partial.as_ref().map(Vec::len)
            ),
        }
    }
});

/// `partial` (read with `seen`) is `whole` as far as `seen` goes, and
/// writes and dead-letters as it does.
fn same_record(whole: &Received, partial: &Received, seen: &FieldSet) {
    assert_eq!(whole.from_batch(), partial.from_batch());
    assert_eq!(whole.letter(), partial.letter());
    let mut written = Vec::new();
    match partial.kept() {
        Some(kept) => xf::write::ndjson_line_untouched(&mut written, &partial.record, &kept, false),
        None => xf::write::ndjson_line(&mut written, &partial.record),
    }
    let mut expected = Vec::new();
    xf::write::ndjson_line(&mut expected, &whole.record);
    assert_eq!(
        String::from_utf8_lossy(&written),
        String::from_utf8_lossy(&expected)
    );
    if let (Value::Object(whole), Value::Object(partial)) = (&whole.record, &partial.record) {
        for name in seen {
            assert_eq!(whole.get(name), partial.get(name), "{name}");
        }
    }
}
