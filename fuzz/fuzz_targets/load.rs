//! The `.xf` loader: grammar, compiler and templates, on any text. Loading
//! either succeeds or gives a diagnostic that renders; it never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Small limits, so that what loads also runs fast on its records.
    let limits = xf::Limits {
        template_fuel: 50_000,
        template_output: 64 * 1024,
        statements: 20_000,
        record_millis: 10_000,
        built_bytes: 8 << 20,
        outputs: 1000,
    };
    match xf::Transform::from_source_with(
        "fuzz.xf",
        text,
        None,
        &xf::LoadOptions {
            limits,
            ..Default::default()
        },
    ) {
        Ok(transform) => {
            // A transform that loads must also run on a record without panicking.
            for record in [
                serde_json::json!({"a": {"b": [1, "x", null]}, "id": "1"}),
                serde_json::json!({"items": [1, 2, 3], "n": 7, "text": "a\nb", "a": [[1], {"b": 2}]}),
            ] {
                let _ = transform.apply(record);
            }
        }
        Err(error) => {
            let report = error.render();
            assert!(report.contains("error"), "{report}");
        }
    }
});
