//! The queue on NATS JetStream: several `xf serve` instances share one queue,
//! and any of them may deliver any record. The README's "Scale-out on NATS
//! JetStream" has the design with a diagram; in short:
//!
//! - Stream `{prefix}-records` (work-queue retention, file storage) holds the
//!   transformed records, one message per record and destination, on subject
//!   `{prefix}.records.{destination}`. A record is removed when it is acked.
//! - One durable pull consumer per destination (`{destination}`, filtered on
//!   its subject), shared by every instance: whichever asks first gets the
//!   next records, and a destination that is down holds back only its own.
//! - Stream `{prefix}-dead` keeps dead letters on `{prefix}.dead.to.{destination}`
//!   (and `{prefix}.dead.transform` for records the transform failed on).
//! - Stream `{prefix}-disabled`: one message per destination disabled by a
//!   410, on `{prefix}.disabled.{destination}`; enabling purges the subject.
//!
//! A publish carries `Nats-Msg-Id` (record id and destination), so that the
//! publish of a record already stored within the duplicate window (a sender's
//! retry of a request that did reach the stream) is not stored twice.
//! Delivered records are acked, retries are negative acks with the delay,
//! and records in flight get progress acks: a record whose instance dies is
//! delivered again, by another instance, after the ack wait.

use std::collections::{HashMap, HashSet};
use std::error::Error as _;
use std::future::IntoFuture;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use async_nats::HeaderMap;
use futures_util::StreamExt;

use super::spool::{
    now_ms, DeadRecord, Depth, Fetch, Fetched, Leased, NewRecord, Overview, Replacement, Settle,
    SpoolError,
};
use super::{NatsOptions, Pending, Queue};

/// How long a fetch that found nothing waits at the server for one record.
const LONG_POLL: Duration = Duration::from_secs(1);

/// How long past a pull's own wait its answer may take before the pull is
/// given up and sent again (see `Inner::take`).
const PULL_GRACE: Duration = Duration::from_secs(2);

/// The most the attempt logs of waiting records take on the server.
const ATTEMPTS_MAX_BYTES: i64 = 64 << 20;

/// How often the sizes `depths` and `usage` answer with are read.
const REFRESH: Duration = Duration::from_secs(2);

/// Headers xf writes on every message (besides `Nats-Msg-Id`).
pub const RECORD_ID: &str = "Xf-Record-Id";
pub const SOURCE: &str = "Xf-Source";
pub const RECEIVED: &str = "Xf-Received-Ms";
pub const DESTINATION: &str = "Xf-Destination";
pub const REASON: &str = "Xf-Reason";
pub const ATTEMPTS: &str = "Xf-Attempts";

/// One header of a message, as text.
pub fn header(headers: Option<&HeaderMap>, name: &str) -> Option<String> {
    headers?.get(name).map(|value| value.as_str().to_string())
}

/// JetStream's error codes for a stream at its limits (`discard new`).
const STORE_FAILED: u64 = 10077;
const INSUFFICIENT_RESOURCES: u64 = 10023;

/// The names xf uses on the server, from the configured prefix.
#[derive(Debug, Clone)]
pub struct Names {
    pub records_stream: String,
    pub dead_stream: String,
    pub disabled_stream: String,
    pub attempts_stream: String,
    prefix: String,
}

impl Names {
    pub fn new(prefix: &str) -> Names {
        Names {
            records_stream: format!("{prefix}-records"),
            dead_stream: format!("{prefix}-dead"),
            disabled_stream: format!("{prefix}-disabled"),
            attempts_stream: format!("{prefix}-attempts"),
            prefix: prefix.to_string(),
        }
    }

    pub fn records_subject(&self, destination: &str) -> String {
        format!("{}.records.{}", self.prefix, token(destination))
    }

    fn records_wildcard(&self) -> String {
        format!("{}.records.*", self.prefix)
    }

    pub fn dead_subject(&self, destination: Option<&str>) -> String {
        match destination {
            Some(destination) => format!("{}.dead.to.{}", self.prefix, token(destination)),
            None => format!("{}.dead.transform", self.prefix),
        }
    }

    fn disabled_subject(&self, destination: &str) -> String {
        format!("{}.disabled.{}", self.prefix, token(destination))
    }

    /// The attempt log of the record at `seq` of the records stream, for `destination`.
    fn attempts_subject(&self, destination: &str, seq: u64) -> String {
        format!("{}.attempts.{}.{seq}", self.prefix, token(destination))
    }

    fn attempts_wildcard(&self) -> String {
        format!("{}.attempts.>", self.prefix)
    }

    fn disabled_wildcard(&self) -> String {
        format!("{}.disabled.*", self.prefix)
    }

    fn dead_wildcard(&self) -> String {
        format!("{}.dead.>", self.prefix)
    }

    /// The destination a subject of either stream is about (`None`: the transform's).
    pub fn destination_of(&self, subject: &str) -> Option<Option<String>> {
        let records = format!("{}.records.", self.prefix);
        let dead_to = format!("{}.dead.to.", self.prefix);
        if let Some(rest) = subject.strip_prefix(&records) {
            return Some(Some(untoken(rest)));
        }
        if let Some(rest) = subject.strip_prefix(&dead_to) {
            return Some(Some(untoken(rest)));
        }
        (subject == self.dead_subject(None)).then_some(None)
    }
}

/// A destination's name as one subject token and a consumer name: letters,
/// digits, `_` and `-` as they are, any other byte as `=XX`, so that a name
/// from an Armor notifications config (spaces, dots) stays one token.
pub fn token(name: &str) -> String {
    let mut token = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            token.push(byte as char);
        } else {
            token.push_str(&format!("={byte:02X}"));
        }
    }
    token
}

