//! `xf fmt` on any text: it never panics, and on text that parses, its
//! output parses to the same statements and is its own layout
//! (`format(format(x)) == format(x)`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xf::syntax::ast::without_spans;
use xf::syntax::format::{format, FormatError};

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
});
