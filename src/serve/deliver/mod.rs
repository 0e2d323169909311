//! Delivering: one worker per destination takes due records from the spool,
//! sends them, and settles each one (delivered, retried later, or dead).
//!
//! Destinations share nothing but the spool thread, so a slow or dead one
//! holds back only its own queue. A destination that fails is paused (with the
//! same backoff as its records) and then probed with one request at a time
//! until it answers again, so an outage costs few requests and few of each
//! record's attempts, and the queue drains at full speed once it is back.

pub mod destination;
pub mod guard;
pub mod notice;
pub mod token;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::{watch, Notify, Semaphore};

use crate::serve::metrics::{self, Metrics};
use crate::serve::queue::spool::{now_ms, DeadRecord, Fetch, Leased, Settle, SpoolError};
use crate::serve::queue::Queue;
use crate::write::Framing;
use destination::{BodyFormat, Destination, Retry};
use notice::Notices;

/// The header that carries a record's id on every attempt: an idempotency key
/// for the receiver. A batch carries its records' ids, comma-separated.
pub const RECORD_ID_HEADER: &str = "xf-record-id";

/// Attempts kept in a record's log (the first ones and the last ones count most; the last are kept).
const ATTEMPT_LOG_MAX: usize = 20;

/// The longest a failing destination waits between probes (unless it says
/// Retry-After): an outage of hours still ends within this of its end.
const PROBE_INTERVAL_MAX: Duration = Duration::from_secs(30);

/// How much of an error answer's body is kept in the attempt log.
const ANSWER_SNIPPET: usize = 300;

/// What one request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Try again, after `after` if the destination said when.
    Retry {
        what: String,
        after: Option<Duration>,
    },
    /// Never going to work for these records.
    Permanent(String),
    /// 410: the destination is gone, disable it.
    Gone(String),
}

/// Classifies a destination's answer.
pub fn judge(
    format: BodyFormat,
    status: StatusCode,
    retry_after: Option<&HeaderValue>,
    body: &[u8],
) -> Verdict {
    let snippet = String::from_utf8_lossy(&body[..body.len().min(ANSWER_SNIPPET)]).into_owned();
    let what = if snippet.trim().is_empty() {
        status.to_string()
    } else {
        format!("{status}: {}", snippet.trim())
    };
    // Splunk HEC says what went wrong in its body's `code`.
    if format == BodyFormat::Hec {
        if let Some(code) = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("code").and_then(Value::as_i64))
        {
            match code {
                0 if status.is_success() => return Verdict::Delivered,
                // Server is busy; internal error.
                9 | 8 => {
                    return Verdict::Retry {
                        what,
                        after: retry_after.and_then(parse_retry_after),
                    }
                }
                // Invalid data format, incorrect index, event field required or blank, …
                5 | 6 | 7 | 12 | 13 | 14 | 15 => return Verdict::Permanent(what),
                _ => {}
            }
        }
    }
    if status.is_success() {
        return Verdict::Delivered;
    }
    match status.as_u16() {
        // Redirects are not followed (a 301 would turn the POST into a GET without its body).
        300..=399 => Verdict::Permanent(format!(
            "{what} (redirects are not followed: give the final URI)"
        )),
        408 | 429 | 500..=599 => Verdict::Retry {
            what,
            after: retry_after.and_then(parse_retry_after),
        },
        410 => Verdict::Gone(what),
        _ => Verdict::Permanent(what),
    }
}

/// `Retry-After`: a number of seconds, or an HTTP date.
pub fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc2822).ok()?;
    let wait = when - time::OffsetDateTime::now_utc();
    Some(Duration::from_secs(wait.whole_seconds().max(0) as u64))
}

/// The delay before attempt `attempt + 1` (the first retry is attempt 1):
/// doubling from the base, capped, with jitter (between half and all of it)
/// so that records and instances that failed together do not retry together.
pub fn backoff(retry: &Retry, attempt: u32) -> Duration {
    let doubled = retry
        .base_delay
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = doubled.min(retry.max_delay);
    capped.mul_f64(0.5 + fastrand::f64() * 0.5)
}

