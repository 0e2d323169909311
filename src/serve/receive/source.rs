//! A source: where webhooks are received, who may send them, and the
//! transform they go through.

use std::sync::{Arc, OnceLock};

use super::auth::Auth;
use super::rate::Rates;
use crate::serve::metrics::SourceCounters;
use crate::value::untouched::FieldSet;
use crate::Transform;

/// Where webhooks are received.
pub struct Source {
    /// Its name in the pipeline (`default` in the quick start), for `from`.
    pub name: String,
    /// The URL path (`/` in the quick start).
    pub path: String,
    pub transform: Arc<Transform>,
    /// Who may send: its address allow-list and authentication ([`super::auth`]).
    pub auth: Arc<Auth>,
    /// How many requests it takes per second, in all and per client address.
    pub rates: Arc<Rates>,
    /// Its counters in `/metrics`, looked up at its first request.
    pub counters: OnceLock<SourceCounters>,
    /// The top-level fields that routing its records can see (`None`: all),
    /// worked out at its first request ([`crate::serve::route::fields_seen_by`]).
    pub fields_seen: OnceLock<Option<FieldSet>>,
}
