//! OAuth 2.0 client credentials on the way in (RFC 6749 §4.4), both ways a
//! sender may use them:
//!
//! - xf is the authorization server: `POST /oauth/token` with
//!   `grant_type=client_credentials` and the client's id and secret (HTTP
//!   Basic, or in a form or JSON body) answers a short-lived token that xf
//!   signs (a JWT, HS256) and checks on the sources the client may send to
//!   (`auth oauth client "ID" = env "SECRET"`);
//! - another issuer signs the tokens: a source checks them against its JWKS
//!   file, or the key set the issuer publishes at a URL ([`super::jwks`]),
//!   with the issuer and audience it expects, and their expiry
//!   (`auth jwt jwks "keys.json" issuer "…" audience "…"`, or `jwks_uri "https://…"`).
//!
//! Errors are RFC 6749's (§5.2): `invalid_request`, `invalid_client` (401,
//! with a Basic challenge), `unsupported_grant_type`; a token refused at a
//! source is RFC 6750's `invalid_token`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::digest::Digest;
use super::jwks::RemoteKeys;

/// How long a token xf issues is valid, by default: 15 minutes.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Token requests per second from one client address, when no OAuth
/// source sets a `client_rate_limit`: guessing a client secret is slow.
pub const DEFAULT_TOKEN_RATE: u32 = 10;
/// The largest token request body read: 16 KiB.
pub const MAX_TOKEN_REQUEST: usize = 16 << 10;
/// Who xf's tokens are from and for.
const ISSUER: &str = "xf";

/// xf as the authorization server of its sources.
pub struct Issuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    lifetime: Duration,
    /// Each client's secrets (digests; several while one is rotated).
    clients: HashMap<String, Vec<Digest>>,
    /// The addresses that may ask for a token (`None`: any).
    allow: Option<Vec<ipnet::IpNet>>,
    /// Token requests per second from one client address.
    rates: super::rate::Rates,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Issuer({} clients)", self.clients.len())
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    /// The client the token was issued to.
    sub: String,
    iat: u64,
    exp: u64,
}

/// The key xf signs its tokens with when none is configured: made at start,
/// the same for every reload, so tokens live until they expire or xf restarts.
fn process_key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut key = [0; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
            .expect("the system's random source");
        key
    })
}

impl Issuer {
    /// `key`: the signing key (`oauth_key`), shared by instances that accept
    /// each other's tokens; `None`: one made for this process.
    pub fn new(
        key: Option<&[u8]>,
        lifetime: Duration,
        clients: HashMap<String, Vec<Digest>>,
    ) -> Issuer {
        let key = key.unwrap_or(process_key());
        Issuer {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            lifetime,
            clients,
            allow: None,
            rates: super::rate::Rates::new(None, std::num::NonZeroU32::new(DEFAULT_TOKEN_RATE)),
        }
    }

    /// Only `allow` (`None`: any address) may ask for tokens, each address at
    /// most `rate` times a second (`None`: [`DEFAULT_TOKEN_RATE`]).
    pub fn guarded_by(
        mut self,
        allow: Option<Vec<ipnet::IpNet>>,
        rate: Option<std::num::NonZeroU32>,
    ) -> Issuer {
        self.allow = allow;
        let rate = rate.or(std::num::NonZeroU32::new(DEFAULT_TOKEN_RATE));
        self.rates = super::rate::Rates::new(None, rate);
        self
    }

    /// Whether `peer` may ask now: `Err(None)` when its address is not
    /// allowed (403), `Err(Some(wait))` when it asks too often (429).
    pub fn admits(&self, peer: std::net::IpAddr) -> Result<(), Option<Duration>> {
        if let Some(allow) = &self.allow {
            if !allow.iter().any(|net| net.contains(&peer)) {
                return Err(None);
            }
        }
        self.rates.check_client(peer).map_err(Some)
    }

    pub fn has_clients(&self) -> bool {
        !self.clients.is_empty()
    }

