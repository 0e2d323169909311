//! What the server answers: a webhook's way through it (admit → read the
//! body → transform → store → answer), the OAuth token endpoint, and the
//! health, readiness and metrics pages.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::config::Pipeline;
use super::metrics;
use super::queue::spool::{self, Arriving, DeadRecord, NewRecord, SpoolError};
use super::receive::body::{self as receive, Refusal};
use super::receive::{auth, oauth, rate};
use super::receive::{delivery_id, header_text, Peer, MAX_HEAD_BYTES};
use super::route::{fields_seen_by, route, Arrival, Routed};
use super::App;

pub(crate) async fn ready(State(app): State<Arc<App>>) -> Response {
    if app.draining.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response();
    }
    if let Err(why) = app.spool.ready() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: the queue {why}\n"),
        )
            .into_response();
    }
    let (records, bytes) = app.spool.usage();
    (
        StatusCode::OK,
        format!("ready: {records} records, {bytes} bytes spooled\n"),
    )
        .into_response()
}

pub(crate) async fn metrics_text(State(app): State<Arc<App>>) -> Response {
    let pipeline = app.pipeline();
    let depths = app.spool.depths();
    let overview = app.spool.overview().await.ok();
    let now = spool::now_ms();
    for destination in &pipeline.destinations {
        let labels = metrics::destination(&destination.name);
        let (records, _) = depths.get(&*destination.name).copied().unwrap_or_default();
        app.metrics
            .queue_depth
            .get_or_create(&labels)
            .set(records as i64);
        let oldest = overview
            .as_ref()
            .and_then(|o| {
                o.queued
                    .iter()
                    .find(|(name, _)| **name == *destination.name)
            })
            .and_then(|(_, depth)| depth.oldest_ms);
        let age = oldest.map(|at| (now - at).max(0) / 1000).unwrap_or(0);
        app.metrics.oldest_age.get_or_create(&labels).set(age);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response()
}

/// What one accepted body came to.
struct Prepared {
    records: Vec<NewRecord>,
    dead: Vec<DeadRecord>,
    ids: Vec<Arc<str>>,
    received: u64,
    emitted: u64,
    dropped: u64,
    failed: u64,
}

/// `POST /oauth/token`: xf as the authorization server of its `auth oauth`
/// sources (RFC 6749 §4.4, client credentials). Not there (404) when no
/// source takes OAuth clients.
pub(crate) async fn token_request(State(app): State<Arc<App>>, request: Request) -> Response {
    let issuer = Arc::clone(&app.pipeline().issuer);
    if !issuer.has_clients() {
        return json_response(
            StatusCode::NOT_FOUND,
            json!({"error": "no source takes OAuth clients"}),
        );
    }
    let peer = request
        .extensions()
        .get::<Peer>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |peer| peer.0);
    match issuer.admits(peer) {
        Ok(()) => {}
        Err(None) => {
            return json_response(
                StatusCode::FORBIDDEN,
                json!({"error": "access_denied", "error_description": "this address may not ask for tokens"}),
            )
        }
        Err(Some(wait)) => return rate_limited(&app, "/oauth/token", wait),
    }
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(
        app.body_timeout,
        axum::body::to_bytes(body, oauth::MAX_TOKEN_REQUEST),
    )
    .await;
    let Ok(Ok(bytes)) = read else {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_request", "error_description": "the body could not be read (at most 16 KiB)"}),
        );
    };
    let answer = issuer.token(
        header_text(&parts.headers, header::AUTHORIZATION),
        header_text(&parts.headers, header::CONTENT_TYPE),
        &bytes,
        SystemTime::now(),
    );
    if answer.status != 200 {
        // One of RFC 6749's few error codes: a label of bounded values.
        let reason = match answer.body["error"].as_str() {
            Some("invalid_client") => "invalid_client",
            Some("unsupported_grant_type") => "unsupported_grant_type",
            Some("server_error") => "server_error",
            _ => "invalid_request",
        };
        app.metrics
            .refused
            .get_or_create(&metrics::refusal("/oauth/token", reason))
            .inc();
    }
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = json_response(status, answer.body);
    let headers = response.headers_mut();
    // RFC 6749 §5.1: a token is never cached.
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    if answer.challenge {
        headers.insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"xf\", charset=\"UTF-8\""),
        );
    }
    response
}

