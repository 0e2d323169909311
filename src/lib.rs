//! xf reshapes security webhook payloads with a small declarative language.
//!
//! A transform (a `.xf` file) goes through the pipeline that the modules
//! mirror, once when it loads and then per record:
//!
//! ```text
//!  .xf text ──syntax──▶ statements ──compile──▶ Plan          (once)
//!  input ──read──▶ frames ──serde_json──▶ record ──apply──▶ output ──write──▶ NDJSON
//! ```
//!
//! - [`syntax`] parses the text (pest grammar in `grammar/xf.pest`);
//! - [`compile`] checks names and builds templates, patterns and lookups;
//! - [`apply`] runs the plan on one record;
//! - [`read`] and [`write`] frame the input stream and write NDJSON or HEC;
//! - [`stream`] drives all of it for a whole input, in constant memory;
//! - [`import`] turns an Armor JSON transform config into `.xf` text.
//!
//! The library entry point is [`Transform`]:
//!
//! ```
//! use serde_json::json;
//! use xf::Transform;
//!
//! let transform = Transform::from_source(
//!     "example.xf",
//!     r#"
//! format splunk
//! label customer = "Cardify"
//! tag add summary = "{{ severity }}: {{ description }}"
//! drop when offenseStatus == "CLOSED"
//! hec index = "security"
//! "#,
//!     None,
//! )?;
//!
//! let out = transform.apply(json!({
//!     "severity": 3,
//!     "description": "Task Scheduler Entries Modified",
//!     "offenseStatus": "OPEN",
//!     "startTime": 1590673764
//! }))?;
//! assert_eq!(out, vec![json!({
//!     "time": 1590673764,
//!     "sourcetype": "_json",
//!     "index": "security",
//!     "event": {
//!         "severity": 3,
//!         "description": "Task Scheduler Entries Modified",
//!         "offenseStatus": "OPEN",
//!         "startTime": 1590673764,
//!         "customer": "Cardify",
//!         "summary": "3: Task Scheduler Entries Modified"
//!     }
//! })]);
//!
//! // A closed offense is dropped: no output record.
//! assert!(transform.apply(json!({"offenseStatus": "CLOSED"}))?.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod apply;
pub mod compile;
pub mod diagnostic;
pub mod files;
pub mod import;
pub mod limits;
mod number;
pub mod read;
pub mod schema;
#[cfg(feature = "serve")]
pub mod serve;
pub mod splunk;
pub mod stream;
pub mod syntax;
mod transform;
pub mod value;
pub mod write;

pub use apply::RecordError;
pub use limits::Limits;
pub use transform::{LoadError, LoadOptions, Transform};