    /// Answers a token request: its status, JSON body, and whether the
    /// answer carries a Basic challenge (an `invalid_client` sent with Basic).
    pub fn token(
        &self,
        authorization: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
        now: SystemTime,
    ) -> TokenAnswer {
        let params = match parameters(content_type, body) {
            Ok(params) => params,
            Err(description) => {
                return TokenAnswer::error(400, "invalid_request", description, false)
            }
        };
        let basic = authorization.and_then(|value| {
            let (scheme, rest) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
        });
        // RFC 6749 §2.3.1: the id and secret are form-encoded, then Basic-encoded.
        let from_basic = basic.map(|encoded| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|text| {
                    let (id, secret) = text.split_once(':')?;
                    Some((form_decode(id), form_decode(secret)))
                })
        });
        if let Some(basic) = &from_basic {
            if let Err(description) = one_method(basic.as_ref(), &params) {
                return TokenAnswer::error(400, "invalid_request", description, false);
            }
        }
        let credentials = match from_basic {
            Some(credentials) => credentials,
            None => match (params.get("client_id"), params.get("client_secret")) {
                (Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
                _ => None,
            },
        };
        match params.get("grant_type").map(String::as_str) {
            None => {
                return TokenAnswer::error(400, "invalid_request", "grant_type is missing", false)
            }
            Some("client_credentials") => {}
            Some(_) => {
                return TokenAnswer::error(
                    400,
                    "unsupported_grant_type",
                    "only client_credentials is granted",
                    false,
                )
            }
        }
        let Some((id, secret)) = credentials else {
            return TokenAnswer::error(
                401,
                "invalid_client",
                "client authentication is required",
                true,
            );
        };
        let valid = self
            .clients
            .get(&id)
            .is_some_and(|secrets| Digest::any_matches(secrets, secret.as_bytes()));
        if !valid {
            return TokenAnswer::error(
                401,
                "invalid_client",
                "client authentication failed",
                basic.is_some(),
            );
        }
        let iat = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let claims = Claims {
            iss: ISSUER.into(),
            aud: ISSUER.into(),
            sub: id,
            iat,
            exp: iat + self.lifetime.as_secs(),
        };
        match jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding) {
            Ok(token) => {
                let mut body = json!({
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": self.lifetime.as_secs(),
                });
                if let Some(scope) = params.get("scope") {
                    body["scope"] = Value::String(scope.clone());
                }
                TokenAnswer {
                    status: 200,
                    body,
                    challenge: false,
                }
            }
            Err(_) => {
                TokenAnswer::error(500, "server_error", "the token could not be signed", false)
            }
        }
    }

    /// The client a token xf issued was issued to, if it is valid now.
    pub fn client_of(&self, token: &str) -> Option<String> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[ISSUER]);
        validation.leeway = 0;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .ok()
            .map(|data| data.claims.sub)
    }
}

/// The answer to a token request.
#[derive(Debug)]
pub struct TokenAnswer {
    pub status: u16,
    pub body: Value,
    /// A 401 to a client that used Basic carries `WWW-Authenticate: Basic`.
    pub challenge: bool,
}

impl TokenAnswer {
    fn error(status: u16, error: &str, description: &str, challenge: bool) -> TokenAnswer {
        TokenAnswer {
            status,
            body: json!({"error": error, "error_description": description}),
            challenge,
        }
    }
}

/// RFC 6749 §2.3: "The client MUST NOT use more than one authentication
/// method in each request." With HTTP Basic (`basic`: its id and secret, if
/// it decodes), a `client_secret` among the parameters is a second method,
/// and a `client_id` there may only name the Basic client (§3.2.1 lets a
/// client name itself so). Whichever client would win, the request is refused.
fn one_method(
    basic: Option<&(String, String)>,
    params: &HashMap<String, String>,
) -> Result<(), &'static str> {
    if params.contains_key("client_secret") {
        return Err(
            "the client authenticates twice (HTTP Basic and client_secret): use one method",
        );
    }
    match (basic, params.get("client_id")) {
        (Some((id, _)), Some(named)) if named == id => Ok(()),
        (_, Some(_)) => Err("client_id names another client than HTTP Basic: use one method"),
        (_, None) => Ok(()),
    }
}

