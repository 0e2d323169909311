//! `xf serve`: receive webhooks, transform them, spool the results durably
//! and deliver them to every destination that wants them.
//!
//! ```text
//!  POST ──receive──▶ records ──apply──▶ results ──spool (SQLite, synced)──▶ 2xx
//!                                                     │ one queue per destination
//!                                                     ▼
//!                                  deliver (retries, backoff, dead letters) ──▶ POST
//! ```
//!
//! - [`receive`] turns a request body into records, or a refusal;
//! - [`spool`] keeps every accepted record until it is delivered or dead;
//! - [`deliver`] runs one worker per destination;
//! - [`notice`] mails (and posts) when a destination starts failing;
//! - [`metrics`] is what `GET /metrics` shows;
//! - [`reload`] watches the pipeline's files for a change.

pub mod auth;
pub mod config;
pub mod deliver;
pub mod guard;
#[cfg(feature = "nats")]
pub mod jetstream;
pub mod metrics;
pub mod notice;
pub mod oauth;
pub mod pipeline;
pub mod queue;
pub mod rate;
pub mod receive;
pub mod reload;
pub mod spool;
pub mod tls;
pub mod token;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::{watch, Notify, Semaphore};

use crate::apply::Outcome;
pub use config::{Destination, Source};
use receive::{BodyLimits, Refusal};
use reload::Watch;
use spool::{DeadRecord, NewRecord, Spool, SpoolError, SpoolLimits};

/// The sources and destinations a server runs; swapped whole on reload.
pub struct Pipeline {
    pub sources: Vec<Source>,
    pub destinations: Vec<Arc<Destination>>,
    /// The files it was loaded from: a change to one reloads it.
    pub watched: Vec<PathBuf>,
    /// The authorization server of its `auth oauth` sources (`POST /oauth/token`).
    pub issuer: Arc<oauth::Issuer>,
}

/// A pipeline that does not load: its problems, and the files it was read
/// from as far as it got, so that a fix to one of them reloads it.
#[derive(Debug, Clone)]
pub struct Refused {
    pub problems: String,
    pub watched: Vec<PathBuf>,
}

/// How a pipeline is (re)loaded: on start, on every SIGHUP, and when one of
/// its files changes.
pub type LoadPipeline = Box<dyn Fn() -> Result<Pipeline, Refused> + Send + Sync>;

/// How a server listens and what it holds.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// Where records wait: the embedded spool's folder, or JetStream.
    pub queue: queue::QueueChoice,
    pub spool_limits: SpoolLimits,
    pub body_limits: BodyLimits,
    pub connections: ConnectionLimits,
    pub notices: notice::NoticeConfig,
    /// How often the pipeline's files are polled for a change; `None`: only
    /// SIGHUP reloads.
    pub reload_poll: Option<Duration>,
    /// Networks destinations may reach although they are not public ([`guard`]).
    pub private_destinations: Vec<ipnet::IpNet>,
    /// TLS termination: the certificate chain and key files ([`tls`]); `None`: plain HTTP.
    pub tls: Option<tls::TlsFiles>,
}

/// What one connection may take.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections open at once (default 1024); more wait to be accepted.
    pub max_connections: usize,
    /// Time to send a request's headers (default 10 s), idle keep-alive included.
    pub header_timeout: Duration,
    /// Time to send a request's body (default 30 s).
    pub body_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
        }
    }
}

/// The state every request and worker shares.
struct App {
    pipeline: RwLock<Arc<Pipeline>>,
    /// Where records wait for delivery (the embedded spool, behind [`queue::Queue`]).
    spool: Arc<dyn queue::Queue>,
    metrics: Arc<metrics::Metrics>,
    limits: BodyLimits,
    body_timeout: Duration,
    /// Per destination: told when records for it are stored.
    wakes: RwLock<HashMap<String, Arc<Notify>>>,
    /// Set when a stop began: new requests are refused (503).
    draining: AtomicBool,
}