fn untoken(token: &str) -> String {
    let mut bytes = Vec::with_capacity(token.len());
    let raw = token.as_bytes();
    let mut at = 0;
    while at < raw.len() {
        if raw[at] == b'=' {
            if let Some(byte) = token
                .get(at + 1..at + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                bytes.push(byte);
                at += 3;
                continue;
            }
        }
        bytes.push(raw[at]);
        at += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A record leased to this instance: the message to ack, and since when.
struct Lease {
    message: jetstream::Message,
    since: Instant,
    /// When the last progress ack went out.
    touched: Instant,
}

/// The streams a queue uses (see the module's docs).
struct Streams {
    records: stream::Stream,
    dead: stream::Stream,
    disabled: stream::Stream,
    attempts: Option<stream::Stream>,
}

/// Sizes as last read (for `depths` and `usage`, which do no I/O).
#[derive(Default)]
struct Known {
    depths: HashMap<String, (u64, u64)>,
    usage: (u64, u64),
    /// The destinations disabled, by any instance.
    disabled: HashSet<String>,
}

struct Inner {
    client: async_nats::Client,
    context: jetstream::Context,
    names: Names,
    records: stream::Stream,
    dead: stream::Stream,
    disabled: stream::Stream,
    /// Each retried record's attempt log, kept while it waits (see `Inner::settle`);
    /// `None` when only looking (`xf spool`).
    attempts: Option<stream::Stream>,
    ack_wait: Duration,
    consumers: tokio::sync::Mutex<HashMap<Arc<str>, consumer::PullConsumer>>,
    leases: Mutex<HashMap<u64, Lease>>,
    known: Mutex<Known>,
    /// Destinations whose last pull went unanswered (logged once).
    unanswered: Mutex<HashSet<String>>,
}

/// The queue on a JetStream server (or cluster); cheap to clone.
#[derive(Clone)]
pub struct JetStream {
    inner: Arc<Inner>,
}

/// A connection problem, as the receiver's 503 and the logs say it.
fn unavailable(what: &str, error: impl std::fmt::Display) -> SpoolError {
    SpoolError::Unavailable(format!("{what}: {error}"))
}

impl JetStream {
    /// Connects, creates the streams and limits that are missing (or
    /// updates their limits), and starts the tasks that keep leases alive and
    /// sizes known.
    pub async fn open(options: &NatsOptions) -> Result<JetStream, OpenError> {
        let (client, context) = connect(options).await?;
        let names = Names::new(&options.prefix);
        let storage = |name: &str, subjects: Vec<String>, retention| stream::Config {
            name: name.to_string(),
            subjects,
            retention,
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::New,
            max_bytes: options.limits.max_bytes.min(i64::MAX as u64) as i64,
            max_messages: options.limits.max_records.min(i64::MAX as u64) as i64,
            num_replicas: options.replicas.max(1),
            duplicate_window: options.duplicate_window,
            ..Default::default()
        };
        let records = ensure_stream(
            &context,
            storage(
                &names.records_stream,
                vec![names.records_wildcard()],
                stream::RetentionPolicy::WorkQueue,
            ),
        )
        .await?;
        let dead = ensure_stream(
            &context,
            storage(
                &names.dead_stream,
                vec![names.dead_wildcard()],
                stream::RetentionPolicy::Limits,
            ),
        )
        .await?;
        // One message per disabled destination, on its own subject; enabling
        // purges the subject. (A key-value bucket is this, but nats-server 2.9
        // answers async-nats' bucket creation in a form it cannot read.)
        let disabled = ensure_stream(
            &context,
            stream::Config {
                max_messages_per_subject: 1,
                max_bytes: 1 << 20,
                max_messages: 100_000,
                ..storage(
                    &names.disabled_stream,
                    vec![names.disabled_wildcard()],
                    stream::RetentionPolicy::Limits,
                )
            },
        )
        .await?;
        // A record's attempt log while it waits for its next attempt, on a
        // subject of its own (one message each: the last log). Messages are
        // immutable, and the next attempt may be any instance's: the log
        // goes with the queue, not with the instance that made the attempt.
        let attempts = ensure_stream(
            &context,
            stream::Config {
                max_messages_per_subject: 1,
                max_bytes: ATTEMPTS_MAX_BYTES,
                max_messages: -1,
                // Past its limit, the oldest logs go: a record keeps its count
                // (JetStream's) and loses only the history.
                discard: stream::DiscardPolicy::Old,
                ..storage(
                    &names.attempts_stream,
                    vec![names.attempts_wildcard()],
                    stream::RetentionPolicy::Limits,
                )
            },
        )
        .await?;
        let streams = Streams {
            records,
            dead,
            disabled,
            attempts: Some(attempts),
        };
        let queue = JetStream::with(client, context, names, streams, options);
        queue.inner.refresh().await;
        tokio::spawn(keep_leases(Arc::downgrade(&queue.inner)));
        tokio::spawn(keep_known(Arc::downgrade(&queue.inner)));
        Ok(queue)
    }

    /// Connects to a queue the servers made, to look into it (`xf spool`):
    /// nothing is created or changed.
    pub async fn look(options: &NatsOptions) -> Result<JetStream, SpoolError> {
        let (client, context) = connect(options).await.map_err(|e| e.error)?;
        let names = Names::new(&options.prefix);
        let missing = |what: &str, error: &dyn std::fmt::Display| {
            SpoolError::Unavailable(format!(
                "{what}: {error} (no xf queue with the prefix `{}` on this server)",
                names.prefix
            ))
        };
        let records = context
            .get_stream(&names.records_stream)
            .await
            .map_err(|e| missing(&names.records_stream, &e))?;
        let dead = context
            .get_stream(&names.dead_stream)
            .await
            .map_err(|e| missing(&names.dead_stream, &e))?;
        let disabled = context
            .get_stream(&names.disabled_stream)
            .await
            .map_err(|e| missing(&names.disabled_stream, &e))?;
        // Only looking: the attempt logs are the servers' business.
        let streams = Streams {
            records,
            dead,
            disabled,
            attempts: None,
        };
        let queue = JetStream::with(client, context, names, streams, options);
        queue.inner.refresh().await;
        Ok(queue)
    }

    fn with(
        client: async_nats::Client,
        context: jetstream::Context,
        names: Names,
        streams: Streams,
        options: &NatsOptions,
    ) -> JetStream {
        let Streams {
            records,
            dead,
            disabled,
            attempts,
        } = streams;
        JetStream {
            inner: Arc::new(Inner {
                client,
                context,
                names,
                records,
                dead,
                disabled,
                attempts,
                ack_wait: options.ack_wait.max(Duration::from_secs(1)),
                consumers: tokio::sync::Mutex::new(HashMap::new()),
                leases: Mutex::new(HashMap::new()),
                known: Mutex::new(Known::default()),
                unanswered: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// The names used on the server.
    pub fn names(&self) -> &Names {
        &self.inner.names
    }

    /// Per destination with a consumer: records not yet delivered to any
    /// instance, records in flight (delivered, not acked), and records
    /// delivered more than once.
    pub async fn consumers(&self) -> Result<Vec<(String, u64, u64, u64)>, SpoolError> {
        let mut consumers = self.inner.records.consumers();
        let mut found = Vec::new();
        while let Some(info) = consumers.next().await {
            let info = info.map_err(|error| unavailable("read the consumers", error))?;
            found.push((
                untoken(&info.name),
                info.num_pending,
                info.num_ack_pending as u64,
                info.num_redelivered as u64,
            ));
        }
        found.sort();
        Ok(found)
    }

    /// Deletes the queued records (`dead`: false) or dead letters of one
    /// destination, or all; returns how many.
    pub async fn purge(&self, dead: bool, destination: Option<&str>) -> Result<u64, SpoolError> {
        let inner = &self.inner;
        let (stream, subject) = match (dead, destination) {
            (false, Some(d)) => (&inner.records, Some(inner.names.records_subject(d))),
            (false, None) => (&inner.records, None),
            (true, Some(d)) => (&inner.dead, Some(inner.names.dead_subject(Some(d)))),
            (true, None) => (&inner.dead, None),
        };
        let purged = match subject {
            Some(subject) => stream.purge().filter(subject).await,
            None => stream.purge().await,
        }
        .map_err(|error| unavailable("purge", error))?;
        Ok(purged.purged)
    }

    /// Reads up to `limit` messages of the records (or dead) stream from
    /// sequence `from` on, oldest first, as (destination, message); they stay
    /// where they are.
    pub async fn peek(
        &self,
        dead: bool,
        destination: Option<&str>,
        from: u64,
        limit: u64,
    ) -> Result<Vec<(Option<String>, jetstream::message::StreamMessage)>, SpoolError> {
        let inner = &self.inner;
        let (stream, subject) = if dead {
            (
                &inner.dead,
                match destination {
                    Some(d) => inner.names.dead_subject(Some(d)),
                    None => inner.names.dead_wildcard(),
                },
            )
        } else {
            (
                &inner.records,
                match destination {
                    Some(d) => inner.names.records_subject(d),
                    None => inner.names.records_wildcard(),
                },
            )
        };
        self.read(stream, subject, from, limit).await
    }

    /// The last sequence of the dead-letter stream now: a replay goes no
    /// further, so that a dead letter it writes is not replayed by itself.
    pub async fn dead_last_sequence(&self) -> Result<u64, SpoolError> {
        self.inner
            .dead
            .get_info()
            .await
            .map(|info| info.state.last_sequence)
            .map_err(|error| unavailable("read the dead letters", error))
    }

    /// The dead letters of the transform (subject `{prefix}.dead.transform`)
    /// from sequence `from` on, at most `limit`, oldest first.
    pub async fn transform_failures(
        &self,
        from: u64,
        limit: u64,
    ) -> Result<Vec<jetstream::message::StreamMessage>, SpoolError> {
        let inner = &self.inner;
        let subject = inner.names.dead_subject(None);
        let found = self.read(&inner.dead, subject, from, limit).await?;
        Ok(found.into_iter().map(|(_, message)| message).collect())
    }

    /// Puts `replacement` in the place of the transform's dead letter
    /// `letter` (`xf spool replay --transform`): its records and the dead
    /// letters of destinations whose `when` failed are published, or, when
    /// the transform still fails for another reason, a dead letter with
    /// that reason; then `letter` is deleted. Published first, deleted
    /// second: stopped in between, the record is queued and still a dead
    /// letter, and the next replay publishes it again under the same ids,
    /// which JetStream keeps once within its duplicate window (after it, the
    /// destination gets it twice with one `xf-record-id`: at least once, never
    /// lost). Returns false, having done nothing, when `letter` is gone (another
    /// replay, a purge) or still fails for the reason it has.
    pub async fn replace_transform_failure(
        &self,
        letter: &jetstream::message::StreamMessage,
        replacement: Replacement,
    ) -> Result<bool, SpoolError> {
        let inner = &self.inner;
        let still_there = inner
            .dead
            .raw_message_builder()
            .sequence(letter.sequence)
            .send()
            .await;
        match still_there {
            Ok(_) => {}
            Err(error) if matches!(error.kind(), stream::RawMessageErrorKind::NoMessageFound) => {
                return Ok(false)
            }
            Err(error) => return Err(unavailable("read a dead letter", error)),
        }
        let header = |name| header(Some(&letter.headers), name).unwrap_or_default();
        match replacement {
            Replacement::Routed { records, dead } => {
                inner.publish_records(records).await?;
                inner.publish_dead(dead).await?;
            }
            Replacement::StillFailing(reason) if one_line(&reason) == header(REASON) => {
                return Ok(false)
            }
            Replacement::StillFailing(reason) => {
                let attempts = Some(header(ATTEMPTS)).filter(|a| !a.is_empty());
                let again = DeadRecord {
                    destination: None,
                    record_id: Arc::from(header(RECORD_ID)),
                    source: Arc::from(header(SOURCE)),
                    received_ms: header(RECEIVED).parse().unwrap_or_else(|_| now_ms()),
                    reason,
                    attempts: attempts.unwrap_or_else(|| "[]".to_string()),
                    body: letter.payload.to_vec(),
                };
                // An id of its own: the dead letter it replaces may be within the duplicate window.
                let id = format!("dead.{}.replay-{}", again.record_id, now_ms());
                inner.publish_dead_as(again, &id).await?;
            }
        }
        inner
            .dead
            .delete_message(letter.sequence)
            .await
            .map_err(|error| unavailable("remove a replayed dead letter", error))?;
        Ok(true)
    }

    /// Up to `limit` messages of `stream` on `subject`, from sequence `from` on.
    async fn read(
        &self,
        stream: &stream::Stream,
        subject: String,
        from: u64,
        limit: u64,
    ) -> Result<Vec<(Option<String>, jetstream::message::StreamMessage)>, SpoolError> {
        let inner = &self.inner;
        let mut found = Vec::new();
        let mut sequence = from.max(1);
        while (found.len() as u64) < limit {
            let next = stream
                .raw_message_builder()
                .sequence(sequence)
                .next_by_subject(subject.clone())
                .send()
                .await;
            let message = match next {
                Ok(message) => message,
                Err(error)
                    if matches!(error.kind(), stream::RawMessageErrorKind::NoMessageFound) =>
                {
                    break
                }
                Err(error) => return Err(unavailable("read a stream", error)),
            };
            sequence = message.sequence + 1;
            let destination = inner
                .names
                .destination_of(message.subject.as_str())
                .flatten();
            found.push((destination, message));
        }
        Ok(found)
    }

    /// Queues the dead letters of one destination (or all) again, for their
    /// own destination or `to`, and removes them; returns how many were
    /// queued and how many the transform failed on stay (those have no
    /// destination to go back to).
    pub async fn replay(
        &self,
        destination: Option<&str>,
        to: Option<&str>,
    ) -> Result<(u64, u64), SpoolError> {
        let (mut replayed, mut left) = (0, 0);
        let mut from = 1;
        loop {
            let letters = self.peek(true, destination, from, 256).await?;
            let Some((_, last)) = letters.last() else {
                return Ok((replayed, left));
            };
            from = last.sequence + 1;
            for (own, letter) in letters {
                let Some(own) = own else {
                    left += 1;
                    continue;
                };
                let target = to.unwrap_or(&own);
                let header = |name| header(Some(&letter.headers), name).unwrap_or_default();
                let record = NewRecord {
                    destination: Arc::from(target),
                    // A new id: the old one may still be in the duplicate window.
                    record_id: Arc::from(format!("{}-replay-{}", header(RECORD_ID), now_ms())),
                    source: Arc::from(header(SOURCE)),
                    body: letter.payload.to_vec(),
                };
                self.inner.publish_records(vec![record]).await?;
                self.inner
                    .dead
                    .delete_message(letter.sequence)
                    .await
                    .map_err(|error| unavailable("remove a replayed dead letter", error))?;
                replayed += 1;
            }
        }
    }
}

/// Connects with the options' credentials and TLS.
async fn connect(
    options: &NatsOptions,
) -> Result<(async_nats::Client, jetstream::Context), OpenError> {
    let connected_before = Arc::new(AtomicBool::new(false));
    let mut connect = async_nats::ConnectOptions::new()
        .name(concat!("xf/", env!("CARGO_PKG_VERSION")))
        .connection_timeout(Duration::from_secs(5))
        // Reconnects without end: records wait in the senders' retries meanwhile (503).
        .max_reconnects(None)
        // Once per change of state, not per try: the client reconnects by itself.
        // (The first connection is logged by whoever opens the queue.)
        .event_callback(move |event| {
            let again = match event {
                async_nats::Event::Connected => connected_before.swap(true, Ordering::SeqCst),
                _ => false,
            };
            async move { log_event(event, again) }
        });

    if let (Some(user), Some(password)) = (&options.user, &options.password) {
        connect = connect.user_and_password(user.clone(), password.clone());
    }
    if let Some(token) = &options.token {
        connect = connect.token(token.clone());
    }
    if let Some(creds) = &options.creds {
        connect = connect.credentials_file(creds).await.map_err(|error| {
            OpenError::lasting(unavailable(
                &format!("the creds file {}", creds.display()),
                error,
            ))
        })?;
    }
    if let Some(ca) = &options.ca_file {
        connect = connect.add_root_certificates(ca.clone()).require_tls(true);
    }
    if options.tls {
        connect = connect.require_tls(true);
    }
    let urls: Vec<&str> = options.url.split(',').map(str::trim).collect();
    let client = connect.connect(urls.as_slice()).await.map_err(|error| {
        use async_nats::ConnectErrorKind as Kind;
        // A server that answered and refused (credentials, TLS) stays
        // refused until the configuration changes; one that did not
        // answer may yet.
        let lasting = matches!(
            error.kind(),
            Kind::Authentication | Kind::AuthorizationViolation | Kind::Tls | Kind::ServerParse
        ) || error.to_string().contains("certificate");
        OpenError {
            error: unavailable(&options.shown_url(), error),
            lasting,
        }
    })?;
    let context = jetstream::new(client.clone());
    Ok((client, context))
}

/// What the NATS client says happened to its connection, logged once each.
fn log_event(event: async_nats::Event, again: bool) {
    match event {
        async_nats::Event::Disconnected => tracing::warn!(
            "lost the connection to NATS: reconnecting (/readyz and webhooks answer 503 meanwhile)"
        ),
        async_nats::Event::Connected if again => tracing::info!("connected to NATS again"),
        async_nats::Event::LameDuckMode => {
            tracing::info!("the NATS server is shutting down (lame duck mode): moving to another")
        }
        _ => {}
    }
}

/// Why the queue could not be opened, and whether trying again may help.
#[derive(Debug)]
pub struct OpenError {
    pub error: SpoolError,
    /// Trying again cannot help until the configuration changes (wrong
    /// credentials, an untrusted certificate, a stream larger than the
    /// server may store): `xf serve` exits rather than waits.
    pub lasting: bool,
}

impl OpenError {
    fn lasting(error: SpoolError) -> OpenError {
        OpenError {
            error,
            lasting: true,
        }
    }
}

impl From<SpoolError> for OpenError {
    /// A server that did not answer, or a cluster still electing its leaders.
    fn from(error: SpoolError) -> OpenError {
        OpenError {
            error,
            lasting: false,
        }
    }
}

/// Creates the stream, or updates the limits of the one there.
async fn ensure_stream(
    context: &jetstream::Context,
    config: stream::Config,
) -> Result<stream::Stream, OpenError> {
    let name = config.name.clone();
    match context.get_stream(&name).await {
        Ok(mut existing) => {
            let info = existing.info().await.map_err(|error| {
                OpenError::from(unavailable(&format!("read stream {name}"), error))
            })?;
            let current = &info.config;
            if current.max_bytes != config.max_bytes
                || current.max_messages != config.max_messages
                || current.duplicate_window != config.duplicate_window
                || current.num_replicas != config.num_replicas
            {
                let mut updated = current.clone();
                updated.max_bytes = config.max_bytes;
                updated.max_messages = config.max_messages;
                updated.duplicate_window = config.duplicate_window;
                updated.num_replicas = config.num_replicas;
                context.update_stream(updated).await.map_err(|error| {
                    OpenError::from(unavailable(&format!("update stream {name}"), error))
                })?;
            }
            Ok(existing)
        }
        Err(_) => {
            let bytes = config.max_bytes;
            context.create_stream(config).await.map_err(|error| {
                // Not enough storage on the server, or a stream of another
                // configuration or with the same subjects there: the
                // operator must change one side.
                let text = error.to_string();
                let lasting = ["10047", "10058", "10065"]
                    .iter()
                    .any(|code| text.contains(code));
                let hint = if text.contains("10047") {
                    format!(
                        " (its limit of {bytes} bytes, spool_max_bytes, is more than the server \
                         may store: lower it, or raise the server's jetstream max_file_store)"
                    )
                } else {
                    String::new()
                };
                OpenError {
                    error: unavailable(&format!("create stream {name}{hint}"), error),
                    lasting,
                }
            })
        }
    }
}

/// Whether a publish was refused because the stream is at its limits.
fn at_limits(error: &jetstream::context::PublishError) -> bool {
    let code = error
        .source()
        .and_then(|source| source.downcast_ref::<jetstream::Error>())
        .map(|error| error.error_code().0);
    matches!(code, Some(STORE_FAILED) | Some(INSUFFICIENT_RESOURCES))
        || error.to_string().contains("maximum")
}

/// A header value on one line (reasons may hold line breaks).
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

impl Inner {
    async fn publish_records(&self, records: Vec<NewRecord>) -> Result<(), SpoolError> {
        let mut acks = Vec::with_capacity(records.len());
        for record in records {
            let mut headers = HeaderMap::new();
            headers.insert(
                "Nats-Msg-Id",
                format!("{}.{}", record.record_id, token(&record.destination)).as_str(),
            );
            headers.insert(RECORD_ID, &*record.record_id);
            headers.insert(SOURCE, one_line(&record.source).as_str());
            headers.insert(RECEIVED, now_ms().to_string().as_str());
            let subject = self.names.records_subject(&record.destination);
            acks.push(self.publish(subject, headers, record.body).await?);
        }
        self.confirm(acks).await
    }

    async fn publish_dead(&self, dead: Vec<DeadRecord>) -> Result<(), SpoolError> {
        let mut acks = Vec::with_capacity(dead.len());
        for letter in dead {
            let id = format!(
                "dead.{}.{}",
                letter.record_id,
                letter.destination.as_deref().map(token).unwrap_or_default()
            );
            acks.push(self.publish_letter(letter, &id).await?);
        }
        self.confirm(acks).await
    }

    /// One dead letter, published with the `Nats-Msg-Id` given.
    async fn publish_dead_as(&self, letter: DeadRecord, id: &str) -> Result<(), SpoolError> {
        let ack = self.publish_letter(letter, id).await?;
        self.confirm(vec![ack]).await
    }

    async fn publish_letter(
        &self,
        letter: DeadRecord,
        id: &str,
    ) -> Result<jetstream::context::PublishAckFuture, SpoolError> {
        let mut headers = HeaderMap::new();
        let destination = letter.destination.as_deref();
        headers.insert("Nats-Msg-Id", id);
        headers.insert(RECORD_ID, &*letter.record_id);
        headers.insert(SOURCE, one_line(&letter.source).as_str());
        headers.insert(RECEIVED, letter.received_ms.to_string().as_str());
        headers.insert(REASON, one_line(&letter.reason).as_str());
        headers.insert(ATTEMPTS, one_line(&letter.attempts).as_str());
        if let Some(destination) = destination {
            headers.insert(DESTINATION, one_line(destination).as_str());
        }
        let subject = self.names.dead_subject(destination);
        self.publish(subject, headers, letter.body).await
    }

    async fn publish(
        &self,
        subject: String,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<jetstream::context::PublishAckFuture, SpoolError> {
        self.context
            .publish_with_headers(subject, headers, body.into())
            .await
            .map_err(|error| unavailable("publish", error))
    }

    /// Waits for the server's acknowledgement of every publish: stored on
    /// file (and on the replicas) by then.
    async fn confirm(
        &self,
        acks: Vec<jetstream::context::PublishAckFuture>,
    ) -> Result<(), SpoolError> {
        let results =
            futures_util::future::join_all(acks.into_iter().map(|ack| ack.into_future())).await;
        for result in results {
            if let Err(error) = result {
                if at_limits(&error) {
                    return Err(SpoolError::Full(format!(
                        "the JetStream stream is at its limits: {error}"
                    )));
                }
                return Err(unavailable("publish", error));
            }
        }
        Ok(())
    }

    async fn consumer(&self, destination: &Arc<str>) -> Result<consumer::PullConsumer, SpoolError> {
        let mut consumers = self.consumers.lock().await;
        if let Some(consumer) = consumers.get(destination) {
            return Ok(consumer.clone());
        }
        let name = token(destination);
        let config = consumer::pull::Config {
            durable_name: Some(name.clone()),
            filter_subject: self.names.records_subject(destination),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            // xf counts the attempts itself (from JetStream's delivery count)
            // and dead-letters at the destination's max_attempts; a limit here
            // would strand a record in the stream, undelivered and not dead.
            max_deliver: -1,
            max_ack_pending: 20_000,
            ..Default::default()
        };
        let what = || format!("the consumer of destination `{destination}`");
        let mut consumer: consumer::PullConsumer = self
            .records
            .get_or_create_consumer(&name, config.clone())
            .await
            .map_err(|error| unavailable(&what(), error))?;
        // Made by an earlier start (or another instance) with another ack
        // wait: the one configured now applies to every instance.
        if consumer.cached_info().config.ack_wait != self.ack_wait {
            let before = consumer.cached_info().config.ack_wait;
            consumer = self
                .records
                .update_consumer(config)
                .await
                .map_err(|error| unavailable(&format!("update {}", what()), error))?;
            tracing::info!(destination = %destination, before_s = before.as_secs_f64(),
                now_s = self.ack_wait.as_secs_f64(), "the consumer's ack wait is updated");
        }
        consumers.insert(Arc::clone(destination), consumer.clone());
        Ok(consumer)
    }

    /// Takes what the server sends for one pull request, until it says the
    /// pull is done or the pull's deadline passes.
    ///
    /// A pull must never wait without a deadline: a pull request the server
    /// never answers is an ordinary event in a cluster. nats-server 2.9 does
    /// not answer a pull sent while the consumer has no leader (a node was
    /// lost and the election is under way), and a pull sent just before the
    /// client reconnects to another node is lost with the connection. In
    /// async-nats 0.45 a fetch without `expires` has no deadline of its own
    /// (its `Batch` sets a timer only from `expires`), so it waited forever
    /// and the destination's delivery stopped for good (issue 29). Each pull
    /// here ends at its deadline, and the next fetch sends a new one.
    async fn take(
        &self,
        destination: &str,
        consumer: &consumer::PullConsumer,
        most: usize,
        wait: Option<Duration>,
    ) -> Result<Vec<jetstream::Message>, SpoolError> {
        let deadline = tokio::time::Instant::now() + wait.unwrap_or_default() + PULL_GRACE;
        let mut batch = match wait {
            Some(wait) => consumer
                .batch()
                .max_messages(most)
                .expires(wait)
                .messages()
                .await
                .map_err(|error| unavailable("fetch", error))?,
            None => consumer
                .fetch()
                .max_messages(most)
                .messages()
                .await
                .map_err(|error| unavailable("fetch", error))?,
        };
        let mut messages = Vec::new();
        let mut answered = false;
        loop {
            match tokio::time::timeout_at(deadline, batch.next()).await {
                Ok(Some(Ok(message))) => {
                    answered = true;
                    messages.push(message);
                }
                Ok(Some(Err(error))) => {
                    // What was received is leased already: keep it, report the rest later.
                    tracing::debug!(%error, "a fetch ended early");
                    answered = true;
                    break;
                }
                Ok(None) => {
                    answered = true;
                    break;
                }
                // Records the server sends to this pull from now on are not
                // taken: they go to another pull after the ack wait.
                Err(_elapsed) => break,
            }
        }
        self.note_pull(destination, answered);
        Ok(messages)
    }

    /// Logs once when a destination's pulls stop being answered, and once
    /// when they are answered again: not on every try.
    fn note_pull(&self, destination: &str, answered: bool) {
        let mut unanswered = self.unanswered.lock().unwrap_or_else(|p| p.into_inner());
        if answered {
            if unanswered.remove(destination) {
                tracing::info!(
                    destination,
                    "JetStream answers this destination's pulls again"
                );
            }
        } else if unanswered.insert(destination.to_string()) {
            tracing::warn!(
                destination,
                grace_ms = PULL_GRACE.as_millis() as u64,
                "JetStream did not answer a pull for this destination in time (a node lost, \
                 its consumer without a leader, or a reconnect): asking again until it does"
            );
        }
    }

    fn lease(&self, messages: Vec<jetstream::Message>) -> Vec<Leased> {
        let now = Instant::now();
        let mut leased = Vec::with_capacity(messages.len());
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        for message in messages {
            let Ok(info) = message.info() else {
                continue;
            };
            let seq = info.stream_sequence;
            let attempts = (info.delivered - 1).max(0) as u32;
            let published = (info.published.unix_timestamp_nanos() / 1_000_000) as i64;
            let header = |name| header(message.headers.as_ref(), name);
            let record_id = header(RECORD_ID).unwrap_or_else(|| format!("nats-{seq}"));
            let received_ms = header(RECEIVED)
                .and_then(|t| t.parse().ok())
                .unwrap_or(published);
            leased.push(Leased {
                seq: seq as i64,
                record_id,
                received_ms,
                attempts,
                // Read from the attempts stream for a record tried before (`fetch`).
                attempt_log: "[]".to_string(),
                body: message.payload.to_vec(),
            });
            leases.insert(
                seq,
                Lease {
                    message,
                    since: now,
                    touched: now,
                },
            );
        }
        leased
    }

    async fn fetch(&self, destination: &Arc<str>, fetch: Fetch) -> Result<Fetched, SpoolError> {
        let consumer = self.consumer(destination).await?;
        let most = fetch.max_records.clamp(1, 10_000);
        let linger = (fetch.linger > Duration::ZERO && most > 1).then_some(fetch.linger);
        let mut messages = self.take(destination, &consumer, most, linger).await?;
        if messages.is_empty() {
            // Nothing now: wait at the server for the next record, whichever
            // instance stores it.
            messages = self
                .take(destination, &consumer, 1, Some(LONG_POLL))
                .await?;
        }
        let mut records = self.lease(messages);
        for record in records.iter_mut().filter(|record| record.attempts > 0) {
            record.attempt_log = self.attempt_log(destination, record.seq as u64).await;
        }
        Ok(Fetched {
            next_due_ms: records.is_empty().then(now_ms),
            records,
        })
    }

    async fn settle(
        &self,
        settles: Vec<Settle>,
        dead: Vec<DeadRecord>,
        destination: &str,
    ) -> Result<(), SpoolError> {
        if !dead.is_empty() {
            self.publish_dead(dead).await?;
        }
        // Dead letters first: a record is acked only once its dead letter is stored.
        let mut letters = Vec::new();
        for settle in &settles {
            if let Settle::Dead {
                seq,
                reason,
                attempt_log,
            } = settle
            {
                let leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(lease) = leases.get(&(*seq as u64)) {
                    let header =
                        |name| header(lease.message.headers.as_ref(), name).unwrap_or_default();
                    letters.push(DeadRecord {
                        destination: Some(Arc::from(destination)),
                        record_id: Arc::from(header(RECORD_ID)),
                        source: Arc::from(header(SOURCE)),
                        received_ms: header(RECEIVED).parse().unwrap_or_else(|_| now_ms()),
                        reason: reason.clone(),
                        attempts: attempt_log.clone(),
                        body: lease.message.payload.to_vec(),
                    });
                }
            }
        }
        if !letters.is_empty() {
            self.publish_dead(letters).await?;
        }
        // A retry's log first: the next attempt, at any instance, reads it.
        let mut logs = Vec::new();
        let mut done_with_log = Vec::new();
        for settle in &settles {
            match settle {
                Settle::Retry {
                    seq, attempt_log, ..
                } => logs.push((*seq as u64, attempt_log.clone())),
                Settle::Delivered(seq) | Settle::Dead { seq, .. } => {
                    let leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(lease) = leases.get(&(*seq as u64)) {
                        if lease.message.info().is_ok_and(|info| info.delivered > 1) {
                            done_with_log.push(*seq as u64);
                        }
                    }
                }
                Settle::Release(_) => {}
            }
        }
        self.keep_attempt_logs(destination, logs).await?;
        for settle in settles {
            let (seq, kind) = match settle {
                Settle::Delivered(seq) => (seq, jetstream::AckKind::Ack),
                Settle::Dead { seq, .. } => (seq, jetstream::AckKind::Ack),
                Settle::Retry { seq, due_ms, .. } => (
                    seq,
                    jetstream::AckKind::Nak(Some(Duration::from_millis(
                        (due_ms - now_ms()).max(0) as u64,
                    ))),
                ),
                Settle::Release(seq) => (seq, jetstream::AckKind::Nak(None)),
            };
            let message = self
                .leases
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&(seq as u64))
                .map(|lease| lease.message.clone());
            if let Some(message) = message {
                // Forgotten only once sent: a settle tried again sends what failed.
                message
                    .ack_with(kind)
                    .await
                    .map_err(|error| unavailable("acknowledge", error))?;
                self.leases
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&(seq as u64));
            }
        }
        // The acks are on the wire once the server answered a ping after them.
        self.client
            .flush()
            .await
            .map_err(|error| unavailable("acknowledge", error))?;
        self.forget_attempt_logs(destination, done_with_log).await;
        Ok(())
    }

    /// Stores the attempt logs of records to be tried again.
    async fn keep_attempt_logs(
        &self,
        destination: &str,
        logs: Vec<(u64, String)>,
    ) -> Result<(), SpoolError> {
        if logs.is_empty() {
            return Ok(());
        }
        let mut acks = Vec::with_capacity(logs.len());
        for (seq, log) in logs {
            let subject = self.names.attempts_subject(destination, seq);
            acks.push(
                self.publish(subject, HeaderMap::new(), log.into_bytes())
                    .await?,
            );
        }
        self.confirm(acks).await
    }

    /// Removes the attempt logs of records delivered or dead (a dead letter
    /// carries its log). Missed removals cost only space, bounded by the
    /// stream's limits.
    async fn forget_attempt_logs(&self, destination: &str, seqs: Vec<u64>) {
        let Some(attempts) = &self.attempts else {
            return;
        };
        for seq in seqs {
            let subject = self.names.attempts_subject(destination, seq);
            if let Err(error) = attempts.purge().filter(subject).await {
                tracing::debug!(%error, "cannot remove an attempt log");
            }
        }
    }

    /// The attempt log of a record tried before: `[]` when there is none
    /// (made before this version, or lost to the stream's limits).
    async fn attempt_log(&self, destination: &str, seq: u64) -> String {
        let Some(attempts) = &self.attempts else {
            return "[]".to_string();
        };
        let subject = self.names.attempts_subject(destination, seq);
        match attempts.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => {
                String::from_utf8(message.payload.to_vec()).unwrap_or_else(|_| "[]".to_string())
            }
            Err(_) => "[]".to_string(),
        }
    }

    /// A work-queue stream removes a record when its consumer acks it; but
    /// nats-server 2.9, killed (`kill -9`) just after acks, comes back with
    /// the acks in the consumer's state and some of those records still in
    /// the stream (seen in tests/nats.rs): delivered, never delivered again,
    /// yet counted against the stream's limits. Records at or below a
    /// consumer's ack floor are done by definition: removed here.
    async fn remove_acked(&self) {
        let mut consumers = self.records.consumers();
        let mut floors = Vec::new();
        while let Some(Ok(info)) = consumers.next().await {
            floors.push((
                info.config.filter_subject.clone(),
                info.ack_floor.stream_sequence,
            ));
        }
        for (subject, floor) in floors {
            for _ in 0..1000 {
                let Ok(first) = self
                    .records
                    .get_first_raw_message_by_subject(&subject, 1)
                    .await
                else {
                    break;
                };
                if first.sequence > floor {
                    break;
                }
                tracing::debug!(sequence = first.sequence, %subject, "removing a record acked before a restart of nats-server");
                if self.records.delete_message(first.sequence).await.is_err() {
                    break;
                }
            }
        }
    }

    /// Reads the per-destination counts and the stream's totals. A
    /// destination's depth is what its consumer has not had acked (not yet
    /// delivered, and in flight); the stream's own count per subject only
    /// for a destination no instance has made a consumer for yet.
    async fn refresh(&self) {
        let mut depths = HashMap::new();
        let Ok(mut subjects) = self
            .records
            .info_with_subjects(self.names.records_wildcard())
            .await
        else {
            return;
        };
        while let Some(Ok((subject, count))) = subjects.next().await {
            if let Some(Some(destination)) = self.names.destination_of(&subject) {
                depths.insert(destination, (count as u64, 0));
            }
        }
        let mut consumers = self.records.consumers();
        while let Some(info) = consumers.next().await {
            let Ok(info) = info else {
                return;
            };
            if let Some(Some(destination)) = self.names.destination_of(&info.config.filter_subject)
            {
                let unacked = info.num_pending + info.num_ack_pending as u64;
                depths.insert(destination, (unacked, 0));
            }
        }
        let usage = match self.records.get_info().await {
            Ok(info) => (info.state.messages, info.state.bytes),
            Err(_) => return,
        };
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.depths = depths;
        known.usage = usage;
    }

    async fn overview(&self) -> Result<Overview, SpoolError> {
        self.refresh().await;
        let depths = self
            .known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .depths
            .clone();
        let mut queued = Vec::new();
        for (destination, (records, _)) in depths {
            if records == 0 {
                continue;
            }
            let oldest_ms = self
                .records
                .get_first_raw_message_by_subject(self.names.records_subject(&destination), 1)
                .await
                .ok()
                .map(|message| {
                    message
                        .headers
                        .get(RECEIVED)
                        .and_then(|v| v.as_str().parse().ok())
                        .unwrap_or((message.time.unix_timestamp_nanos() / 1_000_000) as i64)
                });
            queued.push((
                destination,
                Depth {
                    records,
                    bytes: 0,
                    oldest_ms,
                },
            ));
        }
        queued.sort_by(|a, b| a.0.cmp(&b.0));
        let mut dead = Vec::new();
        let mut subjects = self
            .dead
            .info_with_subjects(self.names.dead_wildcard())
            .await
            .map_err(|error| unavailable("read the dead letters", error))?;
        while let Some(entry) = subjects.next().await {
            let (subject, count) =
                entry.map_err(|error| unavailable("read the dead letters", error))?;
            if let Some(destination) = self.names.destination_of(&subject) {
                dead.push((destination, count as u64));
            }
        }
        dead.sort();
        Ok(Overview {
            queued,
            dead,
            disabled: self.disabled().await?,
        })
    }

    async fn disabled(&self) -> Result<Vec<String>, SpoolError> {
        let mut subjects = self
            .disabled
            .info_with_subjects(self.names.disabled_wildcard())
            .await
            .map_err(|error| unavailable("read the disabled destinations", error))?;
        let prefix = format!("{}.disabled.", self.names.prefix);
        let mut disabled = Vec::new();
        while let Some(entry) = subjects.next().await {
            let (subject, _) =
                entry.map_err(|error| unavailable("read the disabled destinations", error))?;
            if let Some(token) = subject.strip_prefix(&prefix) {
                disabled.push(untoken(token));
            }
        }
        disabled.sort();
        Ok(disabled)
    }

    async fn set_disabled(&self, destination: &str, disabled: bool) -> Result<(), SpoolError> {
        let subject = self.names.disabled_subject(destination);
        if disabled {
            let ack = self
                .context
                .publish(subject, "410".into())
                .await
                .map_err(|error| unavailable("record a disabled destination", error))?;
            ack.await
                .map(|_| ())
                .map_err(|error| unavailable("record a disabled destination", error))
        } else {
            self.disabled
                .purge()
                .filter(subject)
                .await
                .map(|_| ())
                .map_err(|error| unavailable("enable a destination", error))
        }
    }
}

/// Sends progress acks for the records this instance holds, well within the
/// ack wait, so that a slow delivery is not delivered again meanwhile.
async fn keep_leases(inner: Weak<Inner>) {
    loop {
        let every = match inner.upgrade() {
            Some(inner) => inner.ack_wait / 3,
            None => return,
        };
        tokio::time::sleep(every).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let now = Instant::now();
        let due: Vec<jetstream::Message> = {
            let mut leases = inner.leases.lock().unwrap_or_else(|p| p.into_inner());
            leases
                .values_mut()
                .filter(|lease| now.duration_since(lease.touched) >= every)
                .map(|lease| {
                    lease.touched = now;
                    lease.message.clone()
                })
                .collect()
        };
        for message in due {
            if let Err(error) = message.ack_with(jetstream::AckKind::Progress).await {
                tracing::warn!(%error, "cannot tell JetStream a delivery is in progress");
            }
        }
        // Leases a worker never settled (it ended abnormally) go back after a day.
        let mut leases = inner.leases.lock().unwrap_or_else(|p| p.into_inner());
        leases.retain(|_, lease| now.duration_since(lease.since) < Duration::from_secs(86_400));
    }
}

/// Keeps the sizes `depths` and `usage` answer with current, and removes
/// records a consumer has acked that the stream still holds.
async fn keep_known(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(REFRESH).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.remove_acked().await;
        inner.refresh().await;
        // A 410 at one instance disables the destination at every one.
        if let Ok(disabled) = inner.disabled().await {
            inner
                .known
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .disabled = disabled.into_iter().collect();
        }
    }
}

impl Queue for JetStream {
    fn store(&self, records: Vec<NewRecord>, dead: Vec<DeadRecord>) -> Pending<'_, ()> {
        Box::pin(async move {
            self.inner.publish_records(records).await?;
            if !dead.is_empty() {
                self.inner.publish_dead(dead).await?;
            }
            Ok(())
        })
    }

    fn fetch<'a>(&'a self, destination: &'a Arc<str>, fetch: Fetch) -> Pending<'a, Fetched> {
        Box::pin(self.inner.fetch(destination, fetch))
    }

    fn settle<'a>(
        &'a self,
        destination: &'a Arc<str>,
        settles: Vec<Settle>,
        dead: Vec<DeadRecord>,
    ) -> Pending<'a, ()> {
        Box::pin(self.inner.settle(settles, dead, destination))
    }

    /// A settle here returns once the server has it: nothing waits.
    fn flush(&self) -> Pending<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn set_disabled<'a>(&'a self, destination: &'a str, disabled: bool) -> Pending<'a, ()> {
        Box::pin(self.inner.set_disabled(destination, disabled))
    }

    fn disabled(&self) -> Pending<'_, Vec<String>> {
        Box::pin(self.inner.disabled())
    }

    fn overview(&self) -> Pending<'_, Overview> {
        Box::pin(self.inner.overview())
    }

    fn depths(&self) -> HashMap<String, (u64, u64)> {
        self.inner
            .known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .depths
            .clone()
    }

    fn usage(&self) -> (u64, u64) {
        self.inner
            .known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .usage
    }

    fn ready(&self) -> Result<(), String> {
        match self.inner.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            _ => Err("the connection to NATS is lost: reconnecting".to_string()),
        }
    }

    fn disabled_elsewhere(&self, destination: &str) -> bool {
        self.inner
            .known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .disabled
            .contains(destination)
    }
}