/// Every request not to `/healthz`, `/readyz` or `/metrics`: a webhook for a
/// source, through its steps in order. Each step either hands the next one
/// what it needs or answers the request itself (a refusal, with nothing kept).
pub(crate) async fn receive_request(State(app): State<Arc<App>>, request: Request) -> Response {
    let started = Instant::now();
    let pipeline = app.pipeline();
    let step = async {
        let (source, request) = admit(&app, &pipeline, request).await?;
        let (parts, bytes) = read_body(&app, &source, request).await?;
        let delivery = delivery_id(&parts.headers);
        // From here to its store takes microseconds: the queue may wait for it
        // (not while a slow sender is still sending the body).
        let arriving = app.spool.arriving();
        let admitted = authenticate(&app, &source, &parts.headers, &bytes, delivery.as_deref())?;
        let mut prepared =
            transform(&app, &pipeline, &source, &parts.headers, bytes, delivery).await?;
        store(&app, &source, &mut prepared, arriving).await?;
        Ok::<_, Response>(answer(&app, &source, started, prepared, admitted))
    };
    match step.await {
        Ok(response) | Err(response) => response,
    }
}

/// The source a request was admitted to.
struct Admission {
    /// Its index in the pipeline's sources.
    index: usize,
    path: String,
    counters: metrics::SourceCounters,
    auth: Arc<auth::Auth>,
    rates: Arc<rate::Rates>,
}

/// Step 1, on the head alone: the source, the method, the head's size, the
/// client's rate, its credentials, and whether the server still takes requests.
// A step's Err is the answer itself, made once per request on its way out:
// boxing it would allocate for nothing.
#[allow(clippy::result_large_err)]
async fn admit(
    app: &App,
    pipeline: &Pipeline,
    request: Request,
) -> Result<(Admission, Request), Response> {
    let path = request.uri().path().to_string();
    let Some(index) = pipeline.sources.iter().position(|s| s.path == path) else {
        return Err(json_response(
            StatusCode::NOT_FOUND,
            json!({"error": format!("no source receives at {path}")}),
        ));
    };
    if request.method() != Method::POST {
        let mut response = json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": "a webhook is sent with POST"}),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        return Err(response);
    }
    let counters = pipeline.sources[index]
        .counters
        .get_or_init(|| app.metrics.source_counters(&path))
        .clone();
    counters.requests.inc();
    // hyper refuses more than 100 headers, and a head beyond its read buffer
    // (about twice this); this is the exact, documented limit.
    let head_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + shown_length(request.uri());
    if head_bytes > MAX_HEAD_BYTES {
        app.metrics
            .refused
            .get_or_create(&metrics::refusal(&path, "head_too_large"))
            .inc();
        return Err(json_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            json!({"error": format!("the request's headers are over {MAX_HEAD_BYTES} bytes")}),
        ));
    }
    let source = Admission {
        index,
        auth: Arc::clone(&pipeline.sources[index].auth),
        rates: Arc::clone(&pipeline.sources[index].rates),
        path,
        counters,
    };
    let peer = request
        .extensions()
        .get::<Peer>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |peer| peer.0);
    // Per address before authenticating (guessing secrets is slow too); per
    // source once authenticated (a flood of strangers uses up no one's allowance).
    if let Err(wait) = source.rates.check_client(peer) {
        return Err(rate_limited(app, &source.path, wait));
    }
    source
        .auth
        .refresh_keys(&app.client, peer, request.headers())
        .await;
    if let Err(refused) = source
        .auth
        .check_head(peer, request.headers(), request.uri().query())
    {
        return Err(refused_by_auth(app, &source.path, &refused));
    }
    if !source.auth.needs_body() {
        if let Err(wait) = source.rates.check_source() {
            return Err(rate_limited(app, &source.path, wait));
        }
    }
    if app.draining.load(Ordering::SeqCst) {
        return Err(unavailable(
            app,
            &source.path,
            "stopping",
            "the server is stopping",
            1,
        ));
    }
    Ok((source, request))
}