impl App {
    fn pipeline(&self) -> Arc<Pipeline> {
        match self.pipeline.read() {
            Ok(pipeline) => Arc::clone(&pipeline),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

/// Runs the server until SIGTERM or SIGINT; reloads on SIGHUP, and when a
/// file of the pipeline changes.
pub async fn serve(options: ServeOptions, load: LoadPipeline) -> Result<(), String> {
    let guard = guard::Guard::new(options.private_destinations.clone());
    if let Some(webhook) = &options.notices.webhook {
        guard
            .check_uri(webhook)
            .map_err(|refused| format!("the error webhook: {refused}"))?;
    }
    let tls = match &options.tls {
        Some(files) => Some(Arc::new(tls::Tls::load(files.clone())?)),
        None => None,
    };
    let load = guarded(load, guard.clone(), tls.clone());
    let pipeline = load().map_err(|refused| refused.problems)?;
    let mut watch = Watch::new(&pipeline.watched);
    let spool = open_queue(&options.queue, options.spool_limits).await?;
    let metrics = Arc::new(metrics::Metrics::new());
    let client = http_client(&guard, &[])?;
    let notices = Arc::new(notice::Notices::new(
        options.notices.clone(),
        client.clone(),
        Arc::clone(&metrics),
    ));
    let app = Arc::new(App {
        pipeline: RwLock::new(Arc::new(pipeline)),
        spool,
        metrics: Arc::clone(&metrics),
        limits: options.body_limits,
        body_timeout: options.connections.body_timeout,
        wakes: RwLock::new(HashMap::new()),
        draining: AtomicBool::new(false),
    });
    let listener = listen(options.listen)
        .map_err(|error| format!("cannot listen on {}: {error}", options.listen))?;
    let local = listener
        .local_addr()
        .map_err(|error| format!("cannot listen on {}: {error}", options.listen))?;
    tracing::info!(address = %local, queue = %shown_queue(&options.queue), "xf serve is listening");

    let workers = Workers {
        app: Arc::clone(&app),
        guard,
        client,
        notices,
        running: Vec::new(),
    };
    let mut workers = workers;
    workers.start().await;

    let router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics_text))
        .route("/oauth/token", axum::routing::post(token_request))
        .fallback(receive_request)
        .with_state(Arc::clone(&app));

    let (stop_accepting, accepting) = watch::channel(false);
    let server = tokio::spawn(accept_loop(
        listener,
        router,
        options.connections,
        tls,
        accepting,
    ));

    let mut terminate = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut interrupt = signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut hangup = signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut polls = options.reload_poll.map(|every| {
        let mut polls = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        polls.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        polls
    });
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading the pipeline");
                reload(&app, &mut workers, &load, &mut watch).await;
            }
            _ = next_poll(&mut polls) => {
                if let Some(changed) = watch.poll() {
                    let files: Vec<String> = changed.iter().map(|p| p.display().to_string()).collect();
                    tracing::info!(files = %files.join(", "), "files changed: reloading the pipeline");
                    reload(&app, &mut workers, &load, &mut watch).await;
                }
            }
        }
    }
    tracing::info!("stopping: no new requests; finishing those in flight");
    app.draining.store(true, Ordering::SeqCst);
    let _ = stop_accepting.send(true);
    let _ = server.await;
    workers.stop().await;
    tracing::info!("stopped");
    Ok(())
}

/// Opens the queue the options choose.
async fn open_queue(
    choice: &queue::QueueChoice,
    limits: SpoolLimits,
) -> Result<Arc<dyn queue::Queue>, String> {
    match choice {
        queue::QueueChoice::Embedded(dir) => match Spool::open(dir, limits) {
            Ok(spool) => Ok(Arc::new(spool)),
            Err(error) => Err(format!(
                "cannot open the spool in {}: {error}",
                dir.display()
            )),
        },
        #[cfg(feature = "nats")]
        queue::QueueChoice::Nats(options) => match jetstream::JetStream::open(options).await {
            Ok(queue) => Ok(Arc::new(queue)),
            Err(error) => Err(format!("cannot open the queue on JetStream: {error}")),
        },
        #[cfg(not(feature = "nats"))]
        queue::QueueChoice::Nats(_) => {
            Err("this xf was built without JetStream: build it with `--features nats`".to_string())
        }
    }
}

fn shown_queue(choice: &queue::QueueChoice) -> String {
    match choice {
        queue::QueueChoice::Embedded(dir) => dir.display().to_string(),
        queue::QueueChoice::Nats(options) => options.shown_url(),
    }
}

