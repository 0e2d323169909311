//! The `.xf` loader: grammar, compiler and templates, on any text. Loading
//! either succeeds or gives a diagnostic that renders; it never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match xf::Transform::from_source("fuzz.xf", text, None) {
        Ok(transform) => {
            // A transform that loads must also run on a record without panicking.
            let _ = transform.apply(serde_json::json!({"a": {"b": [1, "x", null]}, "id": "1"}));
        }
        Err(error) => {
            let report = error.render();
            assert!(report.contains("error"), "{report}");
        }
    }
});