/// The length of a URI as written, without writing it anywhere.
fn shown_length(uri: &axum::http::Uri) -> usize {
    struct Count(usize);
    impl std::fmt::Write for Count {
        fn write_str(&mut self, text: &str) -> std::fmt::Result {
            self.0 += text.len();
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = write!(count, "{uri}");
    count.0
}

/// A refusal of the body: counted, and answered with its status.
fn refuse(app: &App, source: &Admission, refusal: Refusal) -> Response {
    app.metrics
        .refused
        .get_or_create(&metrics::refusal(&source.path, refusal.reason()))
        .inc();
    json_response(
        StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST),
        refusal.body(),
    )
}

/// Step 2: the body, whole, within the size and time limits.
async fn read_body(
    app: &App,
    source: &Admission,
    request: Request,
) -> Result<(axum::http::request::Parts, axum::body::Bytes), Response> {
    let (parts, body) = request.into_parts();
    if let Err(refusal) =
        receive::check_media_type(header_text(&parts.headers, header::CONTENT_TYPE))
    {
        return Err(refuse(app, source, refusal));
    }
    let too_large = || Refusal::TooLarge(format!("the body is over {} bytes", app.limits.max_body));
    let declared =
        header_text(&parts.headers, header::CONTENT_LENGTH).and_then(|l| l.parse::<u64>().ok());
    if declared.is_some_and(|length| length > app.limits.max_body as u64) {
        return Err(refuse(app, source, too_large()));
    }
    let read = tokio::time::timeout(
        app.body_timeout,
        axum::body::to_bytes(body, app.limits.max_body),
    );
    match read.await {
        Ok(Ok(bytes)) => Ok((parts, bytes)),
        Ok(Err(error)) => {
            let over_limit = error
                .into_inner()
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            if over_limit {
                return Err(refuse(app, source, too_large()));
            }
            app.metrics
                .refused
                .get_or_create(&metrics::refusal(&source.path, "unreadable_body"))
                .inc();
            Err(json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": "the body could not be read (cut short or badly chunked)"}),
            ))
        }
        Err(_) => {
            app.metrics
                .refused
                .get_or_create(&metrics::refusal(&source.path, "body_timeout"))
                .inc();
            Err(json_response(
                StatusCode::REQUEST_TIMEOUT,
                json!({"error": format!("the body did not arrive within {} s", app.body_timeout.as_secs())}),
            ))
        }
    }
}

/// Step 3: a signature over the body as received (before any decoding), the
/// source's rate once the sender is known, and a Standard Webhooks message
/// id against the replay window.
#[allow(clippy::result_large_err)] // as `admit`
fn authenticate(
    app: &App,
    source: &Admission,
    headers: &axum::http::HeaderMap,
    bytes: &[u8],
    delivery: Option<&str>,
) -> Result<Option<Admitted>, Response> {
    let message = match source.auth.check_body(headers, bytes, SystemTime::now()) {
        Ok(message) => message,
        Err(refused) => return Err(refused_by_auth(app, &source.path, &refused)),
    };
    if source.auth.needs_body() {
        if let Err(wait) = source.rates.check_source() {
            return Err(rate_limited(app, &source.path, wait));
        }
    }
    // A Standard Webhooks message id is kept for the scheme's replay window;
    // a sender's other delivery id (GitHub's `X-GitHub-Delivery`,
    // `Idempotency-Key`) for DELIVERY_ID_WINDOW, so that a redelivery within
    // it is kept once on the embedded spool too, as JetStream's duplicate
    // window keeps it once there.
    let (id, window) = match (message, delivery) {
        (Some(id), _) => (id, None),
        (None, Some(delivery)) => (format!("delivery {delivery}"), Some(DELIVERY_ID_WINDOW)),
        (None, None) => return Ok(None),
    };
    match source.auth.admit(&id, SystemTime::now()) {
        auth::Admission::New => Ok(Some(Admitted {
            auth: Arc::clone(&source.auth),
            id,
            window,
            accepted: false,
        })),
        auth::Admission::InFlight => {
            let mut response = json_response(
                StatusCode::CONFLICT,
                json!({"error": "a message with this webhook-id is being received; retry"}),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(1));
            Err(response)
        }
        auth::Admission::Duplicate => {
            app.metrics
                .refused
                .get_or_create(&metrics::refusal(&source.path, "duplicate"))
                .inc();
            // Accepted before: the sender may stop retrying, and nothing is kept twice.
            Err(json_response(
                StatusCode::OK,
                json!({"records": 0, "ids": [], "duplicate": true}),
            ))
        }
    }
}

/// Bodies up to this size, not compressed, are transformed on the task that
/// read them: a few KiB take some microseconds, less than a hand-off to
/// another thread and back costs. Larger ones (and gzip) go to the blocking
/// pool, so that no async worker is held for long.
const TRANSFORM_IN_PLACE_MAX: usize = 64 << 10;