/// The JetStream queue as `xf serve` holds it: opened in the background
/// while NATS cannot be reached, so that an instance started before its
/// queue, or while a cluster elects its leaders, waits for it instead of
/// exiting. Until then every operation answers
/// [`SpoolError::Unavailable`]: `/readyz` and webhooks get 503 (with
/// Retry-After), and nothing is accepted that was not stored.
pub struct Reaching {
    queue: Arc<OnceLock<JetStream>>,
    /// Why it is not reached yet (for `/readyz`).
    waiting: Arc<Mutex<String>>,
}

/// How long the first retries wait, and the most any waits.
const REACH_FIRST: Duration = Duration::from_millis(250);
const REACH_MOST: Duration = Duration::from_secs(10);

impl Reaching {
    /// Tries once now; a lasting refusal (credentials, TLS, storage) is an
    /// error for the caller, anything else is tried again with backoff
    /// until it succeeds, logged once when it starts and once when it ends.
    pub async fn start(options: &NatsOptions) -> Result<Reaching, SpoolError> {
        let reaching = Reaching {
            queue: Arc::new(OnceLock::new()),
            waiting: Arc::new(Mutex::new(String::new())),
        };
        match JetStream::open(options).await {
            Ok(queue) => {
                let _ = reaching.queue.set(queue);
            }
            Err(OpenError {
                error,
                lasting: true,
            }) => return Err(error),
            Err(OpenError { error, .. }) => {
                tracing::warn!(
                    queue = %options.shown_url(),
                    %error,
                    "cannot reach the JetStream queue: trying again until it answers \
                     (/readyz and webhooks answer 503 meanwhile)"
                );
                *reaching.waiting.lock().unwrap_or_else(|p| p.into_inner()) = error.to_string();
                tokio::spawn(keep_reaching(
                    options.clone(),
                    Arc::downgrade(&reaching.queue),
                    Arc::clone(&reaching.waiting),
                ));
            }
        }
        Ok(reaching)
    }

