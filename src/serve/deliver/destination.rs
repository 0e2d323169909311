//! A destination: where results go, which of them it wants, and how they
//! are sent (body format, batches, retries, credentials).

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;

use crate::compile::EventType;
use crate::Transform;

/// The largest settings a destination takes (a larger one is cut to it):
/// records and bytes per batch, linger (ms), and age (s, 30 days).
pub const BATCH_RECORDS_LIMIT: usize = 10_000;
pub const BATCH_BYTES_LIMIT: usize = 64 << 20;
pub const LINGER_LIMIT_MS: u64 = 60_000;
pub const MAX_AGE_LIMIT: u64 = 30 * 86_400;

/// The longest a destination's request may be allowed to take.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// How a destination wants its requests' bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// One record per request, the JSON object itself (the default).
    Json,
    /// A JSON array of records.
    Array,
    /// Records one per line.
    Ndjson,
    /// Splunk HEC events stacked one after another; replies read as HEC's.
    Hec,
}

impl BodyFormat {
    pub fn parse(name: &str) -> Option<BodyFormat> {
        match name {
            "json" => Some(BodyFormat::Json),
            "array" => Some(BodyFormat::Array),
            "ndjson" => Some(BodyFormat::Ndjson),
            "hec" => Some(BodyFormat::Hec),
            _ => None,
        }
    }

    pub fn batches(self) -> bool {
        self != BodyFormat::Json
    }

    pub fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Json | BodyFormat::Array | BodyFormat::Hec => "application/json",
            BodyFormat::Ndjson => "application/x-ndjson",
        }
    }
}

/// How many records a batch request may hold, and how long to wait for them.
#[derive(Debug, Clone, Copy)]
pub struct Batch {
    /// Records per request (default 100).
    pub max_records: usize,
    /// Bytes of records per request (default 1 MiB; one larger record goes alone).
    pub max_bytes: usize,
    /// How long a record may wait for others to fill its batch (default 200 ms).
    pub linger: Duration,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            max_records: 100,
            max_bytes: 1 << 20,
            linger: Duration::from_millis(200),
        }
    }
}

/// When a failed delivery is tried again, and when it is given up.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts before a record is dead-lettered (default 30).
    pub max_attempts: u32,
    /// Age after which a record not yet delivered is dead-lettered (default 24 h).
    pub max_age: Duration,
    /// The first retry's delay; each next one doubles it (default 1 s).
    pub base_delay: Duration,
    /// The longest delay between attempts (default 10 min); a longer
    /// Retry-After is cut to it.
    pub max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_attempts: 30,
            max_age: Duration::from_secs(24 * 3600),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(600),
        }
    }
}

/// Where results go.
#[derive(Clone)]
pub struct Destination {
    /// Its name in the spool, logs and metrics: stable across restarts.
    pub name: Arc<str>,
    pub uri: reqwest::Url,
    /// Sent as they are, on every request.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Armor's subscription: only records of these types (judged on the
    /// record as received); `None`: every record.
    pub events: Option<Vec<EventType>>,
    pub format: BodyFormat,
    pub batch: Batch,
    /// One request's time limit (default 30 s, at most 300 s).
    pub timeout: Duration,
    /// Requests in flight at once (default 4).
    pub concurrency: usize,
    pub retry: Retry,
    /// Armor's `email_for_error`: who hears when this destination starts failing.
    pub email_for_error: Option<String>,
    /// Standard Webhooks keys its requests are signed with (each one a
    /// signature: two while a secret is rotated); none: unsigned.
    pub signing: Vec<ring::hmac::Key>,
    /// OAuth client credentials: the token its requests carry ([`super::token`]).
    pub oauth: Option<Arc<super::token::TokenSource>>,
    /// Certificates its TLS is verified with besides the system's roots (`ca_file`).
    pub ca_certificates: Vec<reqwest::Certificate>,
    /// The sources it takes records from (`from`); `None`: all of them.
    pub sources: Option<Vec<Arc<str>>>,
    /// Its `when`: a transform that drops the records it does not want.
    pub filter: Option<Arc<Transform>>,
}