/// How long a body's records are transformed on its task, at most (checked
/// between records): what is left then goes to the blocking pool, so that a
/// body of many records, or a transform that works hard, holds no async
/// worker (which accepts, reads and delivers for everyone) for long.
const TRANSFORM_IN_PLACE_BUDGET: Duration = Duration::from_micros(500);

/// A body's records, numbered, not yet transformed.
type Remaining = std::iter::Enumerate<std::vec::IntoIter<receive::Received>>;

/// Step 4: the body decoded and split into records (each read as far as
/// routing it can see: [`fields_seen_by`]), each transformed and
/// addressed to the destinations that want it.
async fn transform(
    app: &App,
    pipeline: &Arc<Pipeline>,
    source: &Admission,
    headers: &axum::http::HeaderMap,
    bytes: axum::body::Bytes,
    delivery: Option<String>,
) -> Result<Prepared, Response> {
    let encoding = header_text(headers, header::CONTENT_ENCODING).map(str::to_string);
    let limits = app.limits;
    let body = Arc::new(Body {
        source: source.index,
        source_path: Arc::from(source.path.as_str()),
        request: what_the_transform_reads(pipeline, source, headers, delivery.as_deref()),
        delivery,
    });
    // Not compressed, and small: cheaper here than a hand-off.
    let in_place = bytes.len() <= TRANSFORM_IN_PLACE_MAX
        && encoding.as_deref().is_none_or(|encoding| {
            let encoding = encoding.trim();
            encoding.is_empty() || encoding.eq_ignore_ascii_case("identity")
        });
    // The records are read as far as routing them can see: the fields of
    // the source's transform and of its destinations' tests (known only
    // here, with the pipeline), the others kept as their bytes.
    let read = {
        let (pipeline, source) = (Arc::clone(pipeline), source.index);
        move || {
            let decoded = receive::decode(encoding.as_deref(), &bytes, &limits)?;
            let body = decoded.as_deref().unwrap_or(&bytes);
            receive::records(body, &limits, fields_seen_by(&pipeline, source))
        }
    };
    let finish = {
        let pipeline = Arc::clone(pipeline);
        let body = Arc::clone(&body);
        move |mut remaining: Remaining, mut prepared: Prepared| {
            prepare(&pipeline, &body, &mut remaining, &mut prepared, None);
            prepared
        }
    };
    let done = if in_place {
        // A panic outside a record's own guard ends this request with a 500, as
        // it would on the blocking pool, not the connection.
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            read().map(|records| {
                let mut prepared = Prepared::new(records.len());
                let mut remaining = records.into_iter().enumerate();
                let until = Instant::now() + TRANSFORM_IN_PLACE_BUDGET;
                prepare(pipeline, &body, &mut remaining, &mut prepared, Some(until));
                (remaining, prepared)
            })
        }));
        match started {
            Ok(Ok((remaining, prepared))) if remaining.len() == 0 => Ok(Ok(prepared)),
            Ok(Ok((remaining, prepared))) => {
                tokio::task::spawn_blocking(move || Ok(finish(remaining, prepared))).await
            }
            Ok(Err(refusal)) => Ok(Err(refusal)),
            Err(_) => {
                tracing::error!("the work on a body panicked (a bug in xf)");
                return Err(json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "the body could not be processed; nothing of it was kept"}),
                ));
            }
        }
    } else {
        tokio::task::spawn_blocking(move || {
            let records = read()?;
            let prepared = Prepared::new(records.len());
            Ok(finish(records.into_iter().enumerate(), prepared))
        })
        .await
    };
    match done {
        Ok(Ok(prepared)) => Ok(prepared),
        Ok(Err(refusal)) => Err(refuse(app, source, refusal)),
        Err(error) => {
            tracing::error!(%error, "the work on a body ended abnormally");
            Err(json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "the body could not be processed; nothing of it was kept"}),
            ))
        }
    }
}

/// What the transform reads as `request` for the records of this body (each
/// adds its index): the headers but the source's credentials, the source's
/// name and path, the time received and the sender's delivery id.
fn what_the_transform_reads(
    pipeline: &Pipeline,
    source: &Admission,
    headers: &axum::http::HeaderMap,
    delivery: Option<&str>,
) -> crate::apply::Request {
    let key_header = source.auth.key_header();
    let withheld: Vec<&str> = key_header.into_iter().collect();
    let parts = crate::apply::RequestParts {
        source: Some(pipeline.sources[source.index].name.as_str()),
        path: Some(source.path.as_str()),
        received_at: Some(spool::now_ms()),
        delivery_id: delivery,
        withheld: &withheld,
    };
    let headers = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()));
    crate::apply::Request::new(headers, &parts)
}

