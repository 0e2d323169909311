//! The durable queue records wait in between receipt and delivery, as an
//! interface: what the server and its delivery workers ask of it. The
//! embedded SQLite spool ([`super::spool::Spool`]) implements it; a queue on
//! a server of its own (NATS JetStream, for several instances) can too,
//! with the same semantics: `store` returns once the records are durable,
//! `fetch` leases due records to one worker, `settle` says what became of
//! them, and a lease that is never settled (a crash) is delivered again.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::spool::{DeadRecord, Fetch, Fetched, NewRecord, Overview, Settle, Spool, SpoolError};

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
