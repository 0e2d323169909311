//! Who may send to a source: its address allow-list and its authentication,
//! checked before anything of the request is kept.
//!
//! - Credentials sent in headers (Basic, an API key in a header or the query,
//!   a Bearer token) are checked from the request head, before the body is read:
//!   an unauthenticated sender never gets a 10 MiB body buffered.
//! - Signatures (Standard Webhooks, GitHub's `X-Hub-Signature-256`) are checked
//!   on the exact bytes received (before any gzip decoding), once the body is in.
//! - Every source may hold several secrets at once, so that a secret is rotated
//!   without downtime: add the new one, move the senders, remove the old one.
//! - Comparisons are constant-time: a secret given is hashed (SHA-256) and the
//!   digest compared with `subtle`, against every configured secret without
//!   stopping at a match; signatures are verified with `ring::hmac::verify`.
//!   Only digests and HMAC keys are kept in memory, never a password in clear.
//! - A refusal says what was wrong in fixed words (never a secret, never what
//!   was sent): 401 when credentials are missing or wrong (with the
//!   `WWW-Authenticate` challenge RFC 9110 requires), 403 when the sender's
//!   address is not allowed (authenticating would not change the answer).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hyper::header::{HeaderMap, HeaderName, AUTHORIZATION};
use hyper::StatusCode;
use ipnet::IpNet;
use ring::hmac;

use super::digest::Digest;
use super::oauth::{Issuer, Jwks, Verdict};

/// The default tolerance of a Standard Webhooks timestamp: 5 minutes either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The most webhook ids a source remembers against replays (each for twice
/// the tolerance); past it the oldest are forgotten first.
pub const SEEN_IDS_LIMIT: usize = 100_000;

/// A source's rules for who may send.
#[derive(Debug, Default)]
pub struct Auth {
    /// Addresses (and networks) that may send; empty: any address.
    pub allow: Vec<IpNet>,
    pub scheme: Scheme,
    /// Standard Webhooks ids seen recently (see [`Seen`]).
    seen: Arc<Seen>,
}

/// The sources' replay windows by path, kept across reloads: a message seen
/// before a reload (SIGHUP, a renewed certificate, a rotated secret file) is
/// still seen after it.
fn window_of(path: &str) -> Arc<Seen> {
    static WINDOWS: OnceLock<Mutex<HashMap<String, Arc<Seen>>>> = OnceLock::new();
    let windows = WINDOWS.get_or_init(Mutex::default);
    let mut windows = windows.lock().unwrap_or_else(|p| p.into_inner());
    Arc::clone(windows.entry(path.to_string()).or_default())
}

impl Auth {
    /// The header an `api_key` source takes its key from: a secret, which
    /// `request.headers` never shows ([`crate::apply::Request`]).
    pub fn key_header(&self) -> Option<&str> {
        match &self.scheme {
            Scheme::ApiKey {
                place: KeyPlace::Header(name),
                ..
            } => Some(name.as_str()),
            _ => None,
        }
    }
}

/// How a sender proves who it is.
#[derive(Default)]
pub enum Scheme {
    /// Anyone may send (`auth none`).
    #[default]
    None,
    /// `Authorization: Basic …`: digests of each valid `user:password`.
    Basic(Vec<Digest>),
    /// An API key in a named header, or in a query parameter.
    ApiKey { place: KeyPlace, keys: Vec<Digest> },
    /// `Authorization: Bearer …`: digests of each valid token.
    Bearer(Vec<Digest>),
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    StandardWebhooks {
        keys: Vec<hmac::Key>,
        tolerance: Duration,
    },
    /// GitHub's `X-Hub-Signature-256: sha256=HEX` over the body.
    GitHub(Vec<hmac::Key>),
    /// OAuth client credentials with xf as the authorization server: a Bearer
    /// token xf issued to one of these clients. The issuer is the pipeline's,
    /// set once the whole pipeline is read.
    OAuth {
        clients: Vec<String>,
        issuer: IssuerSlot,
    },
    /// Bearer JWTs of another issuer, checked against its JWKS.
    Jwt(Box<Jwks>),
}