/// Step 5: the records and dead letters stored durably (synced), and the
/// delivery workers of their destinations woken.
async fn store(
    app: &App,
    source: &Admission,
    prepared: &mut Prepared,
    arriving: Arriving,
) -> Result<(), Response> {
    let path = &source.path;
    let records = std::mem::take(&mut prepared.records);
    let dead = std::mem::take(&mut prepared.dead);
    let mut destinations: Vec<Arc<str>> = Vec::new();
    for record in &records {
        if !destinations.contains(&record.destination) {
            destinations.push(Arc::clone(&record.destination));
        }
    }
    drop(arriving);
    if app.spool.ready().is_err() {
        // The queue logs when it is lost and when it is back: not each refusal.
        return Err(unavailable(
            app,
            path,
            "queue_unavailable",
            "the queue cannot be reached; retry later",
            5,
        ));
    }
    match app.spool.store(records, dead).await {
        Ok(()) => {}
        Err(SpoolError::Full(why)) => {
            tracing::warn!(source = %path, %why, "the spool is full: refusing (503)");
            return Err(unavailable(
                app,
                path,
                "spool_full",
                &format!("the spool is full ({why}); retry later"),
                5,
            ));
        }
        Err(error) => {
            tracing::error!(source = %path, %error, "cannot store records: refusing (503)");
            return Err(unavailable(
                app,
                path,
                "storage",
                "the records could not be stored; retry later",
                1,
            ));
        }
    }
    if let Ok(wakes) = app.wakes.read() {
        for name in &destinations {
            if let Some(wake) = wakes.get(&**name) {
                wake.notify_one();
            }
        }
    }
    Ok(())
}

/// Step 6: counted, and answered 200 with the records' ids.
fn answer(
    app: &App,
    source: &Admission,
    started: Instant,
    prepared: Prepared,
    admitted: Option<Admitted>,
) -> Response {
    let counters = &source.counters;
    counters.records_received.inc_by(prepared.received);
    counters.transformed.inc_by(prepared.emitted);
    counters.dropped.inc_by(prepared.dropped);
    if prepared.failed > 0 {
        app.metrics
            .dead_lettered
            .get_or_create(&metrics::destination("-"))
            .inc_by(prepared.failed);
    }
    counters
        .accept_seconds
        .observe(started.elapsed().as_secs_f64());
    if let Some(mut admitted) = admitted {
        admitted.accepted = true;
    }
    // Written straight out, as `json!` would (the ids are UUIDs, with `-N`
    // for what `fan_out` made: nothing to escape), without building a tree.
    let mut body = String::with_capacity(80 + prepared.ids.len() * 40);
    let _ = write!(body, "{{\"records\":{},\"ids\":[", prepared.received);
    for (i, id) in prepared.ids.iter().enumerate() {
        body.push_str(if i == 0 { "\"" } else { ",\"" });
        body.push_str(id);
        body.push('"');
    }
    let _ = writeln!(
        body,
        "],\"dropped\":{},\"dead_lettered\":{}}}",
        prepared.dropped, prepared.failed
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// A Standard Webhooks message being received: when the request ends, its id
/// is kept for the replay window if it was accepted, else forgotten (so that
/// the sender's retry is taken), whichever way the request ends.
struct Admitted {
    auth: Arc<auth::Auth>,
    id: String,
    /// How long it is kept once accepted; `None`: the scheme's replay window.
    window: Option<Duration>,
    accepted: bool,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let now = SystemTime::now();
        match self.window {
            None => self.auth.settle(&self.id, self.accepted, now),
            Some(window) => self
                .auth
                .settle_within(&self.id, self.accepted, now, window),
        }
    }
}

/// How long a sender's delivery id (`X-GitHub-Delivery`, `Idempotency-Key`)
/// is remembered once its request was accepted: a redelivery within it is
/// answered 200 as a duplicate and kept nowhere. Two minutes, JetStream's
/// default duplicate window.
pub const DELIVERY_ID_WINDOW: Duration = Duration::from_secs(120);

/// 429 with Retry-After: over a rate limit; nothing of the request is kept.
fn rate_limited(app: &App, path: &str, wait: Duration) -> Response {
    app.metrics
        .refused
        .get_or_create(&metrics::refusal(path, "rate_limited"))
        .inc();
    let seconds = rate::retry_after(wait);
    let mut response = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"error": format!("over this source's rate limit; retry in {seconds} s")}),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
    response
}

