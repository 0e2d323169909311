//! `xf spool replay --transform PIPELINE`: the records the transform failed
//! on, each run again, as it was received, through its source's transform in
//! the pipeline as it is now ([`xf::serve::route::reroute`]). What a record
//! makes now is queued for the destinations that want it, with the ids
//! `xf serve` gives (the dead letter's id, `ID-1`… for `fan_out`); what the
//! transform drops now is let go; what still fails stays dead with its new
//! reason. A line of JSON on standard output tells each record's outcome,
//! and a summary goes to standard error; `--dry-run` prints the same and
//! writes nothing.

use rusqlite::Connection;
use serde_json::{json, Value};
use xf::serve::queue::spool::{self, Replacement};
use xf::serve::route::{self, Rerouted, Rerouting};
use xf::serve::Pipeline;

use crate::shared_cli::print_stdout;

/// Dead letters read, routed and written back at a time: a large backlog is
/// never held in memory whole, and each write is a short transaction beside
/// a running server.
const PAGE: usize = 100;

/// How the records replayed came out.
#[derive(Default)]
pub(crate) struct Tally {
    queued: u64,
    /// Records queued for destinations (a record may make several, for several destinations).
    records: u64,
    dropped: u64,
    failed: u64,
    skipped: u64,
    /// Whether standard output still has a reader.
    printing: bool,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            printing: true,
            ..Tally::default()
        }
    }

    /// Counts a record's outcome and prints its line.
    pub(crate) fn count(
        &mut self,
        id: &str,
        source: &str,
        rerouted: &Rerouted,
    ) -> Result<(), String> {
        let line = outcome_line(id, source, rerouted);
        match &rerouted.outcome {
            Rerouting::Queued => {
                self.queued += 1;
                self.records += rerouted.records.len() as u64;
            }
            Rerouting::Dropped => self.dropped += 1,
            Rerouting::Failed(_) => self.failed += 1,
            Rerouting::Skipped(_) => self.skipped += 1,
        }
        if self.printing {
            self.printing = print_stdout(&format!("{line}\n"))?;
        }
        Ok(())
    }

    /// The summary line, on standard error.
    pub(crate) fn summary(&self, dry_run: bool) -> String {
        let total = self.queued + self.dropped + self.failed + self.skipped;
        let mut text = format!(
            "{total} record(s) the transform failed on, run through the current transforms: {} queued ({} record(s) for destinations), {} dropped, {} still failing (kept as dead letters with their new reason), {} skipped (left as they were)",
            self.queued, self.records, self.dropped, self.failed, self.skipped
        );
        if dry_run {
            text.push_str("; dry run: nothing was changed");
        }
        text
    }
}

/// One record's outcome as a line of JSON: `queued` with the records and
/// their destinations, `dropped`, `failed` or `skipped` with the reason.
fn outcome_line(id: &str, source: &str, rerouted: &Rerouted) -> Value {
    let mut line = json!({"id": id, "source": source});
    match &rerouted.outcome {
        Rerouting::Queued => {
            line["outcome"] = "queued".into();
            line["records"] = rerouted
                .records
                .iter()
                .map(
                    |record| json!({"id": &*record.record_id, "destination": &*record.destination}),
                )
                .collect();
        }
        Rerouting::Dropped => line["outcome"] = "dropped".into(),
        Rerouting::Failed(reason) => {
            line["outcome"] = "failed".into();
            line["reason"] = reason.as_str().into();
        }
        Rerouting::Skipped(reason) => {
            line["outcome"] = "skipped".into();
            line["reason"] = reason.as_str().into();
        }
    }
    if !rerouted.dead.is_empty() {
        line["dead_letters"] = rerouted
            .dead
            .iter()
            .map(|letter| json!({"destination": letter.destination.as_deref(), "reason": letter.reason}))
            .collect();
    }
    line
}

/// What takes the dead letter's place, if anything does.
pub(crate) fn replacement(rerouted: Rerouted) -> Option<Replacement> {
    match rerouted.outcome {
        Rerouting::Queued | Rerouting::Dropped => Some(Replacement::Routed {
            records: rerouted.records,
            dead: rerouted.dead,
        }),
        Rerouting::Failed(reason) => Some(Replacement::StillFailing(reason)),
        Rerouting::Skipped(_) => None,
    }
}

/// The replay on the SQLite spool, a page of dead letters at a time.
pub(crate) fn replay_sqlite(
    connection: &mut Connection,
    pipeline: &Pipeline,
    dry_run: bool,
) -> Result<(), String> {
    let sql = |error: rusqlite::Error| error.to_string();
    let mut tally = Tally::new();
    let mut after = 0;
    loop {
        let page = spool::transform_failures(connection, after, PAGE).map_err(sql)?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.seq;
        let now = spool::now_ms();
        let mut replacements = Vec::new();
        for failure in page {
            let rerouted = route::reroute(
                pipeline,
                &failure.source,
                &failure.record_id,
                failure.body,
                now,
            );
            tally.count(&failure.record_id, &failure.source, &rerouted)?;
            if let Some(replacement) = replacement(rerouted) {
                replacements.push((failure.seq, replacement));
            }
        }
        if !dry_run {
            spool::replace_transform_failures(connection, &replacements).map_err(sql)?;
        }
    }
    eprintln!("{}", tally.summary(dry_run));
    Ok(())
}

/// The replay on the JetStream queue, a page of dead letters at a time, up
/// to the last one there when it began.
#[cfg(feature = "nats")]
pub(crate) async fn replay_jetstream(
    queue: &xf::serve::queue::jetstream::JetStream,
    pipeline: &Pipeline,
    dry_run: bool,
) -> Result<(), String> {
    use xf::serve::queue::jetstream::{header, RECORD_ID, SOURCE};
    let text = |error: spool::SpoolError| error.to_string();
    let mut tally = Tally::new();
    let end = queue.dead_last_sequence().await.map_err(text)?;
    let mut from = 1;
    'pages: while from <= end {
        let page = queue
            .transform_failures(from, PAGE as u64)
            .await
            .map_err(text)?;
        let Some(last) = page.last() else {
            break;
        };
        from = last.sequence + 1;
        let now = spool::now_ms();
        for letter in page {
            if letter.sequence > end {
                break 'pages;
            }
            let id = header(Some(&letter.headers), RECORD_ID).unwrap_or_default();
            let source = header(Some(&letter.headers), SOURCE).unwrap_or_default();
            let rerouted = route::reroute(pipeline, &source, &id, letter.payload.to_vec(), now);
            tally.count(&id, &source, &rerouted)?;
            match replacement(rerouted) {
                Some(replacement) if !dry_run => {
                    queue
                        .replace_transform_failure(&letter, replacement)
                        .await
                        .map_err(text)?;
                }
                _ => {}
            }
        }
    }
    eprintln!("{}", tally.summary(dry_run));
    Ok(())
}