/// Where a source finds the pipeline's token issuer.
pub type IssuerSlot = Arc<OnceLock<Arc<Issuer>>>;

impl std::fmt::Debug for Scheme {
    /// The scheme's name and how many secrets it holds: never a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (name, secrets) = match self {
            Scheme::None => ("none", 0),
            Scheme::Basic(keys) => ("basic", keys.len()),
            Scheme::ApiKey { keys, .. } => ("api_key", keys.len()),
            Scheme::Bearer(keys) => ("bearer", keys.len()),
            Scheme::StandardWebhooks { keys, .. } => ("standard_webhooks", keys.len()),
            Scheme::GitHub(keys) => ("github", keys.len()),
            Scheme::OAuth { clients, .. } => ("oauth", clients.len()),
            Scheme::Jwt(_) => ("jwt", 1),
        };
        write!(f, "{name} ({secrets} secrets)")
    }
}

/// Where an API key is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPlace {
    Header(HeaderName),
    /// A query parameter (`?api_key=…`, as Query.ai's documentation suggests).
    Query(String),
}

/// Why a request was refused, in words that name no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: StatusCode,
    /// The reason, for the JSON error body and the metric label.
    pub reason: &'static str,
    /// The `WWW-Authenticate` challenge of a 401.
    pub challenge: Option<&'static str>,
}

impl Refused {
    fn unauthorized(reason: &'static str, challenge: &'static str) -> Refused {
        Refused {
            status: StatusCode::UNAUTHORIZED,
            reason,
            challenge: Some(challenge),
        }
    }
}

const BASIC_CHALLENGE: &str = "Basic realm=\"xf\", charset=\"UTF-8\"";
const BEARER_CHALLENGE: &str = "Bearer realm=\"xf\"";
const BEARER_INVALID: &str = "Bearer realm=\"xf\", error=\"invalid_token\"";
const KEY_CHALLENGE: &str = "ApiKey realm=\"xf\"";
const SIGNATURE_CHALLENGE: &str = "Signature realm=\"xf\"";

impl Auth {
    pub fn new(allow: Vec<IpNet>, scheme: Scheme) -> Auth {
        Auth {
            allow,
            scheme,
            seen: Arc::default(),
        }
    }

    /// This auth, with the replay window of the source at `path`, the one its
    /// previous loads had.
    pub fn with_window_of(mut self, path: &str) -> Auth {
        self.seen = window_of(path);
        self
    }

    /// Whether the body is needed to authenticate (a signature over it).
    pub fn needs_body(&self) -> bool {
        matches!(
            self.scheme,
            Scheme::StandardWebhooks { .. } | Scheme::GitHub(_)
        )
    }

    /// Whether this source authenticates its senders at all.
    pub fn is_open(&self) -> bool {
        matches!(self.scheme, Scheme::None)
    }

