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
//! - [`apply`] runs the plan on one record (the run-time halves of templates,
//!   lookups and links live there), giving values or a typed [`RecordError`];
//! - [`read`](mod@read) and [`write`](mod@write) frame the input stream and encode the output
//!   values as NDJSON or a request body;
//! - [`stream`] drives all of it for a whole input, in constant memory;
//! - [`import`] turns an Armor JSON transform config into `.xf` text.
//!
//! The stages run one way: a stage imports only from the stages before it
//! (`compile` from `syntax`, `apply` from `compile`, never back), and from
//! leaf modules that import from no stage: [`value`] (record paths, kinds,
//! times and time formats, URL components, how values compare, how values
//! look in templates and xf's template filters), [`files`] (the loader of a
//! transform's files, from disk or memory), [`splunk`] (the HEC envelope and
//! its rules), [`schema`], [`diagnostic`], [`limits`] and `number`. What two
//! stages both need goes into a leaf (a comparison is judged at load for a
//! warning and per record for a condition) or into the [`compile::Plan`],
//! which is all that `apply` reads: it never reads the syntax tree.
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
#[cfg(feature = "cli")]
pub mod testing;
mod transform;
pub mod value;
pub mod write;

pub use apply::RecordError;
pub use limits::Limits;
pub use transform::{LoadError, LoadOptions, Transform};