/// 401 (with its challenge) or 403, in words that name no secret; nothing of
/// the request is kept.
fn refused_by_auth(app: &App, path: &str, refused: &auth::Refused) -> Response {
    let reason = match refused.status {
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::SERVICE_UNAVAILABLE => "keys_unavailable",
        _ => "unauthorized",
    };
    app.metrics
        .refused
        .get_or_create(&metrics::refusal(path, reason))
        .inc();
    let mut response = json_response(refused.status, json!({ "error": refused.reason }));
    if refused.status == StatusCode::SERVICE_UNAVAILABLE {
        let retry = crate::serve::receive::jwks::RETRY_INTERVAL.as_secs();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(retry));
    }
    if let Some(challenge) = refused.challenge {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static(challenge),
        );
    }
    response
}

fn unavailable(
    app: &App,
    path: &str,
    reason: &'static str,
    message: &str,
    retry_after: u64,
) -> Response {
    app.metrics
        .refused
        .get_or_create(&metrics::refusal(path, reason))
        .inc();
    let mut response = json_response(StatusCode::SERVICE_UNAVAILABLE, json!({ "error": message }));
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after));
    response
}

/// A record's id: derived from the sender's delivery id when there is one,
/// so that a retry of the request gives its records the ids they had (and a
/// queue that de-duplicates by id, JetStream, keeps them once); else new.
fn record_id(source_path: &str, delivery: Option<&str>, index: usize) -> Arc<str> {
    let Some(delivery) = delivery else {
        // A UUIDv7: the time, then 74 bits from the thread's fast generator.
        // `Uuid::now_v7` asks the kernel for them (a system call per record);
        // an id needs to be unique, not unguessable.
        let mut random = [0u8; 10];
        fastrand::fill(&mut random);
        let millis = u64::try_from(spool::now_ms()).unwrap_or(0);
        let id = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
        return Arc::from(
            id.hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer()) as &str,
        );
    };
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [
        source_path.as_bytes(),
        delivery.as_bytes(),
        &index.to_be_bytes(),
    ] {
        hash.update(&(part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.finish().as_ref()[..16]);
    Arc::from(uuid::Uuid::new_v8(bytes).to_string())
}

impl Prepared {
    fn new(records: usize) -> Prepared {
        Prepared {
            records: Vec::new(),
            dead: Vec::new(),
            ids: Vec::with_capacity(records),
            received: records as u64,
            emitted: 0,
            dropped: 0,
            failed: 0,
        }
    }
}

/// Where a body's records come from, the same for each of them; built
/// once per body, shared by the part transformed in place and the rest.
struct Body {
    /// The source's index in the pipeline.
    source: usize,
    source_path: Arc<str>,
    /// The sender's delivery id, which record ids are derived from.
    delivery: Option<String>,
    /// What the transform reads as `request` (each record adds its index).
    request: crate::apply::Request,
}

/// Transforms a body's records and addresses the results to destinations:
/// all of them, or, with `until`, those it gets to before then (at least one).
fn prepare(
    pipeline: &Pipeline,
    body: &Body,
    remaining: &mut Remaining,
    prepared: &mut Prepared,
    until: Option<Instant>,
) {
    let Body {
        source,
        ref source_path,
        ref delivery,
        ref request,
    } = *body;
    let delivery = delivery.as_deref();
    let now = spool::now_ms();
    for (index, received) in remaining.by_ref() {
        let id = record_id(source_path, delivery, index);
        prepared.ids.push(Arc::clone(&id));
        let arrival = Arrival {
            source,
            source_path,
            id: &id,
            received_ms: now,
            received,
            request: Some(request.at(index as u64)),
        };
        match route(pipeline, arrival, &mut prepared.records, &mut prepared.dead) {
            Routed::Emitted => prepared.emitted += 1,
            Routed::Dropped => prepared.dropped += 1,
            Routed::Failed => prepared.failed += 1,
        }
        if until.is_some_and(|until| Instant::now() >= until) {
            break;
        }
    }
}
