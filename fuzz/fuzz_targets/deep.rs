//! Deep transforms: blocks, loops, parentheses, arrays and objects nested to
//! any depth the bytes ask for, around statements that build values. Loading
//! gives a transform or a diagnostic (E0004 past the limit), and what loads
//! runs on records that the rest of the bytes make, without a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;

fn transform(shape: &[u8]) -> String {
    let mut text = String::new();
    let mut closers = Vec::new();
    for (i, byte) in shape.iter().enumerate() {
        match byte % 8 {
            0 => {
                text.push_str("when a exists {\n");
                closers.push("}\n".to_string());
            }
            1 => {
                text.push_str(&format!("for x{i} in items {{\n"));
                closers.push("}\n".to_string());
            }
            2 => {
                text.push_str("when (");
                closers.push(") exists {\nlabel p = 1\n}\n".to_string());
            }
            3 => {
                text.push_str("set v = [");
                closers.push("1]\n".to_string());
            }
            4 => {
                text.push_str("set o = {\"k\": ");
                closers.push("1}\n".to_string());
            }
            5 => text.push_str("nest w\n"),
            6 => text.push_str("append list = w\n"),
            _ => {
                if let Some(closer) = closers.pop() {
                    // A paren opened in a condition needs an operand first.
                    if closer.starts_with(')') {
                        text.push('a');
                    }
                    text.push_str(&closer);
                }
            }
        }
    }
    while let Some(closer) = closers.pop() {
        if closer.starts_with(')') {
            text.push('a');
        }
        text.push_str(&closer);
    }
    text
}

fuzz_target!(|data: &[u8]| {
    let Some((&length, rest)) = data.split_first() else {
        return;
    };
    // The first byte says how many of the rest shape the transform (repeated,
    // so that a short input can still nest past the limit).
    let shape: Vec<u8> = rest
        .iter()
        .copied()
        .cycle()
        .take(if rest.is_empty() {
            0
        } else {
            usize::from(length) * 2
        })
        .collect();
    let text = transform(&shape);
    let limits = xf::Limits {
        template_fuel: 50_000,
        template_output: 64 * 1024,
        statements: 20_000,
        record_millis: 10_000,
        built_bytes: 8 << 20,
        outputs: 1000,
    };
    match xf::Transform::from_source_with(
        "deep.xf",
        &text,
        None,
        &xf::LoadOptions {
            limits,
            ..Default::default()
        },
    ) {
        Ok(transform) => {
            let items: Vec<u32> = rest.iter().map(|b| u32::from(*b)).collect();
            for record in [
                serde_json::json!({"a": 1, "items": items}),
                serde_json::json!({"items": [[1], {"a": [2]}], "a": null}),
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