    /// Whether `peer` is an address that may send (any, without `allow`).
    pub fn allows(&self, peer: IpAddr) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|net| net.contains(&peer))
    }

    /// For a source whose issuer's key set is fetched from its URL: fetches
    /// it when the request's Bearer token needs that now (the first token,
    /// a stale set, a key the set does not hold; see `jwks`). Only for an
    /// address that may send, so that strangers make no fetch.
    pub async fn refresh_keys(&self, client: &reqwest::Client, peer: IpAddr, headers: &HeaderMap) {
        let Scheme::Jwt(jwks) = &self.scheme else {
            return;
        };
        if jwks.url().is_none() || !self.allows(peer) {
            return;
        }
        if let Some(token) = credentials(headers, "bearer").map(|t| t.trim().to_string()) {
            jwks.refresh(client, &token).await;
        }
    }

    /// The checks that need only the request head: the address, then
    /// credentials sent in headers or the query.
    pub fn check_head(
        &self,
        peer: IpAddr,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<(), Refused> {
        if !self.allows(peer) {
            return Err(Refused {
                status: StatusCode::FORBIDDEN,
                reason: "this address may not send to this source",
                challenge: None,
            });
        }
        match &self.scheme {
            Scheme::None | Scheme::StandardWebhooks { .. } | Scheme::GitHub(_) => Ok(()),
            Scheme::Basic(secrets) => {
                let Some(encoded) = credentials(headers, "basic") else {
                    return Err(Refused::unauthorized(
                        "Basic credentials are required",
                        BASIC_CHALLENGE,
                    ));
                };
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .unwrap_or_default();
                if Digest::any_matches(secrets, &decoded) {
                    Ok(())
                } else {
                    Err(Refused::unauthorized(
                        "the Basic credentials are not valid",
                        BASIC_CHALLENGE,
                    ))
                }
            }
            Scheme::Bearer(secrets) => {
                let Some(token) = credentials(headers, "bearer") else {
                    return Err(Refused::unauthorized(
                        "a Bearer token is required",
                        BEARER_CHALLENGE,
                    ));
                };
                if Digest::any_matches(secrets, token.trim().as_bytes()) {
                    Ok(())
                } else {
                    Err(Refused::unauthorized(
                        "the Bearer token is not valid",
                        BEARER_INVALID,
                    ))
                }
            }
            Scheme::OAuth { clients, issuer } => {
                let Some(token) = credentials(headers, "bearer") else {
                    return Err(Refused::unauthorized(
                        "a Bearer token is required (POST /oauth/token for one)",
                        BEARER_CHALLENGE,
                    ));
                };
                let client = issuer
                    .get()
                    .and_then(|issuer| issuer.client_of(token.trim()));
                match client {
                    Some(client) if clients.contains(&client) => Ok(()),
                    _ => Err(Refused::unauthorized(
                        "the token is not valid here (expired, or not xf's for this source)",
                        BEARER_INVALID,
                    )),
                }
            }
            Scheme::Jwt(jwks) => {
                let Some(token) = credentials(headers, "bearer") else {
                    return Err(Refused::unauthorized(
                        "a Bearer token is required",
                        BEARER_CHALLENGE,
                    ));
                };
                match jwks.judge(token.trim()) {
                    Verdict::Accepted => Ok(()),
                    Verdict::Refused => Err(Refused::unauthorized(
                        "the token is not valid (signature, issuer, audience or expiry)",
                        BEARER_INVALID,
                    )),
                    // Not the sender's fault: it retries, and the key set is fetched again.
                    Verdict::NoKeys => Err(Refused {
                        status: StatusCode::SERVICE_UNAVAILABLE,
                        reason: "the issuer's key set could not be fetched yet: retry later",
                        challenge: None,
                    }),
                }
            }
            Scheme::ApiKey { place, keys } => {
                let given = match place {
                    KeyPlace::Header(name) => {
                        headers.get(name).map(|value| value.as_bytes().to_vec())
                    }
                    KeyPlace::Query(name) => query.and_then(|query| {
                        form_urlencoded::parse(query.as_bytes())
                            .find(|(key, _)| key == name.as_str())
                            .map(|(_, value)| value.into_owned().into_bytes())
                    }),
                };
                match given {
                    None => Err(Refused::unauthorized(
                        "an API key is required",
                        KEY_CHALLENGE,
                    )),
                    Some(given) if Digest::any_matches(keys, &given) => Ok(()),
                    Some(_) => Err(Refused::unauthorized(
                        "the API key is not valid",
                        KEY_CHALLENGE,
                    )),
                }
            }
        }
    }

    /// The checks over the body as received: signatures. A Standard Webhooks
    /// message that passes gives its id, to be [`Auth::admit`]ted.
    pub fn check_body(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Option<String>, Refused> {
        match &self.scheme {
            Scheme::StandardWebhooks { keys, tolerance } => {
                standard_webhooks(keys, *tolerance, headers, body, now).map(Some)
            }
            Scheme::GitHub(keys) => github(keys, headers, body).map(|()| None),
            _ => Ok(None),
        }
    }

    /// Marks a Standard Webhooks message as being received, once: a second
    /// request with the same id while the first is in flight is refused (409,
    /// to retry), one after it was accepted is [`Admission::Duplicate`].
    pub fn admit(&self, id: &str, now: SystemTime) -> Admission {
        self.seen.admit(id, now)
    }

    /// Records the outcome of an admitted message: accepted (kept for the
    /// replay window) or not (forgotten, so that the sender's retry is taken).
    pub fn settle(&self, id: &str, accepted: bool, now: SystemTime) {
        self.seen
            .settle(id, accepted.then(|| now + self.seen_for()));
    }

    /// [`Auth::settle`] with a window of its own (a sender's delivery id).
    pub fn settle_within(&self, id: &str, accepted: bool, now: SystemTime, window: Duration) {
        self.seen.settle(id, accepted.then(|| now + window));
    }

    /// How long an id is remembered: a message older than the tolerance is
    /// refused by its timestamp, so twice the tolerance covers every replay.
    fn seen_for(&self) -> Duration {
        match &self.scheme {
            Scheme::StandardWebhooks { tolerance, .. } => *tolerance * 2,
            _ => Duration::ZERO,
        }
    }
}

/// The credentials of an `Authorization: SCHEME credentials` header, if it
/// has that scheme (compared case-insensitively, as RFC 9110 says).
fn credentials<'h>(headers: &'h HeaderMap, scheme: &str) -> Option<&'h str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (given, rest) = value.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// A Standard Webhooks secret: `whsec_` and base64, or base64 alone (as the
/// reference libraries take it). Its key is what is signed with.
pub fn standard_webhooks_key(secret: &str) -> Result<hmac::Key, String> {
    let encoded = secret.trim();
    let encoded = encoded.strip_prefix("whsec_").unwrap_or(encoded);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| "a Standard Webhooks secret is `whsec_` followed by base64".to_string())?;
    if bytes.is_empty() {
        return Err("a Standard Webhooks secret is empty".into());
    }
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
}

