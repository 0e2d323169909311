//! The durable queue records wait in between receipt and delivery, as an
//! interface: what the server and its delivery workers ask of it. The
//! embedded SQLite spool ([`spool::Spool`]) implements it; a queue on
//! a server of its own (NATS JetStream, for several instances) can too,
//! with the same semantics: `store` returns once the records are durable,
//! `fetch` leases due records to one worker, `settle` says what became of
//! them, and a lease that is never settled (a crash) is delivered again.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use std::path::PathBuf;
use std::time::Duration;

#[cfg(feature = "nats")]
pub mod jetstream;
pub mod spool;

use spool::{
    Arriving, DeadRecord, Fetch, Fetched, NewRecord, Overview, Settle, Spool, SpoolError,
    SpoolLimits,
};

/// Where records wait: the embedded spool in a folder, or a JetStream server.
#[derive(Debug, Clone)]
pub enum QueueChoice {
    Embedded(PathBuf),
    Nats(Box<NatsOptions>),
}

/// How to reach JetStream and what to create there (`queue nats "…"`).
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// `nats://host:4222` (or `tls://…`), several separated by commas.
    pub url: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// A `.creds` file (JWT and NKey seed).
    pub creds: Option<PathBuf>,
    /// A CA certificate (PEM) for the server's TLS certificate; implies TLS.
    pub ca_file: Option<PathBuf>,
    /// TLS required even without a CA file (the system's roots).
    pub tls: bool,
    /// The start of every stream and subject name (default `xf`).
    pub prefix: String,
    /// Copies of each stream in a JetStream cluster (default 1).
    pub replicas: usize,
    /// How long a record leased to an instance that stopped answering waits
    /// before another instance gets it (default 30 s).
    pub ack_wait: Duration,
    /// How long a record's id is remembered against a second publish (default 2 min).
    pub duplicate_window: Duration,
    /// The records stream's limits (`spool_max_bytes`, `spool_max_records`).
    pub limits: SpoolLimits,
}

impl NatsOptions {
    pub fn new(url: &str) -> NatsOptions {
        NatsOptions {
            url: url.to_string(),
            user: None,
            password: None,
            token: None,
            creds: None,
            ca_file: None,
            tls: false,
            prefix: "xf".to_string(),
            replicas: 1,
            ack_wait: Duration::from_secs(30),
            duplicate_window: Duration::from_secs(120),
            limits: SpoolLimits::default(),
        }
    }

    /// Whether `url` names NATS servers: `nats://` or `tls://`, several separated by commas.
    pub fn is_url(url: &str) -> bool {
        url.split(',').map(str::trim).all(|one| {
            ["nats://", "tls://"]
                .iter()
                .any(|scheme| one.starts_with(scheme) && one.len() > scheme.len())
        })
    }

    /// Whether `prefix` can start stream and subject names: 1 to 32 letters,
    /// digits, `_` or `-`.
    pub fn is_prefix(prefix: &str) -> bool {
        (1..=32).contains(&prefix.len())
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }

    /// The URL without a password written into it, for logs.
    pub fn shown_url(&self) -> String {
        self.url
            .split(',')
            .map(str::trim)
            .map(|url| match (url.find("://"), url.rfind('@')) {
                (Some(scheme), Some(at)) if at > scheme => {
                    format!("{}://…@{}", &url[..scheme], &url[at + 1..])
                }
                _ => url.to_string(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// What a queue's operations give, later.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, SpoolError>> + Send + 'a>>;

/// A durable, per-destination queue of records and their dead letters.
pub trait Queue: Send + Sync {
    /// Stores records and dead letters durably; returns once they are. Refused
    /// whole ([`SpoolError::Full`]) past the queue's limits.
    fn store(&self, records: Vec<NewRecord>, dead: Vec<DeadRecord>) -> Pending<'_, ()>;

    /// Leases the records of `destination` that are due now.
    fn fetch<'a>(&'a self, destination: &'a Arc<str>, fetch: Fetch) -> Pending<'a, Fetched>;

    /// Records what became of leased records; `dead` are kept beside.
    fn settle<'a>(
        &'a self,
        destination: &'a Arc<str>,
        settles: Vec<Settle>,
        dead: Vec<DeadRecord>,
    ) -> Pending<'a, ()>;

    /// Waits until every settle sent before is written (at a stop).
    fn flush(&self) -> Pending<'_, ()>;

    /// Says that a request is on its way to a store while the answer is
    /// held, for a queue that gathers stores into one sync.
    fn arriving(&self) -> Arriving {
        Arriving::untracked()
    }

    /// Marks a destination disabled (after a 410) or enabled again.
    fn set_disabled<'a>(&'a self, destination: &'a str, disabled: bool) -> Pending<'a, ()>;

    /// The destinations disabled and not enabled since.
    fn disabled(&self) -> Pending<'_, Vec<String>>;

    /// Queue depths, dead-letter counts and disabled destinations.
    fn overview(&self) -> Pending<'_, Overview>;

    /// Records and bytes queued per destination, as last known (no I/O).
    fn depths(&self) -> HashMap<String, (u64, u64)>;

    /// Records and bytes queued in all, as last known (no I/O).
    fn usage(&self) -> (u64, u64);

    /// Whether records can be stored now (no I/O): `Err` says why not (a
    /// queue on a server not reached yet, or whose connection is lost), and
    /// `/readyz` and the receiver answer 503 meanwhile.
    fn ready(&self) -> Result<(), String> {
        Ok(())
    }

    /// Whether the destination was disabled elsewhere, as last known (no
    /// I/O): by another instance sharing the queue, after a 410 there.
    fn disabled_elsewhere(&self, _destination: &str) -> bool {
        false
    }
}

impl Queue for Spool {
    fn store(&self, records: Vec<NewRecord>, dead: Vec<DeadRecord>) -> Pending<'_, ()> {
        Box::pin(Spool::store(self, records, dead))
    }

    fn fetch<'a>(&'a self, destination: &'a Arc<str>, fetch: Fetch) -> Pending<'a, Fetched> {
        Box::pin(Spool::fetch(self, destination, fetch))
    }

    fn settle<'a>(
        &'a self,
        destination: &'a Arc<str>,
        settles: Vec<Settle>,
        dead: Vec<DeadRecord>,
    ) -> Pending<'a, ()> {
        Box::pin(Spool::settle(self, destination, settles, dead))
    }

    fn flush(&self) -> Pending<'_, ()> {
        Box::pin(Spool::flush(self))
    }

    fn arriving(&self) -> Arriving {
        Spool::arriving(self)
    }

    fn set_disabled<'a>(&'a self, destination: &'a str, disabled: bool) -> Pending<'a, ()> {
        Box::pin(Spool::set_disabled(self, destination, disabled))
    }

    fn disabled(&self) -> Pending<'_, Vec<String>> {
        Box::pin(Spool::disabled(self))
    }

    fn overview(&self) -> Pending<'_, Overview> {
        Box::pin(Spool::overview(self))
    }

    fn depths(&self) -> HashMap<String, (u64, u64)> {
        Spool::depths(self)
    }

    fn usage(&self) -> (u64, u64) {
        Spool::usage(self)
    }
}