/// Whether a destination is disabled (after a 410), shared by its worker
/// and its requests.
#[derive(Debug)]
pub struct Disabled {
    on: AtomicBool,
    /// Set by a 410 until the spool has recorded it: until then the spool's
    /// list of disabled destinations does not hold it, and must not be read
    /// as `xf spool enable` having turned it back on.
    unrecorded: AtomicBool,
}

impl Disabled {
    /// As the spool says it is.
    pub fn new(on: bool) -> Disabled {
        Disabled {
            on: AtomicBool::new(on),
            unrecorded: AtomicBool::new(false),
        }
    }

    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::SeqCst)
    }

    /// A 410: on at once, in memory, and not yet recorded.
    fn gone(&self) {
        // In this order: whoever sees it on sees it unrecorded until it is recorded.
        self.unrecorded.store(true, Ordering::SeqCst);
        self.on.store(true, Ordering::SeqCst);
    }

    fn recorded(&self) {
        self.unrecorded.store(false, Ordering::SeqCst);
    }

    /// Whether a 410 is not yet in the spool's list of disabled destinations.
    fn unrecorded(&self) -> bool {
        self.unrecorded.load(Ordering::SeqCst)
    }

    fn enable(&self) {
        self.on.store(false, Ordering::SeqCst);
    }
}

/// A destination's health, shared by its requests in flight.
#[derive(Debug, Default)]
struct Health {
    consecutive_failures: u32,
    paused_until: Option<Instant>,
    last_error: Option<String>,
}

/// Everything a destination worker needs.
pub struct Worker {
    pub destination: Arc<Destination>,
    pub spool: Arc<dyn Queue>,
    pub metrics: Arc<Metrics>,
    pub client: reqwest::Client,
    pub notices: Arc<Notices>,
    /// Told when records for this destination are stored.
    pub wake: Arc<Notify>,
    /// On (from the spool, or after a 410) while the destination is disabled.
    pub disabled: Arc<Disabled>,
    /// Becomes true when the worker should finish what is in flight and end.
    pub stop: watch::Receiver<bool>,
}