/// GitHub's HMAC keys: each secret's bytes, as GitHub signs with them.
pub fn github_keys(secrets: &[String]) -> Vec<hmac::Key> {
    secrets
        .iter()
        .map(|s| hmac::Key::new(hmac::HMAC_SHA256, s.as_bytes()))
        .collect()
}

/// The `v1,` signature of one message (what a sender puts in `webhook-signature`).
pub fn standard_webhooks_signature(
    key: &hmac::Key,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let tag = hmac::sign(key, &signed_content(id, timestamp, body));
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
    )
}

fn signed_content(id: &str, timestamp: impl std::fmt::Display, body: &[u8]) -> Vec<u8> {
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    content
}

fn standard_webhooks(
    keys: &[hmac::Key],
    tolerance: Duration,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<String, Refused> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let missing = || {
        Refused::unauthorized(
            "a Standard Webhooks message needs webhook-id, webhook-timestamp and webhook-signature",
            SIGNATURE_CHALLENGE,
        )
    };
    let (Some(id), Some(timestamp), Some(signatures)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) else {
        return Err(missing());
    };
    let Ok(seconds) = timestamp.trim().parse::<i64>() else {
        return Err(Refused::unauthorized(
            "webhook-timestamp is not a number of seconds",
            SIGNATURE_CHALLENGE,
        ));
    };
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
    });
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now.abs_diff(seconds) > tolerance.unsigned_abs() {
        return Err(Refused::unauthorized(
            "webhook-timestamp is outside the tolerance (a delayed or replayed message)",
            SIGNATURE_CHALLENGE,
        ));
    }
    // The timestamp is signed as sent: its text, not the number read from it.
    let content = signed_content(id, timestamp, body);
    let mut valid = false;
    for signature in signatures.split(' ') {
        let Some(encoded) = signature.strip_prefix("v1,") else {
            // Other versions (`v1a,` asymmetric) are not ours to check.
            continue;
        };
        let Ok(tag) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            continue;
        };
        for key in keys {
            valid |= hmac::verify(key, &content, &tag).is_ok();
        }
    }
    if valid {
        Ok(id.to_string())
    } else {
        Err(Refused::unauthorized(
            "no webhook-signature matches the message",
            SIGNATURE_CHALLENGE,
        ))
    }
}