/// The client deliveries go out with: no redirects followed, names resolved
/// through the request forgery guard, TLS verified against the system's roots
/// and `extra_roots` (a destination's CA file); never unverified.
fn http_client(
    guard: &guard::Guard,
    extra_roots: &[reqwest::Certificate],
) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .user_agent(concat!("xf/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(guard::GuardedResolver {
            guard: guard.clone(),
        }))
        .tls_certs_merge(extra_roots.iter().cloned())
        .build()
        .map_err(|error| format!("cannot build the HTTP client: {error}"))
}

/// `load`, refusing a pipeline with a destination whose URI is an address the
/// guard refuses (names are checked as they resolve, at every connection).
/// With TLS, the certificate and key are read again with every load that
/// succeeds (a pair that does not load refuses the reload whole), and watched.
fn guarded(load: LoadPipeline, guard: guard::Guard, tls: Option<Arc<tls::Tls>>) -> LoadPipeline {
    Box::new(move || {
        let mut pipeline = load().map_err(|mut refused| {
            if let Some(tls) = &tls {
                refused.watched.extend(tls.files());
            }
            refused
        })?;
        if let Some(tls) = &tls {
            pipeline.watched.extend(tls.files());
        }
        let problems: Vec<String> = pipeline
            .destinations
            .iter()
            .flat_map(|destination| {
                // Its token endpoint too: a literal address never reaches the resolver.
                let token_url = destination.oauth.as_ref().map(|t| &t.token_url);
                std::iter::once(&destination.uri)
                    .chain(token_url)
                    .map(move |uri| (destination, uri))
            })
            .filter_map(|(destination, uri)| {
                let refused = guard.check_uri(uri).err()?;
                Some(format!(
                    "error: destination `{}`: {refused}",
                    destination.name
                ))
            })
            .collect();
        if !problems.is_empty() {
            return Err(Refused {
                problems: problems.join("\n"),
                watched: pipeline.watched,
            });
        }
        // Last, so that a reload refused for another reason swaps no certificate.
        if let Some(tls) = &tls {
            if let Err(problem) = tls.reload() {
                return Err(Refused {
                    problems: format!("error: {problem}"),
                    watched: pipeline.watched,
                });
            }
        }
        Ok(pipeline)
    })
}

/// Loads the pipeline again: checked whole and swapped in, or refused with
/// its diagnostics while the running one goes on. Either way `watch` then
/// watches the files this load read, and, after a refusal, the running
/// version's too: a fix to a file the refused version did not get to (an
/// include of a transform that failed) is a change as well.
async fn reload(app: &App, workers: &mut Workers, load: &LoadPipeline, watch: &mut Watch) {
    let before = watch.now();
    match load() {
        Ok(pipeline) => {
            *watch = Watch::after(before, &pipeline.watched);
            *app.pipeline.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(pipeline);
            workers.restart().await;
            tracing::info!("the new pipeline runs");
        }
        Err(Refused {
            problems,
            mut watched,
        }) => {
            watched.extend(app.pipeline().watched.iter().cloned());
            *watch = Watch::after(before, &watched);
            tracing::error!(%problems, "the new pipeline is refused; the old one keeps running");
            eprintln!("{problems}");
        }
    }
}