impl Worker {
    /// Runs until `stop`; what is in flight then is finished (up to its timeout).
    pub async fn run(mut self) {
        let destination = Arc::clone(&self.destination);
        let name = &destination.name;
        let health = Arc::new(Mutex::new(Health::default()));
        let permits = Arc::new(Semaphore::new(destination.concurrency.max(1)));
        let counters = Arc::new(self.metrics.destination_counters(name));
        let per_request = if destination.format.batches() {
            destination.batch.max_records.max(1)
        } else {
            1
        };
        loop {
            if *self.stop.borrow() {
                break;
            }
            if !self.disabled.is_on() && self.spool.disabled_elsewhere(name) {
                tracing::warn!(destination = %name, "disabled (after a 410 at another instance, or before this one reached the queue): `xf spool enable` turns it back on everywhere");
                self.disabled.on.store(true, Ordering::SeqCst);
                self.metrics
                    .disabled
                    .get_or_create(&metrics::destination(name))
                    .set(1);
            }
            if self.disabled.is_on() {
                // `xf spool enable` turns it back on, from outside the server.
                self.pause(Duration::from_secs(2)).await;
                // Looked at before the list is read: once recorded, the list holds it.
                if self.disabled.unrecorded() {
                    continue;
                }
                if let Ok(disabled) = self.spool.disabled().await {
                    if !disabled.iter().any(|d| **d == **name) {
                        tracing::info!(destination = %name, "enabled again");
                        self.disabled.enable();
                        self.metrics
                            .disabled
                            .get_or_create(&metrics::destination(name))
                            .set(0);
                    }
                }
                continue;
            }
            let paused = health.lock().ok().and_then(|h| h.paused_until);
            if let Some(until) = paused {
                let now = Instant::now();
                if until > now {
                    self.pause(until - now).await;
                    continue;
                }
            }
            // Wait for a free request slot, without holding it.
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                break;
            };
            let probing = health
                .lock()
                .map(|h| h.consecutive_failures > 0)
                .unwrap_or(false);
            let requests = if probing {
                1
            } else if destination.format.batches() {
                permits.available_permits() + 1
            } else {
                // One record a request: a fetch per free slot would cost a
                // round trip to the queue per record. One fetch leases as many
                // as may be in flight at once; they go out as slots free.
                destination.concurrency.max(1)
            };
            let fetch = Fetch {
                max_records: requests.saturating_mul(per_request),
                batch_records: per_request,
                max_bytes: if destination.format.batches() {
                    requests.saturating_mul(destination.batch.max_bytes)
                } else {
                    usize::MAX
                },
                linger: if destination.format.batches() {
                    destination.batch.linger
                } else {
                    Duration::ZERO
                },
            };
            if self.spool.ready().is_err() {
                // The queue logs when it is lost and when it is back: not each try.
                drop(permit);
                self.pause(Duration::from_secs(1)).await;
                continue;
            }
            let fetched = match self.spool.fetch(name, fetch).await {
                Ok(fetched) => fetched,
                Err(error) => {
                    tracing::error!(destination = %name, %error, "cannot read the spool");
                    drop(permit);
                    self.pause(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if fetched.records.is_empty() {
                drop(permit);
                let wait = fetched
                    .next_due_ms
                    .map(|due| Duration::from_millis((due - now_ms()).clamp(1, 1000) as u64))
                    .unwrap_or(Duration::from_secs(1));
                self.idle(wait).await;
                continue;
            }
            let mut permit = Some(permit);
            let mut groups = split(&destination, fetched.records).into_iter();
            while let Some(group) = groups.next() {
                let permit = match permit.take() {
                    Some(permit) => permit,
                    None => {
                        // Leased ahead of a free slot: sent only if, once one is
                        // free, the destination is still to be sent to (no stop,
                        // not disabled, not failing); else let go for a later fetch.
                        let acquired = tokio::select! {
                            permit = Arc::clone(&permits).acquire_owned() => permit.ok(),
                            _ = self.stop.changed() => None,
                        };
                        let failing = health.lock().is_ok_and(|h| {
                            h.consecutive_failures > 0
                                || h.paused_until.is_some_and(|until| until > Instant::now())
                        });
                        match acquired {
                            Some(permit)
                                if !*self.stop.borrow() && !self.disabled.is_on() && !failing =>
                            {
                                permit
                            }
                            _ => {
                                let released: Vec<Settle> = std::iter::once(group)
                                    .chain(groups)
                                    .flatten()
                                    .map(|record| Settle::Release(record.seq))
                                    .collect();
                                until_written(name, "let go of records", || {
                                    self.spool.settle(name, released.clone(), Vec::new())
                                })
                                .await;
                                break;
                            }
                        }
                    }
                };
                let request = Request {
                    destination: Arc::clone(&destination),
                    spool: Arc::clone(&self.spool),
                    metrics: Arc::clone(&self.metrics),
                    client: self.client.clone(),
                    notices: Arc::clone(&self.notices),
                    health: Arc::clone(&health),
                    disabled: Arc::clone(&self.disabled),
                    counters: Arc::clone(&counters),
                };
                let task = tokio::spawn(async move {
                    request.send(group).await;
                    drop(permit);
                });
                if probing {
                    let _ = task.await;
                }
            }
        }
        // Let what is in flight finish: each request ends by its own timeout.
        let _ = permits
            .acquire_many(destination.concurrency.max(1) as u32)
            .await;
    }

    /// Sleeps, or less if a stop comes.
    async fn pause(&mut self, wait: Duration) {
        let _ = tokio::time::timeout(wait, self.stop.changed()).await;
    }

    /// Sleeps until records arrive, `wait` passes, or a stop comes.
    async fn idle(&mut self, wait: Duration) {
        tokio::select! {
            _ = self.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = self.stop.changed() => {}
        }
    }
}

/// Groups leased records into requests: one each, or batches by count and bytes.
fn split(destination: &Destination, records: Vec<Leased>) -> Vec<Vec<Leased>> {
    if !destination.format.batches() {
        return records.into_iter().map(|r| vec![r]).collect();
    }
    let mut groups: Vec<Vec<Leased>> = Vec::new();
    let mut bytes = 0;
    for record in records {
        let fits = groups.last().is_some_and(|group| {
            group.len() < destination.batch.max_records
                && bytes + record.body.len() <= destination.batch.max_bytes
        });
        if !fits {
            groups.push(Vec::new());
            bytes = 0;
        }
        bytes += record.body.len();
        if let Some(group) = groups.last_mut() {
            group.push(record);
        }
    }
    groups
}

/// Standard Webhooks headers for one attempt: `webhook-id` stays the same
/// across retries (a record's id; for a batch, one derived from its records'
/// ids), `webhook-timestamp` is this attempt's, and `webhook-signature` holds
/// one `v1,` signature per key, over the exact body sent.
fn signature_headers(
    keys: &[ring::hmac::Key],
    records: &[Leased],
    ids: &str,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    if keys.is_empty() {
        return Vec::new();
    }
    let id = match records {
        [one] => one.record_id.clone(),
        _ => {
            let digest = ring::digest::digest(&ring::digest::SHA256, ids.as_bytes());
            let hex: String = digest.as_ref()[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("batch_{hex}")
        }
    };
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64);
    let signatures: Vec<String> = keys
        .iter()
        .map(|key| {
            crate::serve::receive::auth::standard_webhooks_signature(key, &id, timestamp, body)
        })
        .collect();
    vec![
        ("webhook-id", id),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signatures.join(" ")),
    ]
}

/// The body of one request.
pub fn body(format: BodyFormat, records: &[Leased]) -> Vec<u8> {
    let size: usize = records.iter().map(|r| r.body.len() + 1).sum::<usize>() + 2;
    let mut out = Vec::with_capacity(size);
    let framing = match format {
        BodyFormat::Json => Framing::Single,
        BodyFormat::Array => Framing::Array,
        BodyFormat::Ndjson => Framing::Lines,
        BodyFormat::Hec => Framing::HecBatch,
    };
    crate::write::frame(framing, records.iter().map(|r| &r.body[..]), &mut out);
    out
}

struct Request {
    destination: Arc<Destination>,
    spool: Arc<dyn Queue>,
    metrics: Arc<Metrics>,
    client: reqwest::Client,
    notices: Arc<Notices>,
    health: Arc<Mutex<Health>>,
    disabled: Arc<Disabled>,
    /// The destination's counters of every delivery, looked up once.
    counters: Arc<metrics::DestinationCounters>,
}

impl Request {
    async fn send(self, records: Vec<Leased>) {
        let destination = &self.destination;
        // For what happens rarely: retries, dead letters, a disabled destination.
        let labels = || metrics::destination(&destination.name);
        let now = now_ms();
        // Records past their age are not sent: they are dead, with their history.
        let max_age = destination.retry.max_age.as_millis() as i64;
        let (records, expired): (Vec<_>, Vec<_>) = records
            .into_iter()
            .partition(|r| now - r.received_ms <= max_age);
        let mut settles: Vec<Settle> = expired
            .iter()
            .map(|r| Settle::Dead {
                seq: r.seq,
                reason: format!(
                    "not delivered within {} s of its receipt (max age)",
                    destination.retry.max_age.as_secs()
                ),
                attempt_log: r.attempt_log.clone(),
            })
            .collect();
        if !expired.is_empty() {
            self.metrics
                .dead_lettered
                .get_or_create(&labels())
                .inc_by(expired.len() as u64);
        }
        if records.is_empty() {
            self.settle(settles).await;
            return;
        }
        let ids: Vec<&str> = records.iter().map(|r| r.record_id.as_str()).collect();
        let started = Instant::now();
        let verdict = self.attempt(&records, &ids.join(",")).await;
        self.counters
            .attempt_seconds
            .observe(started.elapsed().as_secs_f64());
        let attempt_text = match &verdict {
            Verdict::Delivered => "delivered".to_string(),
            Verdict::Retry { what, .. } | Verdict::Permanent(what) | Verdict::Gone(what) => {
                what.clone()
            }
        };
        let at = now_ms();
        match &verdict {
            Verdict::Delivered => {
                self.counters.delivered.inc_by(records.len() as u64);
                let e2e = &self.counters.end_to_end_seconds;
                for record in &records {
                    e2e.observe((at - record.received_ms).max(0) as f64 / 1000.0);
                    settles.push(Settle::Delivered(record.seq));
                }
                self.recovered();
            }
            Verdict::Retry { after, .. } => {
                let mut dead = 0;
                // One delay for the request's records, so that a batch stays one batch.
                let attempts_before = records.iter().map(|r| r.attempts).max().unwrap_or(0);
                // Retry-After says "not before": never sooner than the backoff.
                let backoff = backoff(&destination.retry, attempts_before + 1);
                let delay = match after {
                    Some(after) => (*after).min(destination.retry.max_delay).max(backoff),
                    None => backoff,
                };
                for record in &records {
                    let attempts = record.attempts + 1;
                    let attempt_log = log_attempt(&record.attempt_log, at, &attempt_text);
                    if attempts >= destination.retry.max_attempts {
                        dead += 1;
                        settles.push(Settle::Dead {
                            seq: record.seq,
                            reason: format!("gave up after {attempts} attempts: {attempt_text}"),
                            attempt_log,
                        });
                    } else {
                        settles.push(Settle::Retry {
                            seq: record.seq,
                            due_ms: at + delay.as_millis() as i64,
                            attempt_log,
                        });
                    }
                }
                self.metrics
                    .retried
                    .get_or_create(&labels())
                    .inc_by((records.len() - dead) as u64);
                if dead > 0 {
                    self.metrics
                        .dead_lettered
                        .get_or_create(&labels())
                        .inc_by(dead as u64);
                }
                self.failing(&attempt_text, *after).await;
            }
            Verdict::Permanent(_) => {
                for record in &records {
                    settles.push(Settle::Dead {
                        seq: record.seq,
                        reason: format!("refused by the destination: {attempt_text}"),
                        attempt_log: log_attempt(&record.attempt_log, at, &attempt_text),
                    });
                }
                let count = records.len() as u64;
                self.metrics.failed.get_or_create(&labels()).inc_by(count);
                self.metrics
                    .dead_lettered
                    .get_or_create(&labels())
                    .inc_by(count);
                // A refusal of these records says nothing of the destination's health.
            }
            Verdict::Gone(_) => {
                tracing::error!(destination = %destination.name, answer = %attempt_text,
                    "the destination answered 410 Gone: disabled until `xf spool enable`");
                self.disabled.gone();
                self.metrics.disabled.get_or_create(&labels()).set(1);
                // Lost if not written: after a restart or reload the destination would take records again.
                until_written(
                    &destination.name,
                    "record the destination as disabled",
                    || self.spool.set_disabled(&destination.name, true),
                )
                .await;
                self.disabled.recorded();
                for record in &records {
                    settles.push(Settle::Release(record.seq));
                }
                self.failing(&attempt_text, None).await;
            }
        }
        self.settle(settles).await;
    }