fn github(keys: &[hmac::Key], headers: &HeaderMap, body: &[u8]) -> Result<(), Refused> {
    let Some(signature) = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
    else {
        return Err(Refused::unauthorized(
            "X-Hub-Signature-256 is required",
            SIGNATURE_CHALLENGE,
        ));
    };
    let tag = signature
        .trim()
        .strip_prefix("sha256=")
        .and_then(hex_bytes)
        .unwrap_or_default();
    let mut valid = false;
    for key in keys {
        valid |= hmac::verify(key, body, &tag).is_ok();
    }
    if valid {
        Ok(())
    } else {
        Err(Refused::unauthorized(
            "X-Hub-Signature-256 does not match the body",
            SIGNATURE_CHALLENGE,
        ))
    }
}

/// Hex digits → bytes; `None` for anything else.
fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

/// What a Standard Webhooks id's first sight means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// New: receive it, then [`Auth::settle`].
    New,
    /// Being received by another request right now: answer 409, to be retried.
    InFlight,
    /// Accepted before, within the replay window: nothing is kept again.
    Duplicate,
}

/// Recently seen message ids: in flight, or accepted until a time.
#[derive(Debug, Default)]
struct Seen {
    inner: Mutex<SeenIds>,
}

#[derive(Debug, Default)]
struct SeenIds {
    /// `None`: in flight; `Some(until)`: accepted, remembered until then.
    ids: HashMap<String, Option<SystemTime>>,
    /// Accepted ids in the order they were accepted, to forget the oldest first.
    order: VecDeque<(String, SystemTime)>,
}

impl Seen {
    fn admit(&self, id: &str, now: SystemTime) -> Admission {
        let mut seen = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // Forget what is past its window, and beyond the limit the oldest.
        while let Some((oldest, until)) = seen.order.front().cloned() {
            if until > now && seen.order.len() < SEEN_IDS_LIMIT {
                break;
            }
            seen.order.pop_front();
            if seen.ids.get(&oldest) == Some(&Some(until)) {
                seen.ids.remove(&oldest);
            }
        }
        match seen.ids.get(id) {
            Some(None) => Admission::InFlight,
            Some(Some(_)) => Admission::Duplicate,
            None => {
                seen.ids.insert(id.to_string(), None);
                Admission::New
            }
        }
    }