/// A token request's parameters: a form (RFC 6749's), or a JSON object of strings.
fn parameters(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<HashMap<String, String>, &'static str> {
    if body.len() > MAX_TOKEN_REQUEST {
        return Err("the request is too large");
    }
    let media = content_type
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/x-www-form-urlencoded") | None => {
            let mut params = HashMap::new();
            for (key, value) in form_urlencoded::parse(body) {
                // RFC 6749 §3.2: a parameter sent twice is an error.
                if params
                    .insert(key.into_owned(), value.into_owned())
                    .is_some()
                {
                    return Err("a parameter is repeated");
                }
            }
            Ok(params)
        }
        Some("application/json") => {
            let value: Value = serde_json::from_slice(body).map_err(|_| "the body is not JSON")?;
            let object = value.as_object().ok_or("the body is not a JSON object")?;
            object
                .iter()
                .map(|(key, value)| match value {
                    Value::String(text) => Ok((key.clone(), text.clone())),
                    Value::Number(n) => Ok((key.clone(), n.to_string())),
                    _ => Err("a parameter is not a string"),
                })
                .collect()
        }
        Some(_) => Err("the body is a form (application/x-www-form-urlencoded) or JSON"),
    }
}

fn form_decode(text: &str) -> String {
    form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

/// Tokens of another issuer, checked against its published keys.
pub struct Jwks {
    keys: Keys,
    issuer: String,
    audience: String,
}

/// Where a source's key set comes from.
enum Keys {
    /// A JWKS file, read with the pipeline.
    File(JwkSet),
    /// The issuer's URL, fetched and kept ([`RemoteKeys`]).
    Url(Arc<RemoteKeys>),
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.keys {
            Keys::File(keys) => write!(f, "Jwks({} keys", keys.keys.len())?,
            Keys::Url(remote) => write!(f, "Jwks({remote:?}")?,
        }
        write!(f, ", issuer {})", self.issuer)
    }
}

/// What a source's key set says of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Refused,
    /// The issuer's key set was never fetched well: nothing can be checked yet.
    NoKeys,
}

/// Reads a JWKS document (`{"keys": [...]}`) as a source takes one, from a
/// file or its issuer's URL: a set without a key, or of symmetric keys only
/// (which xf never accepts for another issuer's tokens), is refused.
pub fn key_set(document: &str) -> Result<JwkSet, String> {
    let keys: JwkSet =
        serde_json::from_str(document).map_err(|e| format!("not a JWKS document: {e}"))?;
    if keys.keys.is_empty() {
        return Err("the JWKS document holds no key".into());
    }
    // HMAC is never accepted for another issuer's tokens (`accepts`):
    // a set of symmetric keys only would let nobody in, silently.
    let symmetric = |jwk: &jsonwebtoken::jwk::Jwk| {
        matches!(
            jwk.algorithm,
            jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
        )
    };
    if keys.keys.iter().all(symmetric) {
        return Err(
            "the JWKS document holds only symmetric (`oct`) keys, which xf never accepts for another issuer's tokens: it needs the issuer's public keys (RSA, EC or OKP)"
                .into(),
        );
    }
    Ok(keys)
}

impl Jwks {
    /// A JWKS document (`{"keys": [...]}`), the issuer and audience tokens must name.
    pub fn new(document: &str, issuer: String, audience: String) -> Result<Jwks, String> {
        Ok(Jwks {
            keys: Keys::File(key_set(document)?),
            issuer,
            audience,
        })
    }

    /// The key set at the issuer's `url`, fetched when a token needs it
    /// ([`Jwks::refresh`]), and the issuer and audience tokens must name.
    pub fn remote(url: reqwest::Url, issuer: String, audience: String) -> Jwks {
        Jwks {
            keys: Keys::Url(RemoteKeys::of(url)),
            issuer,
            audience,
        }
    }

    /// The issuer's URL, for a key set fetched from one.
    pub fn url(&self) -> Option<&reqwest::Url> {
        match &self.keys {
            Keys::File(_) => None,
            Keys::Url(remote) => Some(&remote.url),
        }
    }