    fn queue(&self) -> Result<&JetStream, SpoolError> {
        self.queue.get().ok_or_else(|| {
            let waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            SpoolError::Unavailable(format!("not reached yet ({waiting})"))
        })
    }

    /// `operation` on the queue once it is reached; until then its error.
    fn on<'a, T: Send + 'a>(
        &'a self,
        operation: impl FnOnce(&'a JetStream) -> Pending<'a, T>,
    ) -> Pending<'a, T> {
        match self.queue() {
            Ok(queue) => operation(queue),
            Err(error) => Box::pin(async move { Err(error) }),
        }
    }
}

async fn keep_reaching(
    options: NatsOptions,
    queue: Weak<OnceLock<JetStream>>,
    waiting: Arc<Mutex<String>>,
) {
    let mut pause = REACH_FIRST;
    let mut refused_logged = false;
    loop {
        tokio::time::sleep(pause.mul_f64(0.75 + fastrand::f64() * 0.5)).await;
        pause = (pause * 2).min(REACH_MOST);
        let Some(slot) = queue.upgrade() else {
            return;
        };
        match JetStream::open(&options).await {
            Ok(opened) => {
                tracing::info!(queue = %options.shown_url(), "reached the JetStream queue: ready");
                let _ = slot.set(opened);
                return;
            }
            Err(OpenError { error, lasting }) => {
                if lasting && !refused_logged {
                    refused_logged = true;
                    tracing::error!(queue = %options.shown_url(), %error,
                        "NATS answers, and refuses: trying again until its configuration or xf's changes");
                }
                *waiting.lock().unwrap_or_else(|p| p.into_inner()) = error.to_string();
            }
        }
    }
}

