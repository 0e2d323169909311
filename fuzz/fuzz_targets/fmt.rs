//! `xf fmt` on any text, as a transform and as a pipeline file: it never
//! panics, and on text that parses, its output parses to the same statements
//! (settings) and is its own layout (`format(format(x)) == format(x)`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xf::syntax::ast::without_spans;
use xf::syntax::format::{format, format_pipeline, FormatError};
use xf::syntax::pipeline::parse_pipeline;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match format(text) {
        Ok(formatted) => {
            let before = without_spans(xf::syntax::parse(text).expect("formatted, so it parses"));
            let after = xf::syntax::parse(&formatted).expect("the formatted text parses");
            assert_eq!(without_spans(after), before, "other statements");
            assert_eq!(format(&formatted).expect("formats again"), formatted, "not idempotent");
        }
        Err(FormatError::Syntax(diagnostics)) => {
            assert!(xf::syntax::parse(text).is_err());
            assert!(!diagnostics.is_empty());
        }
        Err(FormatError::Internal(what)) => panic!("internal error on parsable text: {what}"),
    }
    // The same text as a pipeline file (format_pipeline compares the settings itself).
    match format_pipeline(text) {
        Ok(formatted) => {
            assert_eq!(
                format_pipeline(&formatted).expect("formats again"),
                formatted,
                "not idempotent"
            );
        }
        Err(FormatError::Syntax(diagnostics)) => {
            assert!(parse_pipeline(text).is_err());
            assert!(!diagnostics.is_empty());
        }
        Err(FormatError::Internal(what)) => panic!("internal error on a parsable pipeline: {what}"),
    }
});
