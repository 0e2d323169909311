//! Compact JSON text of a value, byte for byte what `serde_json::to_writer`
//! writes (the property test `written_as_serde_json_writes` holds it to
//! that), but faster where records spend their time: a string with nothing
//! to escape, which is nearly every one, is found so with one pass the
//! compiler vectorises and copied whole, where serde_json looks up every
//! byte in its escape table on the way.

use serde_json::Value;

/// Appends `value` as compact JSON.
pub fn value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // With `arbitrary_precision` a number is its text, and serde_json
        // writes that text.
        Value::Number(number) => out.extend_from_slice(number.as_str().as_bytes()),
        Value::String(text) => string(out, text),
        Value::Array(items) => {
            out.push(b'[');
            for (at, item) in items.iter().enumerate() {
                if at > 0 {
                    out.push(b',');
                }
                self::value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (at, (key, item)) in map.iter().enumerate() {
                if at > 0 {
                    out.push(b',');
                }
                string(out, key);
                out.push(b':');
                self::value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// Appends `text` as a JSON string, escaped as serde_json escapes: `"` and
/// `\` with a backslash, the control characters with a short escape where
/// JSON has one and `\u00xx` (lower-case hex) otherwise; everything else,
/// U+2028 and U+2029 included, as it is.
pub fn string(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if plain(bytes) {
        out.extend_from_slice(bytes);
    } else {
        let mut start = 0;
        for (at, &byte) in bytes.iter().enumerate() {
            if !needs_escape(byte) {
                continue;
            }
            out.extend_from_slice(&bytes[start..at]);
            match byte {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\x08' => out.extend_from_slice(b"\\b"),
                b'\x0c' => out.extend_from_slice(b"\\f"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                control => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(control >> 4)]);
                    out.push(HEX[usize::from(control & 0xf)]);
                }
            }
            start = at + 1;
        }
        out.extend_from_slice(&bytes[start..]);
    }
    out.push(b'"');
}

/// Whether no byte of `bytes` needs an escape: 16 at a time, each block
/// checked without an early exit so that it runs as vector code.
fn plain(bytes: &[u8]) -> bool {
    let mut blocks = bytes.chunks_exact(16);
    for block in &mut blocks {
        if block
            .iter()
            .fold(false, |any, &byte| any | needs_escape(byte))
        {
            return false;
        }
    }
    !blocks.remainder().iter().any(|&byte| needs_escape(byte))
}

fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_json() -> impl Strategy<Value = Value> {
        let text = "[\\u{0}-\\u{7f}é\u{2028}\u{2029}\u{1F600}\"\\\\]{0,12}";
        let number = prop_oneof![
            Just("0"),
            Just("-0"),
            Just("1E2"),
            Just("1e400"),
            Just("-2.5e-3"),
            Just("12345678901234567890123"),
        ]
        .prop_map(|text| serde_json::from_str::<Value>(text).unwrap());
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            number,
            text.prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((text, inner), 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]
        #[test]
        fn written_as_serde_json_writes(value in any_json()) {
            let mut ours = Vec::new();
            super::value(&mut ours, &value);
            prop_assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&value).unwrap());
        }
    }

    #[test]
    fn every_byte_below_0x80_is_escaped_as_serde_json_escapes_it() {
        for byte in 0u8..0x80 {
            let text = format!("a{}b", byte as char);
            let mut ours = Vec::new();
            string(&mut ours, &text);
            assert_eq!(ours, serde_json::to_vec(&text).unwrap(), "byte {byte:#x}");
        }
    }
}