    /// `kept_until`: accepted, remembered until then; `None`: forgotten.
    fn settle(&self, id: &str, kept_until: Option<SystemTime>) {
        let mut seen = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match kept_until {
            Some(until) => {
                seen.ids.insert(id.to_string(), Some(until));
                seen.order.push_back((id.to_string(), until));
            }
            None => {
                seen.ids.remove(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// The test vector published with the Standard Webhooks specification.
    #[test]
    fn standard_webhooks_reproduce_the_published_vector() {
        let key = standard_webhooks_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let signature =
            standard_webhooks_signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");

        let auth = Auth::new(
            Vec::new(),
            Scheme::StandardWebhooks {
                keys: vec![key],
                tolerance: DEFAULT_TOLERANCE,
            },
        );
        let sent = headers(&[
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            // Several signatures: any one valid is enough.
            (
                "webhook-signature",
                "v1,bm9wZQ== v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
        ]);
        let then = UNIX_EPOCH + Duration::from_secs(1614265330 + 60);
        assert_eq!(
            auth.check_body(&sent, body, then).unwrap().as_deref(),
            Some("msg_p5jXN8AQM9LWM0D4loKWxJek")
        );
        // Other bytes, another time, or no signature at all: refused.
        assert!(auth
            .check_body(&sent, br#"{"test": 2432232315}"#, then)
            .is_err());
        let late = UNIX_EPOCH + Duration::from_secs(1614265330 + 301);
        let refused = auth.check_body(&sent, body, late).unwrap_err();
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert!(refused.reason.contains("tolerance"));
        let unsigned = headers(&[("webhook-id", "x"), ("webhook-timestamp", "1614265330")]);
        assert!(auth.check_body(&unsigned, body, then).is_err());
    }

    /// GitHub's documented example: secret, payload and signature.
    #[test]
    fn github_signatures_match_githubs_example() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"It's a Secret to Everybody");
        let auth = Auth::new(Vec::new(), Scheme::GitHub(vec![key]));
        let signed = headers(&[(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )]);
        assert!(auth
            .check_body(&signed, b"Hello, World!", SystemTime::now())
            .is_ok());
        assert!(auth
            .check_body(&signed, b"Hello, World?", SystemTime::now())
            .is_err());
        assert!(auth
            .check_body(&HeaderMap::new(), b"Hello, World!", SystemTime::now())
            .is_err());
    }

    #[test]
    fn header_credentials_take_any_of_several_secrets() {
        let auth = Auth::new(
            Vec::new(),
            Scheme::Bearer(vec![Digest::of(b"old"), Digest::of(b"new")]),
        );
        for token in ["old", "new"] {
            let sent = headers(&[("authorization", &format!("Bearer {token}"))]);
            assert!(auth.check_head(LOCAL, &sent, None).is_ok());
        }
        let wrong = auth
            .check_head(LOCAL, &headers(&[("authorization", "Bearer other")]), None)
            .unwrap_err();
        assert_eq!(wrong.challenge, Some(BEARER_INVALID));
        let missing = auth.check_head(LOCAL, &HeaderMap::new(), None).unwrap_err();
        assert_eq!(missing.status, StatusCode::UNAUTHORIZED);

        let basic = Auth::new(Vec::new(), Scheme::Basic(vec![Digest::of(b"cii:s3cret")]));
        let sent = headers(&[("authorization", "basic Y2lpOnMzY3JldA==")]);
        assert!(basic.check_head(LOCAL, &sent, None).is_ok());
        let sent = headers(&[("authorization", "Basic Y2lpOnMzY3JldB==")]);
        assert!(basic.check_head(LOCAL, &sent, None).is_err());

        let query = Auth::new(
            Vec::new(),
            Scheme::ApiKey {
                place: KeyPlace::Query("api_key".into()),
                keys: vec![Digest::of(b"k y")],
            },
        );
        assert!(query
            .check_head(LOCAL, &HeaderMap::new(), Some("a=1&api_key=k%20y"))
            .is_ok());
        assert!(query
            .check_head(LOCAL, &HeaderMap::new(), Some("api_key=k"))
            .is_err());
    }

    #[test]
    fn an_address_outside_the_allow_list_is_forbidden() {
        let auth = Auth::new(vec!["10.0.0.0/8".parse().unwrap()], Scheme::None);
        assert!(auth
            .check_head("10.1.2.3".parse().unwrap(), &HeaderMap::new(), None)
            .is_ok());
        let refused = auth.check_head(LOCAL, &HeaderMap::new(), None).unwrap_err();
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
    }

    /// A reload builds a new `Auth`; the source's replay window goes on.
    #[test]
    fn the_replay_window_outlives_a_reload() {
        let key = || standard_webhooks_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let load = || {
            Auth::new(
                Vec::new(),
                Scheme::StandardWebhooks {
                    keys: vec![key()],
                    tolerance: DEFAULT_TOLERANCE,
                },
            )
            .with_window_of("/hooks/reloaded")
        };
        let now = SystemTime::now();
        let before = load();
        assert_eq!(before.admit("m", now), Admission::New);
        before.settle("m", true, now);
        let after = load();
        assert_eq!(after.admit("m", now), Admission::Duplicate);
    }

    #[test]
    fn a_message_id_is_admitted_once() {
        let key = standard_webhooks_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let auth = Auth::new(
            Vec::new(),
            Scheme::StandardWebhooks {
                keys: vec![key],
                tolerance: DEFAULT_TOLERANCE,
            },
        );
        let now = SystemTime::now();
        assert_eq!(auth.admit("a", now), Admission::New);
        assert_eq!(auth.admit("a", now), Admission::InFlight);
        auth.settle("a", false, now);
        assert_eq!(auth.admit("a", now), Admission::New);
        auth.settle("a", true, now);
        assert_eq!(auth.admit("a", now), Admission::Duplicate);
        // Past its window, an id is forgotten.
        let later = now + DEFAULT_TOLERANCE * 3;
        assert_eq!(auth.admit("a", later), Admission::New);
    }
}
