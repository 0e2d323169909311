//! Stage 1, parse: `.xf` source text → syntax tree ([`ast`]).
//!
//! The pest grammar lives in `grammar/xf.pest`; the derived parser stays private
//! to this module. A syntax error becomes one [`Diagnostic`](crate::diagnostic::Diagnostic) whose message says
//! what was expected in words a transform author knows.

pub mod ast;
pub mod format;
mod parser;
pub mod pipeline;

pub use parser::{parse, STATEMENT_KEYWORDS};
