//! `xf serve`: receive webhooks, transform them, queue the results durably
//! and deliver them to every destination that wants them.
//!
//! ```text
//!  POST ─▶ receive ─▶ records ─▶ apply ─▶ results ─▶ queue (synced) ─▶ 2xx
//!          (auth, rates,                              │ one per destination
//!           body limits)                              ▼
//!                                deliver (retries, backoff, dead letters) ─▶ POST
//! ```
//!
//! The folders follow that path; each imports only from those before it:
//! - [`receive`]: connections, request heads and bodies, authentication, rate limits, TLS;
//! - [`queue`]: where accepted records wait (the embedded SQLite spool, or JetStream);
//! - [`deliver`]: one worker per destination, its answers judged, failures noticed;
//! - [`config`]: the pipeline file that assembles sources and destinations, and its reload;
//! - `request.rs` is one webhook's way through them, step by step, and [`route`] one
//!   record's, from its transform to its destinations' queues;
//! - [`metrics`] is what `GET /metrics` shows, counted by every stage.

pub mod config;
pub mod deliver;
pub mod metrics;
pub mod queue;
pub mod receive;
mod request;
pub mod route;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tokio::sync::{watch, Notify};

use config::reload::Watch;
pub use config::{LoadPipeline, Pipeline, Refused};
use deliver::guard;
use deliver::notice;
use queue::spool::{Spool, SpoolLimits};
use receive::body::BodyLimits;
use receive::{tls, ConnectionLimits};

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

/// The state every request and worker shares.
pub(crate) struct App {
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
    /// What sources fetch their issuers' key sets with: the deliveries'
    /// client (through the request forgery guard, no redirects).
    client: reqwest::Client,
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
        guard::check_error_webhook(&guard, webhook)?;
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
        client: client.clone(),
    });
    let listener = receive::listen(options.listen)
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
        .route("/readyz", get(request::ready))
        .route("/metrics", get(request::metrics_text))
        .route("/oauth/token", axum::routing::post(request::token_request))
        .fallback(request::receive_request)
        .with_state(Arc::clone(&app));

    let (stop_accepting, accepting) = watch::channel(false);
    let server = tokio::spawn(receive::accept_loop(
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
        queue::QueueChoice::Nats(options) => match queue::jetstream::Reaching::start(options).await
        {
            Ok(queue) => Ok(Arc::new(queue)),
            Err(error) => Err(format!("cannot open the queue on JetStream: {error}")),
        },
        #[cfg(not(feature = "nats"))]
        queue::QueueChoice::Nats(_) => {
            Err("this xf was built without JetStream (the `nats` feature, on by default): build it with default features, or `--features nats`".to_string())
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
        let mut problems = guard::refused_destinations(&guard, &pipeline.destinations);
        problems.extend(guard::refused_key_sets(&guard, &pipeline.sources));
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
        // A queue not reached yet (JetStream) says which are disabled once it
        // is: the workers ask it (`Queue::disabled_elsewhere`).
        let reached = self.app.spool.ready().is_ok();
        let disabled = match self.app.spool.overview().await {
            Ok(overview) => overview.disabled,
            Err(error) => {
                if reached {
                    tracing::error!(%error, "cannot read which destinations are disabled");
                }
                Vec::new()
            }
        };
        if let Ok(overview) = self.app.spool.overview().await {
            for (name, depth) in &overview.queued {
                if !pipeline.destinations.iter().any(|d| *d.name == **name) {
                    tracing::warn!(destination = %name, records = depth.records,
                        "records are queued for a destination the pipeline no longer has: they wait until it comes back (or `xf spool purge --queued --destination`)");
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
        // What the workers settled is written before the queue is let go.
        if let Err(error) = self.app.spool.flush().await {
            tracing::error!(%error, "cannot write the last settled records");
        }
    }

    async fn restart(&mut self) {
        self.stop().await;
        self.start().await;
    }
}