impl Queue for Reaching {
    fn store(&self, records: Vec<NewRecord>, dead: Vec<DeadRecord>) -> Pending<'_, ()> {
        self.on(|queue| queue.store(records, dead))
    }

    fn fetch<'a>(&'a self, destination: &'a Arc<str>, fetch: Fetch) -> Pending<'a, Fetched> {
        self.on(|queue| queue.fetch(destination, fetch))
    }

    fn settle<'a>(
        &'a self,
        destination: &'a Arc<str>,
        settles: Vec<Settle>,
        dead: Vec<DeadRecord>,
    ) -> Pending<'a, ()> {
        self.on(|queue| queue.settle(destination, settles, dead))
    }

    fn flush(&self) -> Pending<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn set_disabled<'a>(&'a self, destination: &'a str, disabled: bool) -> Pending<'a, ()> {
        self.on(|queue| queue.set_disabled(destination, disabled))
    }

    fn disabled(&self) -> Pending<'_, Vec<String>> {
        self.on(|queue| queue.disabled())
    }

    fn overview(&self) -> Pending<'_, Overview> {
        self.on(|queue| queue.overview())
    }

    fn depths(&self) -> HashMap<String, (u64, u64)> {
        self.queue().map(|queue| queue.depths()).unwrap_or_default()
    }

    fn usage(&self) -> (u64, u64) {
        self.queue().map(|queue| queue.usage()).unwrap_or_default()
    }

    fn ready(&self) -> Result<(), String> {
        self.queue()
            .map_err(|error| error.to_string())
            .and_then(|queue| queue.ready())
    }

    fn disabled_elsewhere(&self, destination: &str) -> bool {
        self.queue()
            .is_ok_and(|queue| queue.disabled_elsewhere(destination))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_one_token_and_back() {
        for name in ["splunk", "a b.c*>", "hec-1_x", "é", "=41"] {
            let token = token(name);
            assert!(token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-=".contains(&b)));
            assert_eq!(untoken(&token), name, "{token}");
        }
    }

    #[test]
    fn subjects_name_their_destination() {
        let names = Names::new("xf");
        assert_eq!(names.records_subject("a b"), "xf.records.a=20b");
        assert_eq!(
            names.destination_of("xf.records.a=20b"),
            Some(Some("a b".into()))
        );
        assert_eq!(
            names.destination_of(&names.dead_subject(Some("s"))),
            Some(Some("s".into()))
        );
        assert_eq!(names.destination_of("xf.dead.transform"), Some(None));
        assert_eq!(names.destination_of("other.thing"), None);
    }
}
