//! Rate limits: how many requests a source takes per second, in all and from
//! one client address, answered 429 with Retry-After beyond them.
//!
//! Limits are GCRA buckets (`governor`): a burst of up to one second's worth,
//! then the rate. The per-address limit is checked before authentication, so
//! that guessing secrets is slow too; the per-source limit after it, so that
//! a flood of unauthenticated requests cannot use up the legitimate senders'
//! allowance. IPv6 clients are counted by their /64 network (one host holds a
//! whole one). The addresses tracked are bounded: past
//! [`MAX_TRACKED_ADDRESSES`] the idle ones are forgotten, and while all are
//! busy a new address is refused (its 429 says to come back).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// The most client addresses a source's per-address limit keeps track of.
pub const MAX_TRACKED_ADDRESSES: usize = 100_000;

/// A source's rate limits (none by default).
#[derive(Default)]
pub struct Rates {
    /// All requests to the source, per second.
    source: Option<DefaultDirectRateLimiter>,
    /// Requests from one client address (an IPv6 /64), per second.
    client: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// When idle addresses were last forgotten (epoch seconds).
    cleaned: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Rates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rates")
            .field("source", &self.source.is_some())
            .field("client", &self.client.is_some())
            .finish()
    }
}

impl Rates {
    /// Limits of `source` and `client` requests per second (`None`: no limit).
    pub fn new(source: Option<NonZeroU32>, client: Option<NonZeroU32>) -> Rates {
        Rates {
            source: source.map(|rate| RateLimiter::direct(Quota::per_second(rate))),
            client: client.map(|rate| RateLimiter::keyed(Quota::per_second(rate))),
            cleaned: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Whether a request from `peer` may go on; else how long until it may.
    pub fn check_client(&self, peer: IpAddr) -> Result<(), Duration> {
        let Some(limiter) = &self.client else {
            return Ok(());
        };
        let key = counted_as(peer);
        if limiter.len() >= MAX_TRACKED_ADDRESSES {
            // Idle addresses are forgotten at most once a second: a full table
            // must not make every request a scan of it.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            if self.cleaned.swap(now, std::sync::atomic::Ordering::Relaxed) != now {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
            if limiter.len() >= MAX_TRACKED_ADDRESSES {
                return Err(Duration::from_secs(1));
            }
        }
        limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Whether the source takes one more request now; else how long until it does.
    pub fn check_source(&self) -> Result<(), Duration> {
        match &self.source {
            None => Ok(()),
            Some(limiter) => limiter
                .check()
                .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now())),
        }
    }
}

/// The address a client is counted as: itself, or for IPv6 its /64.
fn counted_as(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => peer,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::V6(segments.into())
        }
    }
}

/// The Retry-After seconds of a wait: whole seconds, at least one.
pub fn retry_after(wait: Duration) -> u64 {
    let rounded_up = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    rounded_up.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_over_its_rate_waits_and_others_do_not() {
        let rates = Rates::new(None, NonZeroU32::new(2));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(rates.check_client(a).is_ok());
        assert!(rates.check_client(a).is_ok());
        let wait = rates.check_client(a).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(rates.check_client(b).is_ok());
        assert!(rates.check_source().is_ok(), "no source limit");
    }

    #[test]
    fn an_ipv6_network_counts_as_one_client() {
        let rates = Rates::new(None, NonZeroU32::new(1));
        assert!(rates.check_client("2001:db8::1".parse().unwrap()).is_ok());
        assert!(rates
            .check_client("2001:db8::ffff:2".parse().unwrap())
            .is_err());
        assert!(rates
            .check_client("2001:db8:0:1::1".parse().unwrap())
            .is_ok());
    }

    #[test]
    fn retry_after_is_whole_seconds_at_least_one() {
        assert_eq!(retry_after(Duration::ZERO), 1);
        assert_eq!(retry_after(Duration::from_millis(10)), 1);
        assert_eq!(retry_after(Duration::from_secs(2)), 2);
        assert_eq!(retry_after(Duration::from_millis(2500)), 3);
    }
}
