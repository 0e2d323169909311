//! An issuer's key set fetched from its URL (`auth jwt jwks_uri "https://…"`),
//! for the tokens it signs: fetched when a token first needs it, kept for
//! as long as the answer's `Cache-Control: max-age` says (within
//! [`MIN_AGE`] and [`MAX_AGE`]; [`DEFAULT_AGE`] without one), fetched again
//! when a token names a key the set does not hold (a rotation) at most once
//! per [`UNKNOWN_KID_INTERVAL`], and, when a fetch fails, the last good set
//! stays in use (tried again at most once per [`RETRY_INTERVAL`]).
//!
//! A fetch reads at most [`MAX_BYTES`] within [`TIMEOUT`], with the client
//! that deliveries use: its names resolved through the request forgery
//! guard, no redirect followed, TLS verified. One fetch at a time per URL;
//! the sets are kept by URL across reloads of the pipeline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;

/// The largest key set read: 256 KiB (a set of a hundred RSA keys is about 150 KiB).
pub const MAX_BYTES: usize = 256 << 10;
/// The most one fetch may take, from connecting to the answer's last byte.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The least time a fetched set is kept (a `max-age` below it, `no-cache`
/// or `no-store` count as this), so that tokens never cost a fetch each.
pub const MIN_AGE: Duration = Duration::from_secs(60);
/// The most time a fetched set is kept, whatever `max-age` says.
pub const MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a set is kept when the answer has no `max-age`.
pub const DEFAULT_AGE: Duration = Duration::from_secs(60 * 60);
/// A token naming a key the set does not hold fetches the set again at most
/// this often: a sender cannot make xf fetch on every request with made-up `kid`s.
pub const UNKNOWN_KID_INTERVAL: Duration = Duration::from_secs(60);
/// After a failed fetch, the next one waits at least this long.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(10);

/// One issuer's key set, by its URL.
pub struct RemoteKeys {
    pub url: reqwest::Url,
    state: RwLock<State>,
    /// Held while fetching: the requests that need the same fetch wait for it.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    /// The last set fetched and read well.
    keys: Option<Arc<JwkSet>>,
    /// Until when it is fresh.
    fresh_until: Option<Instant>,
    /// When the last fetch began, and whether it failed.
    last_attempt: Option<(Instant, bool)>,
    /// When a token's unknown `kid` last made a fetch.
    last_unknown_kid: Option<Instant>,
}

/// Why a fetch is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// No set yet, or the set is stale.
    Stale,
    /// The token names a key the set does not hold.
    UnknownKid,
}

impl std::fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteKeys({})", shown(&self.url))
    }
}

impl RemoteKeys {
    /// The key set of `url`: the one already kept (by an earlier load of the
    /// pipeline), or a new one, fetched when a token first needs it.
    pub fn of(url: reqwest::Url) -> Arc<RemoteKeys> {
        static KEPT: OnceLock<Mutex<HashMap<String, Weak<RemoteKeys>>>> = OnceLock::new();
        let kept = KEPT.get_or_init(Mutex::default);
        let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(keys) = kept.get(url.as_str()).and_then(Weak::upgrade) {
            return keys;
        }
        // The sets no pipeline uses any more go: the map stays as small as the pipelines' URLs.
        kept.retain(|_, keys| keys.strong_count() > 0);
        let keys = Arc::new(RemoteKeys {
            url: url.clone(),
            state: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
        });
        kept.insert(url.as_str().to_string(), Arc::downgrade(&keys));
        keys
    }