    /// Fetches the key set from its URL when `token` needs that now (see
    /// [`RemoteKeys`]); nothing for a file's.
    pub async fn refresh(&self, client: &reqwest::Client, token: &str) {
        if let Keys::Url(remote) = &self.keys {
            let kid = jsonwebtoken::decode_header(token)
                .ok()
                .and_then(|header| header.kid);
            remote.refresh(client, kid.as_deref()).await;
        }
    }

    /// Whether `token` is signed by one of the keys, from the issuer, for the
    /// audience, and not expired.
    pub fn accepts(&self, token: &str) -> bool {
        self.judge(token) == Verdict::Accepted
    }

    /// [`Jwks::accepts`], telling a refusal from a key set not fetched yet.
    pub fn judge(&self, token: &str) -> Verdict {
        let fetched;
        let keys = match &self.keys {
            Keys::File(keys) => keys,
            Keys::Url(remote) => match remote.keys() {
                Some(keys) => {
                    fetched = keys;
                    &*fetched
                }
                None => return Verdict::NoKeys,
            },
        };
        if self.signed_by(keys, token) {
            Verdict::Accepted
        } else {
            Verdict::Refused
        }
    }

    fn signed_by(&self, keys: &JwkSet, token: &str) -> bool {
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return false;
        };
        // A token names its key; without a name, any key of its algorithm may sign it.
        let candidates = keys
            .keys
            .iter()
            .filter(|jwk| match (&header.kid, &jwk.common.key_id) {
                (Some(kid), Some(id)) => kid == id,
                _ => true,
            });
        for jwk in candidates {
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            // The algorithm is the key's, never the token's choice alone (no `none`, no HS with a public key).
            let algorithm = match jwk
                .common
                .key_algorithm
                .and_then(|a| a.to_string().parse::<Algorithm>().ok())
            {
                Some(algorithm) => algorithm,
                None => header.alg,
            };
            if algorithm != header.alg
                || matches!(
                    algorithm,
                    Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
                )
            {
                continue;
            }
            let mut validation = Validation::new(algorithm);
            validation.set_issuer(&[&self.issuer]);
            validation.set_audience(&[&self.audience]);
            validation.set_required_spec_claims(&["exp", "iss", "aud"]);
            validation.validate_nbf = true;
            validation.leeway = 30;
            if jsonwebtoken::decode::<Value>(token, &key, &validation).is_ok() {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> Issuer {
        let mut clients = HashMap::new();
        clients.insert("cii".to_string(), vec![Digest::of(b"s3cret")]);
        Issuer::new(Some(b"a key of the test"), Duration::from_secs(60), clients)
    }

    #[test]
    fn client_credentials_give_a_token_that_checks() {
        let issuer = issuer();
        let now = SystemTime::now();
        let form = b"grant_type=client_credentials&client_id=cii&client_secret=s3cret&scope=alerts";
        let answer = issuer.token(None, Some("application/x-www-form-urlencoded"), form, now);
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["token_type"], "Bearer");
        assert_eq!(answer.body["expires_in"], 60);
        assert_eq!(answer.body["scope"], "alerts");
        let token = answer.body["access_token"].as_str().unwrap();
        assert_eq!(issuer.client_of(token).as_deref(), Some("cii"));
        // Basic and JSON do the same.
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("cii:s3cret")
        );
        let json = br#"{"grant_type": "client_credentials"}"#;
        let answer = issuer.token(Some(&basic), Some("application/json"), json, now);
        assert_eq!(answer.status, 200, "{}", answer.body);
        // Another key, or an expired token: refused.
        let other = Issuer::new(
            Some(b"another key"),
            Duration::from_secs(60),
            HashMap::new(),
        );
        assert_eq!(other.client_of(token), None);
        let old = issuer.token(None, None, form, now - Duration::from_secs(120));
        assert_eq!(
            issuer.client_of(old.body["access_token"].as_str().unwrap()),
            None
        );
    }

    #[test]
    fn the_token_endpoint_admits_only_allowed_addresses_at_its_rate() {
        let issuer = issuer().guarded_by(
            Some(vec!["10.0.0.0/8".parse().unwrap()]),
            std::num::NonZeroU32::new(2),
        );
        assert_eq!(issuer.admits("192.0.2.1".parse().unwrap()), Err(None));
        let inside = "10.1.2.3".parse().unwrap();
        assert!(issuer.admits(inside).is_ok());
        assert!(issuer.admits(inside).is_ok());
        assert!(matches!(issuer.admits(inside), Err(Some(_))));
    }