impl Destination {
    /// Its URI as it may be shown (notices, logs): without a password, a user
    /// name or the query, any of which may hold a secret (`auth api_key query`).
    pub fn shown_uri(&self) -> String {
        let mut shown = self.uri.clone();
        let _ = shown.set_password(None);
        let _ = shown.set_username("");
        shown.set_query(None);
        shown.to_string()
    }

    /// A destination with the defaults, for `uri`.
    pub fn new(name: &str, uri: reqwest::Url) -> Destination {
        Destination {
            name: Arc::from(name),
            uri,
            headers: Vec::new(),
            events: None,
            format: BodyFormat::Json,
            batch: Batch::default(),
            timeout: Duration::from_secs(30),
            concurrency: 4,
            retry: Retry::default(),
            email_for_error: None,
            signing: Vec::new(),
            oauth: None,
            ca_certificates: Vec::new(),
            sources: None,
            filter: None,
        }
    }

    /// Whether it takes records from `source` (its `from`).
    pub fn takes_from(&self, source: &str) -> bool {
        self.sources
            .as_ref()
            .is_none_or(|sources| sources.iter().any(|s| **s == *source))
    }

    /// Whether a record (as received, from `source`, with the `request` it
    /// came in) is for this destination: its source, its event type, its
    /// `when`. A `when` that fails on the record is an error (the record is
    /// dead-lettered for it).
    pub fn wants(
        &self,
        source: &str,
        record: &Value,
        request: Option<&crate::apply::Request>,
    ) -> Result<bool, crate::RecordError> {
        if !self.takes_from(source) {
            return Ok(false);
        }
        if let Some(types) = &self.events {
            if !EventType::of(record).is_some_and(|t| types.contains(&t)) {
                return Ok(false);
            }
        }
        let Some(filter) = &self.filter else {
            return Ok(true);
        };
        // A `when` is one `drop`: judged on the record as it is, without a copy
        // (only a `when` that reads more than the record's paths and literals,
        // `request` among them, takes the way through `apply`).
        match filter.keeps(record) {
            Some(kept) => Ok(kept),
            None => {
                let context = crate::apply::Context {
                    request,
                    ..crate::apply::Context::default()
                };
                Ok(matches!(
                    filter.apply_in(record.clone(), &context)?,
                    crate::apply::Outcome::Emit(_)
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::Outcome;

    fn destination(when: &str) -> Destination {
        let source = format!("drop when not ({when})\n");
        let filter = Transform::from_source("when", &source, None).unwrap();
        let mut destination =
            Destination::new("d", reqwest::Url::parse("http://127.0.0.1:1/").unwrap());
        destination.filter = Some(Arc::new(filter));
        destination
    }

    #[test]
    fn a_when_is_judged_on_the_record_as_apply_would_judge_it() {
        let records = [
            serde_json::json!({"severity": 7, "kind": "alert"}),
            serde_json::json!({"severity": 2}),
            serde_json::json!({}),
            serde_json::json!({"severity": "high"}),
        ];
        for when in [
            "severity >= 5",
            "severity exists and kind == \"alert\"",
            "not (severity in [2, 3])",
        ] {
            let destination = destination(when);
            let filter = destination.filter.as_ref().unwrap();
            for record in &records {
                let applied = matches!(filter.apply_once(record.clone()), Ok(Outcome::Emit(_)));
                assert_eq!(filter.keeps(record), Some(applied), "{when} on {record}");
                assert_eq!(destination.wants("s", record, None).unwrap(), applied);
            }
        }
    }

    #[test]
    fn a_record_the_when_fails_on_is_an_error_as_before() {
        let destination = destination("severity >= 5");
        let filter = destination.filter.as_ref().unwrap();
        assert_eq!(filter.keeps(&serde_json::json!(7)), None);
        let error = destination
            .wants("s", &serde_json::json!(7), None)
            .unwrap_err();
        assert!(error.reason.contains("JSON object"), "{error}");
    }

    #[test]
    fn only_a_transform_that_drops_and_does_nothing_else_is_judged_without_apply() {
        let labels = Transform::from_source("t", "drop when a == 1\nlabel b = 2\n", None).unwrap();
        assert_eq!(labels.keeps(&serde_json::json!({"a": 2})), None);
        assert_eq!(
            labels.keeps(&serde_json::json!({"a": 1})),
            Some(false),
            "dropped first"
        );
    }
}
