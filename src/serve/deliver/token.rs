//! OAuth 2.0 client credentials on the way out: the token a destination's
//! requests carry, fetched from its token endpoint, kept until shortly before
//! it expires, fetched once for all the requests that need it at a time, and
//! fetched anew when the destination answers 401.

use std::time::{Duration, Instant};

use reqwest::header::HeaderValue;
use serde_json::Value;

/// A token is fetched anew this long before it expires.
const EARLY: Duration = Duration::from_secs(60);
/// What a token without `expires_in` is taken to last.
const ASSUMED_LIFETIME: Duration = Duration::from_secs(3600);
/// The most of a token endpoint's answer read.
const MAX_ANSWER: usize = 64 << 10;

/// How the client's id and secret are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic (RFC 6749 §2.3.1, which every server must take).
    Basic,
    /// `client_id` and `client_secret` among the body's parameters.
    Body,
}

/// A destination's client credentials and its cached token.
pub struct TokenSource {
    pub token_url: reqwest::Url,
    pub client_id: String,
    client_secret: String,
    pub client_auth: ClientAuth,
    /// The body as JSON instead of a form.
    pub json: bool,
    /// `scope`, `audience` and any other parameters, in order.
    pub params: Vec<(String, String)>,
    cached: tokio::sync::Mutex<Option<(HeaderValue, Instant)>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TokenSource({}, client {})",
            self.token_url, self.client_id
        )
    }
}

impl TokenSource {
    pub fn new(token_url: reqwest::Url, client_id: String, client_secret: String) -> TokenSource {
        TokenSource {
            token_url,
            client_id,
            client_secret,
            client_auth: ClientAuth::Basic,
            json: false,
            params: Vec::new(),
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The `Authorization` value for a request: the cached token, or one
    /// fetched now (once, however many requests wait for it).
    pub async fn authorization(
        &self,
        client: &reqwest::Client,
        timeout: Duration,
    ) -> Result<HeaderValue, String> {
        let mut cached = self.cached.lock().await;
        if let Some((value, until)) = &*cached {
            if Instant::now() < *until {
                return Ok(value.clone());
            }
        }
        let (value, until) = self.fetch(client, timeout).await?;
        *cached = Some((value.clone(), until));
        Ok(value)
    }

    /// Forgets the token `used` (the destination answered 401 to it), unless
    /// another request has already replaced it.
    pub async fn forget(&self, used: &HeaderValue) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|(value, _)| value == used) {
            *cached = None;
        }
    }

    async fn fetch(
        &self,
        client: &reqwest::Client,
        timeout: Duration,
    ) -> Result<(HeaderValue, Instant), String> {
        let mut params: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
        if self.client_auth == ClientAuth::Body {
            params.push(("client_id", &self.client_id));
            params.push(("client_secret", &self.client_secret));
        }
        params.extend(self.params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut request = client.post(self.token_url.clone()).timeout(timeout);
        if self.client_auth == ClientAuth::Basic {
            // RFC 6749 §2.3.1: each part form-encoded, then Basic.
            let encode =
                |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
            request =
                request.basic_auth(encode(&self.client_id), Some(encode(&self.client_secret)));
        }
        request = if self.json {
            let object: serde_json::Map<String, Value> = params
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect();
            request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(Value::Object(object).to_string())
        } else {
            let body: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish();
            request
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body)
        };
        let response = request.send().await.map_err(|e| {
            format!(
                "the token endpoint: {}",
                if e.is_timeout() {
                    "timed out"
                } else {
                    "cannot be reached"
                }
            )
        })?;
        let status = response.status();
        let mut body = Vec::new();
        let mut response = response;
        while body.len() < MAX_ANSWER {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !status.is_success() {
            // RFC 6749 §5.2's error code only: never the body at large, which may echo secrets.
            let error = answer["error"].as_str().unwrap_or("no error code");
            return Err(format!(
                "the token endpoint answered {}: {error}",
                status.as_u16()
            ));
        }
        let token = answer["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or("the token endpoint's answer has no access_token")?;
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            "the token endpoint's access_token cannot be sent in a header".to_string()
        })?;
        value.set_sensitive(true);
        let lifetime = answer["expires_in"]
            .as_u64()
            .or_else(|| answer["expires_in"].as_str().and_then(|s| s.parse().ok()))
            .map_or(ASSUMED_LIFETIME, Duration::from_secs)
            // Whatever the endpoint says, a token is asked for again within a day.
            .min(Duration::from_secs(86_400));
        // Fetched again a minute early, or at half its life if it is short.
        let early = EARLY.min(lifetime / 2);
        let now = Instant::now();
        Ok((value, now.checked_add(lifetime - early).unwrap_or(now)))
    }
}
