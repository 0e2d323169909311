//! One received record's way to the queue: its destinations chosen (on the
//! record as received), the source's transform applied, and each result
//! addressed to every destination that wants it, or the record
//! dead-lettered with the reason. `xf serve` routes every record it accepts
//! this way; `xf spool replay --transform` routes again, through the current
//! pipeline, the records the transform failed on, so that both give the
//! same records the same ids.
//!
//! A record need not be read whole for that: [`fields_seen`] says which
//! top-level fields routing it can see (the transform's, and what the
//! destinations test), the receiver reads only those into values
//! ([`super::receive::body::records`]), and the results are written with
//! the other fields put back as the bytes they came in, byte for byte what
//! reading and writing the whole record gives, as `xf run` does.

use std::sync::Arc;

use serde_json::Value;

use super::config::Pipeline;
use super::deliver::destination::Destination;
use super::queue::spool::{DeadRecord, NewRecord};
use super::receive::body::Received;
use crate::apply::Outcome;
use crate::compile::{EventType, Format};
use crate::value::untouched::{FieldSet, Untouched};

/// What became of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed {
    /// The transform wrote it (or `fan_out` made records of it).
    Emitted,
    Dropped,
    /// The transform failed on it: a dead letter without destination.
    Failed,
}

/// One record as a source received it.
pub struct Arrival<'a> {
    /// The source's index in the pipeline.
    pub source: usize,
    /// The source's URL path, which the spool keeps as the record's source.
    pub source_path: &'a Arc<str>,
    /// The record's id: its results take it, or, made by `fan_out`, `ID-1`, `ID-2`, ….
    pub id: &'a Arc<str>,
    pub received_ms: i64,
    /// The record, read with [`fields_seen`] (or whole), and its text.
    pub received: Received,
    /// What the transform reads as `request`; `None` (null) for a record
    /// routed again from the spool, whose request is gone.
    pub request: Option<crate::apply::Request>,
}

/// Routes `arrival`, adding what it becomes to `records` and `dead`.
pub fn route(
    pipeline: &Pipeline,
    mut arrival: Arrival<'_>,
    records: &mut Vec<NewRecord>,
    dead: &mut Vec<DeadRecord>,
) -> Routed {
    let source = &pipeline.sources[arrival.source];
    let record = std::mem::take(&mut arrival.received.record);
    let dead_letter = |destination: Option<Arc<str>>, reason: String| DeadRecord {
        destination,
        record_id: Arc::clone(arrival.id),
        source: Arc::clone(arrival.source_path),
        received_ms: arrival.received_ms,
        reason,
        attempts: "[]".to_string(),
        body: arrival.received.letter(),
    };
    // Subscriptions are judged on the record as received (the output may be a HEC envelope).
    let mut wanted: Vec<&Arc<Destination>> = Vec::new();
    for destination in &pipeline.destinations {
        match destination.wants(&source.name, &record, arrival.request.as_ref()) {
            Ok(true) => wanted.push(destination),
            Ok(false) => {}
            Err(error) => dead.push(dead_letter(
                Some(Arc::clone(&destination.name)),
                format!("the destination's `when` failed: {error}"),
            )),
        }
    }
    let kept = arrival.received.kept();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let context = crate::apply::Context {
            request: arrival.request.as_ref(),
            kept_elsewhere: kept.is_some(),
            ..crate::apply::Context::default()
        };
        source.transform.apply_in(record, &context)
    }))
    .unwrap_or_else(|_| {
        Err(crate::RecordError::new(
            crate::apply::ErrorKind::Internal,
            None,
            "the transform panicked on this record (a bug in xf)",
        ))
    });
    // Each record made of it is stored once per destination that wants
    // it; those `fan_out` made have ids of their own, derived from the
    // record's (`ID-1`, `ID-2`, …), so that a retried request repeats them.
    let in_envelope = source.transform.format() == Format::Splunk;
    let mut store = |record_id: Arc<str>, value: &Value| {
        let body = match &kept {
            Some(kept) => written_with(value, kept, in_envelope),
            None => serde_json::to_vec(value).unwrap_or_default(),
        };
        for destination in &wanted {
            records.push(NewRecord {
                destination: Arc::clone(&destination.name),
                record_id: Arc::clone(&record_id),
                source: Arc::clone(arrival.source_path),
                body: body.clone(),
            });
        }
    };
    match outcome {
        Ok(Outcome::Emit(value)) => {
            store(Arc::clone(arrival.id), &value);
            Routed::Emitted
        }
        Ok(Outcome::Fanned(values)) => {
            for (k, value) in values.iter().enumerate() {
                store(Arc::from(format!("{}-{}", arrival.id, k + 1)), value);
            }
            Routed::Emitted
        }
        Ok(Outcome::Dropped) => Routed::Dropped,
        Err(error) => {
            dead.push(dead_letter(None, error.to_string()));
            Routed::Failed
        }
    }
}

