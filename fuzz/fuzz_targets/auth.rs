//! `xf serve`'s source authentication: any header values, query and body
//! against every scheme are accepted or refused (401 with a challenge, or
//! 403), never a panic; a signature checked is one computed over the body.
//! The same bytes are a token request to xf's OAuth token endpoint, which
//! answers 200 only to the client's right secret, and an RFC 6749 error else.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use xf::serve::receive::auth::{
    standard_webhooks_key, standard_webhooks_signature, Auth, KeyPlace, Scheme, DEFAULT_TOLERANCE,
};
use xf::serve::receive::digest::Digest;

const NAMES: [&str; 6] = [
    "authorization",
    "x-api-key",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-hub-signature-256",
];

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    // The rest: header values, the query and the body, split at 0xff bytes.
    let mut parts = rest.split(|b| *b == 0xff);
    let mut headers = HeaderMap::new();
    for name in NAMES {
        if let Some(value) = parts.next().and_then(|v| HeaderValue::from_bytes(v).ok()) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    let query = parts.next().and_then(|q| std::str::from_utf8(q).ok());
    let body = parts.next().unwrap_or_default();
    token_request(&headers, body);
    let key = standard_webhooks_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let scheme = match choice % 6 {
        0 => Scheme::Basic(vec![Digest::of(b"user:password")]),
        1 => Scheme::Bearer(vec![Digest::of(b"token"), Digest::of(b"other")]),
        2 => Scheme::ApiKey {
            place: KeyPlace::Header(HeaderName::from_static("x-api-key")),
            keys: vec![Digest::of(b"key")],
        },
        3 => Scheme::ApiKey {
            place: KeyPlace::Query("api_key".into()),
            keys: vec![Digest::of(b"key")],
        },
        4 => Scheme::StandardWebhooks {
            keys: vec![key.clone()],
            tolerance: DEFAULT_TOLERANCE,
        },
        _ => Scheme::GitHub(vec![ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            b"secret",
        )]),
    };
    let signed = matches!(scheme, Scheme::StandardWebhooks { .. });
    let auth = Auth::new(vec!["127.0.0.0/8".parse().unwrap()], scheme);
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let peer = if choice & 0x80 == 0 {
        [127, 0, 0, 1]
    } else {
        [10, 0, 0, 1]
    };
    match auth.check_head(peer.into(), &headers, query) {
        Ok(()) => {}
        Err(refused) => {
            assert!(refused.status == 401 || refused.status == 403);
            assert_eq!(refused.status == 401, refused.challenge.is_some());
            return;
        }
    }
    if let Ok(Some(id)) = auth.check_body(&headers, body, now) {
        // Accepted only with a signature over exactly this id, a time, and this body.
        assert!(signed);
        let timestamp = headers["webhook-timestamp"].to_str().unwrap().trim();
        let signature = standard_webhooks_signature(&key, &id, timestamp.parse().unwrap(), body);
        let sent = headers["webhook-signature"].to_str().unwrap();
        assert!(
            timestamp.parse::<i64>().unwrap().to_string() != timestamp
                || sent.split(' ').any(|s| s == signature),
            "accepted without the signature of its body"
        );
    }
});

fn token_request(headers: &HeaderMap, body: &[u8]) {
    use xf::serve::receive::oauth::Issuer;
    let mut clients = std::collections::HashMap::new();
    clients.insert("cii".to_string(), vec![Digest::of(b"s3cret")]);
    let issuer = Issuer::new(Some(b"fuzz key"), Duration::from_secs(60), clients);
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let answer = issuer.token(
        text("authorization"),
        text("x-api-key"),
        body,
        UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    );
    match answer.status {
        200 => {
            let token = answer.body["access_token"].as_str().expect("a token");
            assert!(!token.is_empty());
        }
        400 | 401 => assert!(answer.body["error"].is_string()),
        other => panic!("a token request answered {other}"),
    }
}