    /// The last good set, if one was fetched.
    pub fn keys(&self) -> Option<Arc<JwkSet>> {
        self.read().keys.clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Fetches the set if a token naming `kid` needs that now; a failure
    /// is logged and the last good set stays.
    pub async fn refresh(&self, client: &reqwest::Client, kid: Option<&str>) {
        self.refresh_at(client, kid, Instant::now()).await;
    }

    /// [`RemoteKeys::refresh`] at the time given (tests move the clock).
    pub async fn refresh_at(&self, client: &reqwest::Client, kid: Option<&str>, now: Instant) {
        if self.due(kid, now).is_none() {
            return;
        }
        let _one = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        let Some(due) = self.due(kid, now) else {
            return;
        };
        {
            let mut state = self.write();
            state.last_attempt = Some((now, false));
            if due == Due::UnknownKid {
                state.last_unknown_kid = Some(now);
            }
        }
        match fetch(client, &self.url).await {
            Ok((keys, age)) => {
                let mut state = self.write();
                state.keys = Some(Arc::new(keys));
                state.fresh_until = Some(now + age);
            }
            Err(error) => {
                self.write().last_attempt = Some((now, true));
                tracing::warn!(jwks = %shown(&self.url), %error, "cannot fetch the issuer's key set; the last good one stays in use");
            }
        }
    }

    /// Whether a token naming `kid` needs a fetch at `now`, and why.
    fn due(&self, kid: Option<&str>, now: Instant) -> Option<Due> {
        let state = self.read();
        let since = |at: Option<Instant>| at.map(|at| now.saturating_duration_since(at));
        let failed_lately = matches!(
            state.last_attempt,
            Some((at, true)) if now.saturating_duration_since(at) < RETRY_INTERVAL
        );
        let stale = state.fresh_until.is_none_or(|until| now >= until);
        if stale {
            return (!failed_lately).then_some(Due::Stale);
        }
        let known = |keys: &JwkSet| match kid {
            Some(kid) => keys.find(kid).is_some(),
            // A token without a `kid` may be signed by any key of the set.
            None => true,
        };
        if state.keys.as_deref().is_some_and(known) {
            return None;
        }
        let allowed = since(state.last_unknown_kid).is_none_or(|gone| gone >= UNKNOWN_KID_INTERVAL);
        (allowed && !failed_lately).then_some(Due::UnknownKid)
    }
}

/// Fetches and reads a key set: the set, and how long to keep it.
async fn fetch(client: &reqwest::Client, url: &reqwest::Url) -> Result<(JwkSet, Duration), String> {
    let mut response = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(TIMEOUT)
        .send()
        .await
        .map_err(|error| describe(&error))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("the issuer answered {status}"));
    }
    if response
        .content_length()
        .is_some_and(|length| length > MAX_BYTES as u64)
    {
        return Err(format!("the key set is over {MAX_BYTES} bytes"));
    }
    let age = keep_for(response.headers());
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| describe(&error))? {
        if body.len() + chunk.len() > MAX_BYTES {
            return Err(format!("the key set is over {MAX_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    let text =
        std::str::from_utf8(&body).map_err(|_| "the key set is not UTF-8 text".to_string())?;
    let keys = super::oauth::key_set(text)?;
    Ok((keys, age))
}

/// A fetch error in words, with its cause (reqwest's own message names only the URL).
fn describe(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    if error.is_timeout() {
        return format!("no answer within {} s", TIMEOUT.as_secs());
    }
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// How long an answer may be kept, from its `Cache-Control`, within the bounds.
pub fn keep_for(headers: &reqwest::header::HeaderMap) -> Duration {
    let mut age = None;
    for value in headers.get_all(reqwest::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for directive in value.split(',').map(str::trim) {
            let (name, argument) = directive.split_once('=').unwrap_or((directive, ""));
            let name = name.trim().to_ascii_lowercase();
            match name.as_str() {
                "no-store" | "no-cache" => age = Some(Duration::ZERO),
                "max-age" => {
                    if let Ok(seconds) = argument.trim().trim_matches('"').parse::<u64>() {
                        age = Some(
                            age.unwrap_or(Duration::MAX)
                                .min(Duration::from_secs(seconds)),
                        );
                    }
                }
                _ => {}
            }
        }
    }
    age.unwrap_or(DEFAULT_AGE).clamp(MIN_AGE, MAX_AGE)
}

/// A URL as logs show it: without user, password or query.
fn shown(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, CACHE_CONTROL};

    fn with(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(CACHE_CONTROL, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn max_age_is_kept_within_the_bounds() {
        assert_eq!(keep_for(&with(&[])), DEFAULT_AGE);
        assert_eq!(
            keep_for(&with(&["public, max-age=600"])),
            Duration::from_secs(600)
        );
        assert_eq!(
            keep_for(&with(&["Max-Age=\"900\""])),
            Duration::from_secs(900)
        );
        assert_eq!(keep_for(&with(&["max-age=5"])), MIN_AGE);
        assert_eq!(keep_for(&with(&["max-age=99999999"])), MAX_AGE);
        assert_eq!(keep_for(&with(&["no-store"])), MIN_AGE);
        assert_eq!(keep_for(&with(&["max-age=600", "no-cache"])), MIN_AGE);
        assert_eq!(keep_for(&with(&["max-age=nonsense"])), DEFAULT_AGE);
    }

    /// A key set answered over loopback by a scripted stand-in: (status, body) in turn.
    fn issuer(answers: Vec<(u16, String)>) -> reqwest::Url {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for (status, body) in answers {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncache-control: max-age=300\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        reqwest::Url::parse(&format!("http://{address}/jwks.json")).unwrap()
    }

    fn set(kid: &str) -> String {
        format!(
            r#"{{"keys": [{{"kty": "EC", "crv": "P-256", "kid": "{kid}", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}}]}}"#
        )
    }

    fn kids(keys: &RemoteKeys) -> Vec<String> {
        keys.keys()
            .map(|set| {
                set.keys
                    .iter()
                    .filter_map(|k| k.common.key_id.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The policy with the clock moved: kept while fresh, fetched again when
    /// stale or for an unknown kid (at most once per interval), and the last
    /// good set kept when a fetch fails.
    #[tokio::test]
    async fn fetched_kept_refetched_and_kept_through_a_failure() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = issuer(vec![
            (200, set("a")),
            (200, set("b")),
            (500, "{}".into()),
            (
                200,
                // A good key, but over the limit in all.
                format!(
                    "{}, \"padding\": \"{}\"}}",
                    set("x").trim_end_matches('}'),
                    "x".repeat(MAX_BYTES)
                ),
            ),
            (200, "{\"keys\": []}".into()),
            (200, set("c")),
        ]);
        let client = reqwest::Client::new();
        let keys = RemoteKeys::of(url.clone());
        assert!(Arc::ptr_eq(&keys, &RemoteKeys::of(url)), "one set per URL");
        let t0 = Instant::now();
        keys.refresh_at(&client, Some("a"), t0).await;
        assert_eq!(kids(&keys), ["a"]);
        // Fresh, and the key known: no fetch (the stand-in would answer "b").
        keys.refresh_at(&client, Some("a"), t0 + Duration::from_secs(5))
            .await;
        assert_eq!(kids(&keys), ["a"]);
        // An unknown kid: fetched again, once.
        keys.refresh_at(&client, Some("b"), t0 + Duration::from_secs(6))
            .await;
        assert_eq!(kids(&keys), ["b"]);
        keys.refresh_at(&client, Some("z"), t0 + Duration::from_secs(7))
            .await;
        assert_eq!(kids(&keys), ["b"], "within the interval, no second fetch");
        // Stale (max-age=300): fetched; the issuer fails, the last good set stays.
        let stale = t0 + Duration::from_secs(6 + 301);
        keys.refresh_at(&client, Some("b"), stale).await;
        assert_eq!(kids(&keys), ["b"]);
        // Not again before the retry interval; then a set over the size limit
        // and one that holds no key are refused too.
        keys.refresh_at(&client, Some("b"), stale + Duration::from_secs(1))
            .await;
        keys.refresh_at(&client, Some("b"), stale + RETRY_INTERVAL)
            .await;
        keys.refresh_at(&client, Some("b"), stale + RETRY_INTERVAL * 2)
            .await;
        assert_eq!(kids(&keys), ["b"]);
        keys.refresh_at(&client, Some("b"), stale + RETRY_INTERVAL * 3)
            .await;
        assert_eq!(kids(&keys), ["c"]);
    }
}