/// The next tick of the reload polls; never, when they are off.
async fn next_poll(polls: &mut Option<tokio::time::Interval>) {
    match polls {
        Some(polls) => {
            polls.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// A listening socket with a deep accept queue (the kernel caps it at
/// `net.core.somaxconn`): a burst of connections waits there rather than in
/// SYN retries of a second and more.
fn listen(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(4096)
}

fn signal(kind: tokio::signal::unix::SignalKind) -> Result<tokio::signal::unix::Signal, String> {
    tokio::signal::unix::signal(kind).map_err(|error| format!("cannot handle signals: {error}"))
}

/// The delivery workers, one per destination.
struct Workers {
    app: Arc<App>,
    /// For the clients of destinations with CA files of their own.
    guard: guard::Guard,
    client: reqwest::Client,
    notices: Arc<notice::Notices>,
    running: Vec<(watch::Sender<bool>, tokio::task::JoinHandle<()>)>,
}

impl Workers {
    async fn start(&mut self) {
        let pipeline = self.app.pipeline();
        let disabled = match self.app.spool.overview().await {
            Ok(overview) => overview.disabled,
            Err(error) => {
                tracing::error!(%error, "cannot read which destinations are disabled");
                Vec::new()
            }
        };
        if let Ok(overview) = self.app.spool.overview().await {
            for (name, depth) in &overview.queued {
                if !pipeline.destinations.iter().any(|d| *d.name == **name) {
                    tracing::warn!(destination = %name, records = depth.records,
                        "records are queued for a destination the pipeline no longer has: they wait until it comes back (or `xf spool purge --queue --destination`)");
                }
            }
        }
        let mut wakes = HashMap::new();
        for destination in &pipeline.destinations {
            let wake = Arc::new(Notify::new());
            wakes.insert(destination.name.to_string(), Arc::clone(&wake));
            let is_disabled = disabled.iter().any(|d| **d == *destination.name);
            if is_disabled {
                tracing::warn!(destination = %destination.name, "disabled (after a 410): `xf spool enable` turns it back on");
            }
            self.app
                .metrics
                .disabled
                .get_or_create(&metrics::destination(&destination.name))
                .set(is_disabled as i64);
            let (stop, stopped) = watch::channel(false);
            let worker = deliver::Worker {
                destination: Arc::clone(destination),
                spool: Arc::clone(&self.app.spool),
                metrics: Arc::clone(&self.app.metrics),
                client: if destination.ca_certificates.is_empty() {
                    self.client.clone()
                } else {
                    match http_client(&self.guard, &destination.ca_certificates) {
                        Ok(client) => client,
                        Err(error) => {
                            // Never verification turned off: without its CA the destination fails TLS.
                            tracing::error!(destination = %destination.name, %error, "its CA file is not used");
                            self.client.clone()
                        }
                    }
                },
                notices: Arc::clone(&self.notices),
                wake,
                disabled: Arc::new(deliver::Disabled::new(is_disabled)),
                stop: stopped,
            };
            self.running.push((stop, tokio::spawn(worker.run())));
        }
        *self.app.wakes.write().unwrap_or_else(|p| p.into_inner()) = wakes;
    }

    /// Ends every worker once its requests in flight are done.
    async fn stop(&mut self) {
        for (stop, _) in &self.running {
            let _ = stop.send(true);
        }
        for (_, task) in self.running.drain(..) {
            let _ = task.await;
        }
    }

    async fn restart(&mut self) {
        self.stop().await;
        self.start().await;
    }
}

/// Accepts connections until told to stop, then lets the open ones finish.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ConnectionLimits,
    tls: Option<Arc<tls::Tls>>,
    mut stop: watch::Receiver<bool>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        // Each request learns its connection's address: a source's allow-list reads it.
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                // An IPv4 client of a dual-stack socket is seen as ::ffff:a.b.c.d: as itself.
                request
                    .extensions_mut()
                    .insert(Peer(peer.ip().to_canonical()));
                // A Router is always ready: no poll_ready needed before call.
                tower::Service::call(&mut router.clone(), request)
            },
        );
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(64 * 1024);
        match &tls {
            None => {
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                    drop(slot);
                });
            }
            Some(tls) => {
                let acceptor = tls.acceptor();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    // The handshake is part of the head: the same time limit.
                    let handshake =
                        tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await;
                    if let Ok(Ok(stream)) = handshake {
                        let connection = builder.serve_connection(TokioIo::new(stream), service);
                        let _ = watcher.watch(connection).await;
                    }
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    // Requests in flight finish (their records are spooled or refused); idle
    // connections close now.
    graceful.shutdown().await;
}

async fn ready(State(app): State<Arc<App>>) -> Response {
    if app.draining.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response();
    }
    let (records, bytes) = app.spool.usage();
    (
        StatusCode::OK,
        format!("ready: {records} records, {bytes} bytes spooled\n"),
    )
        .into_response()
}