    #[test]
    fn errors_are_rfc_6749s() {
        let issuer = issuer();
        let now = SystemTime::now();
        let cases: [(&[u8], u16, &str); 5] = [
            (
                b"client_id=cii&client_secret=s3cret",
                400,
                "invalid_request",
            ),
            (
                b"grant_type=password&client_id=cii&client_secret=s3cret",
                400,
                "unsupported_grant_type",
            ),
            (
                b"grant_type=client_credentials&client_id=cii&client_secret=wrong",
                401,
                "invalid_client",
            ),
            (b"grant_type=client_credentials", 401, "invalid_client"),
            (
                b"grant_type=client_credentials&grant_type=client_credentials",
                400,
                "invalid_request",
            ),
        ];
        for (body, status, error) in cases {
            let answer = issuer.token(None, None, body, now);
            assert_eq!(
                (answer.status, answer.body["error"].as_str().unwrap()),
                (status, error)
            );
            assert!(!answer.body.to_string().contains("s3cret"));
        }
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("cii:nope")
        );
        let answer = issuer.token(Some(&basic), None, b"grant_type=client_credentials", now);
        assert!(answer.challenge);
    }

    #[test]
    fn a_jwks_of_symmetric_keys_only_is_refused() {
        let oct =
            r#"{"kty": "oct", "kid": "h", "alg": "HS256", "k": "c2VjcmV0LWtleS1vZi10aGUtdGVzdA"}"#;
        let ec = r#"{"kty": "EC", "crv": "P-256", "kid": "e", "x": "WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis", "y": "y77t-RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE"}"#;
        let new =
            |keys: &str| Jwks::new(&format!(r#"{{"keys": [{keys}]}}"#), "i".into(), "a".into());
        let refused = new(oct).unwrap_err();
        assert!(refused.contains("only symmetric (`oct`) keys"), "{refused}");
        assert!(new(&format!("{oct}, {oct}")).is_err());
        assert!(new("").is_err());
        // One public key among them is enough: the symmetric ones are skipped.
        assert!(new(ec).is_ok());
        assert!(new(&format!("{oct}, {ec}")).is_ok());
    }

    /// RFC 6749 §2.3: one authentication method per request; Basic with a
    /// body `client_id` naming the same client is one.
    #[test]
    fn two_client_authentications_are_an_invalid_request() {
        let mut clients = HashMap::new();
        clients.insert("cii".to_string(), vec![Digest::of(b"s3cret")]);
        clients.insert("other".to_string(), vec![Digest::of(b"0ther")]);
        let issuer = Issuer::new(Some(b"a key of the test"), Duration::from_secs(60), clients);
        let now = SystemTime::now();
        let basic = |pair: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        };
        let cases: [(&str, &[u8], u16); 6] = [
            (
                "cii:s3cret",
                b"grant_type=client_credentials&client_id=other&client_secret=0ther",
                400,
            ),
            (
                "cii:s3cret",
                b"grant_type=client_credentials&client_secret=s3cret",
                400,
            ),
            (
                "cii:s3cret",
                b"grant_type=client_credentials&client_id=other",
                400,
            ),
            (
                "not base64",
                b"grant_type=client_credentials&client_id=cii&client_secret=s3cret",
                400,
            ),
            (
                "cii:s3cret",
                b"grant_type=client_credentials&client_id=cii",
                200,
            ),
            ("cii:s3cret", b"grant_type=client_credentials", 200),
        ];
        for (pair, body, status) in cases {
            let authorization = if pair == "not base64" {
                "Basic !!!".to_string()
            } else {
                basic(pair)
            };
            let answer = issuer.token(Some(&authorization), None, body, now);
            assert_eq!(
                answer.status,
                status,
                "{pair} {}: {}",
                String::from_utf8_lossy(body),
                answer.body
            );
            if status == 400 {
                assert_eq!(answer.body["error"], "invalid_request");
                assert!(answer.body.get("access_token").is_none());
            }
        }
    }
}
