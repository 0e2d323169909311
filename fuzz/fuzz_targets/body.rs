//! `xf serve`'s request bodies: any bytes, plain or declared gzip, become
//! records or a refusal with a status and a JSON error; never a panic, and
//! never more decoded than the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xf::serve::receive::body::{decode, records, BodyLimits};

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
    match records(body, &limits) {
        Ok(records) => assert!(records.len() <= limits.max_records),
        Err(refusal) => {
            assert!((400..500).contains(&refusal.status()));
            let _ = refusal.body().to_string();
        }
    }
});