async fn metrics_text(State(app): State<Arc<App>>) -> Response {
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
async fn token_request(State(app): State<Arc<App>>, request: Request) -> Response {
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

/// The most bytes of a request's URI and headers together: 64 KiB (431 above).
pub const MAX_HEAD_BYTES: usize = 64 << 10;

/// The address a request came from (its connection's peer).
#[derive(Debug, Clone, Copy)]
struct Peer(std::net::IpAddr);

/// Every request not to `/healthz`, `/readyz` or `/metrics`: a webhook for a source.
async fn receive_request(State(app): State<Arc<App>>, request: Request) -> Response {
    let started = Instant::now();
    let pipeline = app.pipeline();
    let path = request.uri().path().to_string();
    let Some(source) = pipeline.sources.iter().position(|s| s.path == path) else {
        return json_response(
            StatusCode::NOT_FOUND,
            json!({"error": format!("no source receives at {path}")}),
        );
    };
    if request.method() != Method::POST {
        let mut response = json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": "a webhook is sent with POST"}),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        return response;
    }
    let labels = metrics::source(&path);
    app.metrics.requests.get_or_create(&labels).inc();
    let refuse = |refusal: Refusal| {
        app.metrics
            .refused
            .get_or_create(&metrics::refusal(&path, refusal.reason()))
            .inc();
        json_response(
            StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST),
            refusal.body(),
        )
    };
    // hyper refuses more than 100 headers, and a head beyond its read buffer
    // (about twice this); this is the exact, documented limit.
    let head_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + request.uri().to_string().len();
    if head_bytes > MAX_HEAD_BYTES {
        app.metrics
            .refused
            .get_or_create(&metrics::refusal(&path, "head_too_large"))
            .inc();
        return json_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            json!({"error": format!("the request's headers are over {MAX_HEAD_BYTES} bytes")}),
        );
    }
    let auth = Arc::clone(&pipeline.sources[source].auth);
    let rates = Arc::clone(&pipeline.sources[source].rates);
    let peer = request
        .extensions()
        .get::<Peer>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |peer| peer.0);
    // Per address before authenticating (guessing secrets is slow too); per
    // source once authenticated (a flood of strangers uses up no one's allowance).
    if let Err(wait) = rates.check_client(peer) {
        return rate_limited(&app, &path, wait);
    }
    if let Err(refused) = auth.check_head(peer, request.headers(), request.uri().query()) {
        return refused_by_auth(&app, &path, &refused);
    }
    if !auth.needs_body() {
        if let Err(wait) = rates.check_source() {
            return rate_limited(&app, &path, wait);
        }
    }
    if app.draining.load(Ordering::SeqCst) {
        return unavailable(&app, &path, "stopping", "the server is stopping", 1);
    }
    let (parts, body) = request.into_parts();
    if let Err(refusal) =
        receive::check_media_type(header_text(&parts.headers, header::CONTENT_TYPE))
    {
        return refuse(refusal);
    }
    let declared =
        header_text(&parts.headers, header::CONTENT_LENGTH).and_then(|l| l.parse::<u64>().ok());
    if declared.is_some_and(|length| length > app.limits.max_body as u64) {
        return refuse(Refusal::TooLarge(format!(
            "the body is over {} bytes",
            app.limits.max_body
        )));
    }
    let bytes = match tokio::time::timeout(
        app.body_timeout,
        axum::body::to_bytes(body, app.limits.max_body),
    )
    .await
    {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(error)) => {
            let over_limit = error
                .into_inner()
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            return if over_limit {
                refuse(Refusal::TooLarge(format!(
                    "the body is over {} bytes",
                    app.limits.max_body
                )))
            } else {
                app.metrics
                    .refused
                    .get_or_create(&metrics::refusal(&path, "unreadable_body"))
                    .inc();
                json_response(
                    StatusCode::BAD_REQUEST,
                    json!({"error": "the body could not be read (cut short or badly chunked)"}),
                )
            };
        }
        Err(_) => {
            app.metrics
                .refused
                .get_or_create(&metrics::refusal(&path, "body_timeout"))
                .inc();
            return json_response(
                StatusCode::REQUEST_TIMEOUT,
                json!({"error": format!("the body did not arrive within {} s", app.body_timeout.as_secs())}),
            );
        }
    };
    // Signatures are over the bytes as received, before any decoding.
    let message = match auth.check_body(&parts.headers, &bytes, SystemTime::now()) {
        Ok(message) => message,
        Err(refused) => return refused_by_auth(&app, &path, &refused),
    };
    if auth.needs_body() {
        if let Err(wait) = rates.check_source() {
            return rate_limited(&app, &path, wait);
        }
    }
    let mut admitted = match message {
        None => None,
        Some(id) => match auth.admit(&id, SystemTime::now()) {
            auth::Admission::New => Some(Admitted {
                auth: Arc::clone(&auth),
                id,
                accepted: false,
            }),
            auth::Admission::InFlight => {
                let mut response = json_response(
                    StatusCode::CONFLICT,
                    json!({"error": "a message with this webhook-id is being received; retry"}),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from(1));
                return response;
            }
            auth::Admission::Duplicate => {
                app.metrics
                    .refused
                    .get_or_create(&metrics::refusal(&path, "duplicate"))
                    .inc();
                // Accepted before: the sender may stop retrying, and nothing is kept twice.
                return json_response(
                    StatusCode::OK,
                    json!({"records": 0, "ids": [], "duplicate": true}),
                );
            }
        },
    };
    let encoding = header_text(&parts.headers, header::CONTENT_ENCODING).map(str::to_string);
    let limits = app.limits;
    let work_pipeline = Arc::clone(&pipeline);
    let source_path: Arc<str> = Arc::from(path.as_str());
    let delivery = delivery_id(&parts.headers);
    // Transforming is CPU work (up to a record's time limit): off the async threads.
    let prepared = tokio::task::spawn_blocking(move || {
        let decoded = receive::decode(encoding.as_deref(), &bytes, &limits)?;
        let body = decoded.as_deref().unwrap_or(&bytes);
        let records = receive::records(body, &limits)?;
        Ok::<_, Refusal>(prepare(
            &work_pipeline,
            source,
            &source_path,
            delivery.as_deref(),
            records,
        ))
    })
    .await;
    let prepared = match prepared {
        Ok(Ok(prepared)) => prepared,
        Ok(Err(refusal)) => return refuse(refusal),
        Err(error) => {
            tracing::error!(%error, "the work on a body ended abnormally");
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "the body could not be processed; nothing of it was kept"}),
            );
        }
    };
    let destinations: Vec<Arc<str>> = prepared
        .records
        .iter()
        .map(|r| Arc::clone(&r.destination))
        .collect();
    match app.spool.store(prepared.records, prepared.dead).await {
        Ok(()) => {}
        Err(SpoolError::Full(why)) => {
            tracing::warn!(source = %path, %why, "the spool is full: refusing (503)");
            return unavailable(
                &app,
                &path,
                "spool_full",
                &format!("the spool is full ({why}); retry later"),
                5,
            );
        }
        Err(error) => {
            tracing::error!(source = %path, %error, "cannot store records: refusing (503)");
            return unavailable(
                &app,
                &path,
                "storage",
                "the records could not be stored; retry later",
                1,
            );
        }
    }
    if let Ok(wakes) = app.wakes.read() {
        let mut told: Vec<&str> = Vec::new();
        for name in &destinations {
            if !told.contains(&&**name) {
                told.push(name);
                if let Some(wake) = wakes.get(&**name) {
                    wake.notify_one();
                }
            }
        }
    }
    let m = &app.metrics;
    m.records_received
        .get_or_create(&labels)
        .inc_by(prepared.received);
    m.transformed
        .get_or_create(&labels)
        .inc_by(prepared.emitted);
    m.dropped.get_or_create(&labels).inc_by(prepared.dropped);
    if prepared.failed > 0 {
        m.dead_lettered
            .get_or_create(&metrics::destination("-"))
            .inc_by(prepared.failed);
    }
    m.accept_seconds
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    if let Some(admitted) = &mut admitted {
        admitted.accepted = true;
    }
    let ids: Vec<&str> = prepared.ids.iter().map(|id| &**id).collect();
    json_response(
        StatusCode::OK,
        json!({
            "records": prepared.received,
            "ids": ids,
            "dropped": prepared.dropped,
            "dead_lettered": prepared.failed,
        }),
    )
}