/// A result written as compact JSON, its record's kept fields put back as
/// their bytes: what `serde_json::to_vec` gives for the result of the whole
/// record (the writer's NDJSON line, without its newline).
fn written_with(value: &Value, kept: &Untouched<'_>, in_envelope: bool) -> Vec<u8> {
    let mut body = Vec::new();
    crate::write::ndjson_line_untouched(&mut body, value, kept, in_envelope);
    body.pop();
    body
}

/// The top-level fields of a record from `source` that routing it can see:
/// what its transform sees ([`crate::Transform::fields_seen`]), and what
/// each destination that takes its records tests in [`Destination::wants`]
/// (the fields of its event types, what its `when` sees). `None` when one
/// of them sees the whole record: the record is then read whole. Nothing
/// else reads the record: its request, id and dead letters come from
/// elsewhere, and only the results are stored.
pub fn fields_seen(pipeline: &Pipeline, source: usize) -> Option<FieldSet> {
    let source = &pipeline.sources[source];
    let mut seen = source.transform.fields_seen()?.clone();
    let takers = pipeline
        .destinations
        .iter()
        .filter(|destination| destination.takes_from(&source.name));
    for destination in takers {
        if destination.events.is_some() {
            seen.extend(EventType::FIELDS.map(str::to_string));
        }
        if let Some(filter) = &destination.filter {
            seen.extend(filter.fields_seen()?.iter().cloned());
        }
    }
    Some(seen)
}

/// [`fields_seen`] for a pipeline's source, worked out at its first
/// request and kept with the source (a reload makes new sources).
pub fn fields_seen_by(pipeline: &Pipeline, source: usize) -> Option<&FieldSet> {
    pipeline.sources[source]
        .fields_seen
        .get_or_init(|| fields_seen(pipeline, source))
        .as_ref()
}

/// A record the transform failed on, routed again through the current
/// pipeline (`xf spool replay --transform`).
#[derive(Debug)]
pub struct Rerouted {
    /// What it comes to.
    pub outcome: Rerouting,
    /// Its results, to queue.
    pub records: Vec<NewRecord>,
    /// Dead letters for destinations whose `when` failed on it.
    pub dead: Vec<DeadRecord>,
}

/// What routing a dead letter of the transform again comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rerouting {
    /// The transform wrote it now: its records are queued.
    Queued,
    /// The transform drops it now: the dead letter goes, nothing is queued.
    Dropped,
    /// The transform still fails, for this reason: it stays dead with it.
    Failed(String),
    /// Not routed, and left as it is, for this reason: its source is not in
    /// the pipeline, or its record cannot be read.
    Skipped(String),
}

/// Routes a dead letter of the transform (source `source_path`, its record's
/// bytes as received) through the pipeline's source of that path, as `xf
/// serve` routed it when it arrived: the same id, so the same ids for its
/// results; `now` is when they count as received.
pub fn reroute(
    pipeline: &Pipeline,
    source_path: &str,
    id: &str,
    raw: Vec<u8>,
    now: i64,
) -> Rerouted {
    let skipped = |reason: String| Rerouted {
        outcome: Rerouting::Skipped(reason),
        records: Vec::new(),
        dead: Vec::new(),
    };
    let Some(source) = pipeline.sources.iter().position(|s| s.path == source_path) else {
        return skipped(format!("the pipeline has no source at {source_path}"));
    };
    let record = match crate::stream::parse_record(&raw) {
        Ok(record) => record,
        Err(error) => return skipped(format!("the record as received is not JSON: {error}")),
    };
    let (source_path, id) = (Arc::from(source_path), Arc::from(id));
    let arrival = Arrival {
        source,
        source_path: &source_path,
        id: &id,
        received_ms: now,
        received: Received::whole(record, raw),
        request: None,
    };
    let (mut records, mut dead) = (Vec::new(), Vec::new());
    let outcome = match route(pipeline, arrival, &mut records, &mut dead) {
        Routed::Emitted => Rerouting::Queued,
        Routed::Dropped => Rerouting::Dropped,
        Routed::Failed => {
            // The transform's own dead letter is the one being replayed: its reason is the news.
            let reason = dead
                .iter()
                .position(|letter| letter.destination.is_none())
                .map(|at| dead.remove(at).reason)
                .unwrap_or_default();
            Rerouting::Failed(reason)
        }
    };
    Rerouted {
        outcome,
        records,
        dead,
    }
}