    /// Records what became of the records; tried until the spool takes it, since
    /// an unsettled record stays leased (and so unsent) until a restart.
    async fn settle(&self, settles: Vec<Settle>) {
        let name = &self.destination.name;
        until_written(name, "settle records", || {
            self.spool
                .settle(name, settles.clone(), Vec::<DeadRecord>::new())
        })
        .await;
    }

    /// One attempt. With OAuth credentials, the token first (a token endpoint
    /// that fails is a retriable failure, counted apart); a 401 to a token
    /// gets one more try with a fresh token.
    async fn attempt(&self, records: &[Leased], ids: &str) -> Verdict {
        let Some(tokens) = &self.destination.oauth else {
            return self.attempt_with(records, ids, None).await.0;
        };
        for _ in 0..2 {
            let authorization = match tokens
                .authorization(&self.client, self.destination.timeout)
                .await
            {
                Ok(authorization) => authorization,
                Err(what) => {
                    self.metrics
                        .token_failures
                        .get_or_create(&metrics::destination(&self.destination.name))
                        .inc();
                    return Verdict::Retry { what, after: None };
                }
            };
            let (verdict, status) = self.attempt_with(records, ids, Some(&authorization)).await;
            if status != Some(StatusCode::UNAUTHORIZED) {
                return verdict;
            }
            tokens.forget(&authorization).await;
        }
        Verdict::Permanent(
            "401 with a token fetched just now: the destination refuses these credentials".into(),
        )
    }