/// A Standard Webhooks message being received: when the request ends, its id
/// is kept for the replay window if it was accepted, else forgotten (so that
/// the sender's retry is taken), whichever way the request ends.
struct Admitted {
    auth: Arc<auth::Auth>,
    id: String,
    accepted: bool,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.auth.settle(&self.id, self.accepted, SystemTime::now());
    }
}

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
    let reason = if refused.status == StatusCode::FORBIDDEN {
        "forbidden"
    } else {
        "unauthorized"
    };
    app.metrics
        .refused
        .get_or_create(&metrics::refusal(path, reason))
        .inc();
    let mut response = json_response(refused.status, json!({ "error": refused.reason }));
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

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The sender's own id of a delivery, the same in its retries: Standard
/// Webhooks' `webhook-id`, GitHub's `X-GitHub-Delivery`, or `Idempotency-Key`.
fn delivery_id(headers: &HeaderMap) -> Option<String> {
    ["webhook-id", "x-github-delivery", "idempotency-key"]
        .iter()
        .find_map(|name| headers.get(*name)?.to_str().ok())
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.len() <= 256)
        .map(str::to_string)
}

/// A record's id: derived from the sender's delivery id when there is one,
/// so that a retry of the request gives its records the ids they had (and a
/// queue that de-duplicates by id, JetStream, keeps them once); else new.
fn record_id(source_path: &str, delivery: Option<&str>, index: usize) -> Arc<str> {
    let Some(delivery) = delivery else {
        return Arc::from(uuid::Uuid::now_v7().to_string());
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

/// Transforms a body's records and addresses the results to destinations.
fn prepare(
    pipeline: &Pipeline,
    source: usize,
    source_path: &Arc<str>,
    delivery: Option<&str>,
    records: Vec<receive::Received>,
) -> Prepared {
    let source_name = pipeline.sources[source].name.as_str();
    let transform = &pipeline.sources[source].transform;
    let now = spool::now_ms();
    let mut prepared = Prepared {
        records: Vec::new(),
        dead: Vec::new(),
        ids: Vec::with_capacity(records.len()),
        received: records.len() as u64,
        emitted: 0,
        dropped: 0,
        failed: 0,
    };
    for (index, received) in records.into_iter().enumerate() {
        let id = record_id(source_path, delivery, index);
        prepared.ids.push(Arc::clone(&id));
        // Subscriptions are judged on the record as received (the output may be a HEC envelope).
        let mut wanted: Vec<&Arc<Destination>> = Vec::new();
        for destination in &pipeline.destinations {
            match destination.wants(source_name, &received.record) {
                Ok(true) => wanted.push(destination),
                Ok(false) => {}
                Err(error) => prepared.dead.push(DeadRecord {
                    destination: Some(Arc::clone(&destination.name)),
                    record_id: Arc::clone(&id),
                    source: Arc::clone(source_path),
                    received_ms: now,
                    reason: format!("the destination's `when` failed: {error}"),
                    attempts: "[]".to_string(),
                    body: received.raw.clone(),
                }),
            }
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            transform.apply_once(received.record)
        }))
        .unwrap_or_else(|_| {
            Err(crate::RecordError::new(
                crate::apply::ErrorKind::Internal,
                None,
                "the transform panicked on this record (a bug in xf)",
            ))
        });
        // Each record made of it is stored once per destination that wants
        // it; those `fan_out` made have ids of their own, derived from the
        // record's (`ID-1`, `ID-2`, …), so that a retried request repeats them.
        let mut store = |record_id: Arc<str>, value: &Value| {
            let body = serde_json::to_vec(value).unwrap_or_default();
            for destination in &wanted {
                prepared.records.push(NewRecord {
                    destination: Arc::clone(&destination.name),
                    record_id: Arc::clone(&record_id),
                    source: Arc::clone(source_path),
                    body: body.clone(),
                });
            }
        };
        match outcome {
            Ok(Outcome::Emit(value)) => {
                store(Arc::clone(&id), &value);
                prepared.emitted += 1;
            }
            Ok(Outcome::Fanned(values)) => {
                for (k, value) in values.iter().enumerate() {
                    store(Arc::from(format!("{id}-{}", k + 1)), value);
                }
                prepared.emitted += 1;
            }
            Ok(Outcome::Dropped) => prepared.dropped += 1,
            Err(error) => {
                prepared.failed += 1;
                prepared.dead.push(DeadRecord {
                    destination: None,
                    record_id: id,
                    source: Arc::clone(source_path),
                    received_ms: now,
                    reason: error.to_string(),
                    attempts: "[]".to_string(),
                    body: received.raw,
                });
            }
        }
    }
    prepared
}
