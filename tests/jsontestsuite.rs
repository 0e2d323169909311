//! JSONTestSuite (tests/jsontestsuite/, MIT, by Nicolas Seriot) through the
//! stream reader. Each file is followed by a sentinel record, which must always
//! come out: a bad value never costs a later record.
//!
//! - `y_` files must be read without a "malformed JSON" error (a value that is
//!   not an object is still a record error, as for any input);
//! - `n_` files must be refused ("malformed JSON", or the depth limit's error
//!   for the two that are also nested past it) — unless the file is a
//!   valid *sequence* of JSON values (`[][]`, `2 3`), which a multi-value
//!   reader such as xf accepts by design (as it skips a leading byte order
//!   mark); serde_json's own stream reader decides which those are;
//! - `i_` files (implementation-defined): no panic, and the sentinel survives.
//!   xf keeps numbers verbatim, rejects invalid UTF-8 and lone surrogates,
//!   and refuses nesting deeper than 127 levels with the depth limit's error.

use std::fs;
use std::path::Path;

use xf::stream::{Options, Stream};
use xf::Transform;

const SENTINEL: &str = "{\"sentinel\":true}";

fn run(transform: &Transform, input: &[u8]) -> (String, Vec<String>) {
    let mut output = Vec::new();
    let mut errors = Vec::new();
    let mut stream = Stream::new(
        transform,
        &mut output,
        None::<Vec<u8>>,
        |e| errors.push(e.to_string()),
        Options::default(),
    );
    stream.run_here("input", input).unwrap();
    let stats = stream.stats;
    drop(stream);
    assert_eq!(stats.read, stats.written + stats.dropped + stats.failed);
    (String::from_utf8(output).unwrap(), errors)
}

/// Whether serde_json reads the whole text as a sequence of JSON values,
/// after the UTF-8 byte order mark that xf skips at the start of an input.
fn is_value_sequence(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    serde_json::Deserializer::from_slice(bytes)
        .into_iter::<serde_json::Value>()
        .all(|value| value.is_ok())
}

#[test]
fn jsontestsuite_parsing_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jsontestsuite/test_parsing");
    let transform = Transform::from_source("t.xf", "", None).unwrap();
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() > 300);
    let mut problems = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = fs::read(path).unwrap();
        let mut input = bytes.clone();
        input.extend_from_slice(format!("\n{SENTINEL}\n").as_bytes());
        let (output, errors) = run(&transform, &input);
        if !output.ends_with(&format!("{SENTINEL}\n")) {
            problems.push(format!("{name}: the sentinel record after it was lost"));
        }
        let malformed = errors.iter().any(|e| e.contains("malformed JSON"));
        // Past serde_json's depth limit the error says so instead: the value
        // is refused either way (both such n_ cases are also unclosed).
        let too_deep = errors.iter().any(|e| e.contains("levels deep, xf's limit"));
        if name.starts_with("y_") && malformed {
            problems.push(format!("{name}: valid JSON reported malformed: {errors:?}"));
        }
        if name.starts_with("n_") {
            let sequence = is_value_sequence(&bytes);
            if sequence && malformed {
                problems.push(format!(
                    "{name}: a valid sequence of values reported malformed: {errors:?}"
                ));
            }
            if !sequence && !malformed && !too_deep {
                problems.push(format!("{name}: invalid JSON accepted, output {output:?}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