    async fn attempt_with(
        &self,
        records: &[Leased],
        ids: &str,
        authorization: Option<&HeaderValue>,
    ) -> (Verdict, Option<StatusCode>) {
        let destination = &self.destination;
        let mut request = self
            .client
            .post(destination.uri.clone())
            .timeout(destination.timeout)
            .header(CONTENT_TYPE, destination.format.content_type());
        for (name, value) in &destination.headers {
            request = request.header(name, value);
        }
        if let Ok(value) = HeaderValue::from_str(ids) {
            request = request.header(RECORD_ID_HEADER, value);
        }
        if let Some(authorization) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, authorization.clone());
        }
        let body = body(destination.format, records);
        for (name, value) in signature_headers(&destination.signing, records, ids, &body) {
            request = request.header(name, value);
        }
        let response = match request.body(body).send().await {
            Ok(response) => response,
            Err(error) => {
                let verdict = Verdict::Retry {
                    what: describe(&error),
                    after: None,
                };
                return (verdict, None);
            }
        };
        let status = response.status();
        let retry_after = response.headers().get(RETRY_AFTER).cloned();
        // Only the start of the answer is read: it is for the attempt log.
        let body = read_some(response, 4096).await;
        let verdict = judge(destination.format, status, retry_after.as_ref(), &body);
        (verdict, Some(status))
    }

    fn recovered(&self) {
        if let Ok(mut health) = self.health.lock() {
            if health.consecutive_failures > 0 {
                tracing::info!(destination = %self.destination.name, "the destination answers again");
            }
            *health = Health::default();
        }
    }

    async fn failing(&self, what: &str, after: Option<Duration>) {
        let first = {
            let Ok(mut health) = self.health.lock() else {
                return;
            };
            let now = Instant::now();
            // Requests that were in flight together fail together: one step of backoff.
            let already_paused = health.paused_until.is_some_and(|until| until > now);
            if !already_paused {
                health.consecutive_failures += 1;
                let backoff = backoff(&self.destination.retry, health.consecutive_failures)
                    .min(PROBE_INTERVAL_MAX);
                let pause = match after {
                    Some(after) => after.min(self.destination.retry.max_delay).max(backoff),
                    None => backoff,
                };
                health.paused_until = Some(now + pause);
            }
            health.last_error = Some(what.to_string());
            health.consecutive_failures == 1
        };
        if first {
            tracing::warn!(destination = %self.destination.name, error = %what, "delivery failed; retrying with backoff");
            let depth = self
                .spool
                .depths()
                .get(&*self.destination.name)
                .map(|d| d.0)
                .unwrap_or(0);
            self.notices
                .destination_failing(&self.destination, what, depth)
                .await;
        }
    }
}

/// Runs a write to the spool until the spool takes it (or is closed, when the
/// server stops), waiting longer after each failure, up to 10 s.
async fn until_written<Write, Written>(destination: &str, what: &str, write: Write)
where
    Write: Fn() -> Written,
    Written: std::future::Future<Output = Result<(), SpoolError>>,
{
    let mut wait = Duration::from_millis(100);
    loop {
        match write().await {
            Ok(()) | Err(SpoolError::Closed) => return,
            Err(error) => {
                tracing::error!(%destination, %error, "cannot {what}; trying again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// A connection error in words (reqwest's own message hides the cause).
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn read_some(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())])
            }
            _ => break,
        }
    }
    body
}

/// The attempt log with one more attempt, the oldest let go past [`ATTEMPT_LOG_MAX`].
fn log_attempt(log: &str, at: i64, what: &str) -> String {
    let mut attempts: Vec<Value> = serde_json::from_str(log).unwrap_or_default();
    attempts.push(json!({"at_ms": at, "result": what}));
    if attempts.len() > ATTEMPT_LOG_MAX {
        attempts.drain(..attempts.len() - ATTEMPT_LOG_MAX);
    }
    Value::Array(attempts).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_judged_by_status_and_hec_code() {
        let judge = |format, status: u16, body: &str| {
            judge(
                format,
                StatusCode::from_u16(status).unwrap(),
                None,
                body.as_bytes(),
            )
        };
        assert_eq!(judge(BodyFormat::Json, 200, ""), Verdict::Delivered);
        assert!(matches!(
            judge(BodyFormat::Json, 503, ""),
            Verdict::Retry { .. }
        ));
        assert!(matches!(
            judge(BodyFormat::Json, 429, ""),
            Verdict::Retry { .. }
        ));
        assert!(matches!(
            judge(BodyFormat::Json, 408, ""),
            Verdict::Retry { .. }
        ));
        assert!(matches!(
            judge(BodyFormat::Json, 400, ""),
            Verdict::Permanent(_)
        ));
        assert!(matches!(judge(BodyFormat::Json, 410, ""), Verdict::Gone(_)));
        let busy = r#"{"text":"Server is busy","code":9}"#;
        assert!(matches!(
            judge(BodyFormat::Hec, 503, busy),
            Verdict::Retry { .. }
        ));
        let index = r#"{"text":"Incorrect index","code":7,"invalid-event-number":1}"#;
        assert!(matches!(
            judge(BodyFormat::Hec, 400, index),
            Verdict::Permanent(_)
        ));
        assert_eq!(
            judge(BodyFormat::Hec, 200, r#"{"text":"Success","code":0}"#),
            Verdict::Delivered
        );
    }

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        let seconds = HeaderValue::from_static("120");
        assert_eq!(parse_retry_after(&seconds), Some(Duration::from_secs(120)));
        let past = HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(&HeaderValue::from_static("soon")), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let retry = Retry::default();
        for attempt in 1..40 {
            let full = retry
                .base_delay
                .saturating_mul(1 << (attempt - 1).min(20))
                .min(retry.max_delay);
            let delay = backoff(&retry, attempt);
            assert!(delay <= full && delay >= full / 2, "{attempt}: {delay:?}");
        }
    }

    #[tokio::test]
    async fn a_write_the_spool_refuses_is_tried_until_it_takes_it() {
        let tries = std::sync::atomic::AtomicU32::new(0);
        until_written("d", "record the destination as disabled", || async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(SpoolError::Full("for the test".into())),
                _ => Ok(()),
            }
        })
        .await;
        assert_eq!(tries.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn the_attempt_log_keeps_the_last_attempts() {
        let mut log = "[]".to_string();
        for i in 0..30 {
            log = log_attempt(&log, i, "503");
        }
        let attempts: Vec<Value> = serde_json::from_str(&log).unwrap();
        assert_eq!(attempts.len(), ATTEMPT_LOG_MAX);
        assert_eq!(attempts[0]["at_ms"], 10);
    }
}
