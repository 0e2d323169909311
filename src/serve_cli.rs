//! `xf serve` and `xf spool`: the server's command line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::params;
use xf::serve::config;
use xf::serve::config::pipeline::{Loaded, ServerSettings};
use xf::serve::config::reload;
use xf::serve::deliver::destination::{self, BodyFormat, Destination, MAX_TIMEOUT};
use xf::serve::deliver::notice::NoticeConfig;
use xf::serve::queue::spool::{self, SpoolLimits};
use xf::serve::queue::{NatsOptions, QueueChoice};
use xf::serve::receive::auth::{self, Auth, KeyPlace, Scheme};
use xf::serve::receive::body::BodyLimits;
use xf::serve::receive::digest::Digest;
use xf::serve::receive::source::Source;
use xf::serve::receive::ConnectionLimits;
use xf::serve::{Pipeline, Refused, ServeOptions};
use xf::LoadOptions;

use crate::shared_cli::{load_transform, print_stdout, ArmorArgs, FileArgs, LimitArgs};

/// Receive webhooks, transform them, spool them durably and deliver them
#[derive(clap::Args)]
pub struct ServeArgs {
    /// A pipeline file (.xfp): sources, destinations and settings. Without one,
    /// the flags below describe one source at `/` and its destinations
    #[arg(value_name = "PIPELINE")]
    pipeline: Option<PathBuf>,
    /// The address to listen on [default: the pipeline's `listen`, or 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The spool folder (created if missing): every accepted record is kept there until delivered [default: the pipeline's `spool`]
    #[arg(long, value_name = "DIR")]
    spool: Option<PathBuf>,
    /// Where records wait: `embedded` (the spool folder) or a NATS JetStream server shared by several
    /// instances, `nats://HOST:4222` (several URLs: separated by commas; `tls://` for TLS)
    /// [default: the pipeline's `queue`, or embedded]
    #[arg(long, value_name = "embedded|URL")]
    queue: Option<String>,
    /// The NATS user [default: the pipeline's `queue_user`]
    #[arg(long = "queue-user", value_name = "USER")]
    queue_user: Option<String>,
    /// The NATS password, from this environment variable [default: the pipeline's `queue_password`]
    #[arg(long = "queue-password-env", value_name = "VAR")]
    queue_password_env: Option<String>,
    /// The NATS token, from this environment variable [default: the pipeline's `queue_token`]
    #[arg(long = "queue-token-env", value_name = "VAR")]
    queue_token_env: Option<String>,
    /// A NATS credentials file (.creds: JWT and NKey seed) [default: the pipeline's `queue_creds`]
    #[arg(long = "queue-creds", value_name = "FILE")]
    queue_creds: Option<PathBuf>,
    /// The CA certificate (PEM) of the NATS server's TLS; implies TLS [default: the pipeline's `queue_ca_file`]
    #[arg(long = "queue-ca-file", value_name = "PEM")]
    queue_ca_file: Option<PathBuf>,
    /// The start of the JetStream stream and subject names [default: the pipeline's `queue_prefix`, or xf]
    #[arg(long = "queue-prefix", value_name = "NAME")]
    queue_prefix: Option<String>,
    /// Seconds a record leased to an instance that stopped answering waits before another gets it
    /// [default: the pipeline's `queue_ack_wait`, or 30]
    #[arg(long = "queue-ack-wait", value_name = "SECONDS")]
    queue_ack_wait: Option<u64>,
    /// The transform for bodies POSTed to `/`: a .xf file, or an Armor transform config (.json)
    #[arg(long, value_name = "FILE")]
    transform: Option<PathBuf>,
    /// How senders to `/` authenticate: none, basic, bearer, api_key, standard_webhooks, github or oauth.
    /// Without it, anyone may send, so the server listens only on a loopback address
    #[arg(long, value_name = "SCHEME")]
    auth: Option<String>,
    /// A secret of --auth from an environment variable (repeatable: each one valid, for rotation)
    #[arg(long = "auth-secret-env", value_name = "VAR")]
    auth_secret_env: Vec<String>,
    /// A secret of --auth from a file, its first line (repeatable)
    #[arg(long = "auth-secret-file", value_name = "PATH")]
    auth_secret_file: Vec<PathBuf>,
    /// The user name of --auth basic
    #[arg(long = "auth-user", value_name = "USER")]
    auth_user: Option<String>,
    /// The header that carries the key of --auth api_key
    #[arg(long = "auth-header", value_name = "NAME")]
    auth_header: Option<String>,
    /// The query parameter that carries the key of --auth api_key
    #[arg(long = "auth-query", value_name = "NAME")]
    auth_query: Option<String>,
    /// Requests per second `/` takes in all (default: no limit); more get 429 with Retry-After
    #[arg(long = "rate-limit", value_name = "N")]
    rate_limit: Option<std::num::NonZeroU32>,
    /// Requests per second `/` takes from one client address, an IPv6 /64 (default: no limit)
    #[arg(long = "client-rate-limit", value_name = "N")]
    client_rate_limit: Option<std::num::NonZeroU32>,
    /// TLS: the certificate chain (PEM) to serve HTTPS with, read again on every reload
    /// [default: the pipeline's `tls_cert`, or plain HTTP]
    #[arg(long = "tls-cert", value_name = "PEM")]
    tls_cert: Option<PathBuf>,
    /// TLS: the certificate's private key (PEM) [default: the pipeline's `tls_key`]
    #[arg(long = "tls-key", value_name = "PEM")]
    tls_key: Option<PathBuf>,
    /// A network destinations may reach although it is not public: loopback, private, link-local
    /// (repeatable) [default: the pipeline's `private_destinations`, or none]
    #[arg(long = "private-destination", value_name = "ADDR[/BITS]")]
    private_destinations: Vec<String>,
    /// An address or network that may send to `/` (repeatable; default: any); others get 403
    #[arg(long = "allow", value_name = "ADDR[/BITS]")]
    allow: Vec<String>,
    /// A destination URL (repeatable): every result is POSTed there
    #[arg(long = "to", value_name = "URL")]
    to: Vec<String>,
    /// A header sent to every --to destination, `Name: value` (repeatable)
    #[arg(long = "header", value_name = "'NAME: VALUE'")]
    headers: Vec<String>,
    /// A header whose value is read from an environment variable, `Name=VARIABLE` (repeatable): for secrets
    #[arg(long = "header-from-env", value_name = "NAME=VAR")]
    headers_from_env: Vec<String>,
    /// A header whose value is read from a file (its first line), `Name=PATH` (repeatable): for secrets
    #[arg(long = "header-from-file", value_name = "NAME=PATH")]
    headers_from_file: Vec<String>,
    /// An Armor Notifications API body (repeatable): its endpoint, headers, event types and email_for_error
    #[arg(long = "armor-notification", value_name = "FILE")]
    armor_notifications: Vec<PathBuf>,
    /// How --to destinations want their bodies: json (one record per request), array, ndjson or hec (batches)
    #[arg(long, value_name = "FORMAT", default_value = "json")]
    format: String,
    /// Seconds one delivery request may take (at most 300)
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,
    /// Delivery requests in flight at once, per destination
    #[arg(long, value_name = "N", default_value_t = 4)]
    concurrency: usize,
    /// Attempts before a record is dead-lettered
    #[arg(long, value_name = "N", default_value_t = 30)]
    max_attempts: u32,
    /// Seconds after receipt before a record not yet delivered is dead-lettered
    #[arg(long, value_name = "SECS", default_value_t = 86_400)]
    max_age: u64,
    /// Records per batch request (formats array, ndjson, hec)
    #[arg(long, value_name = "N", default_value_t = 100)]
    batch_records: usize,
    /// Milliseconds a record may wait for others to fill its batch
    #[arg(long, value_name = "MS", default_value_t = 200)]
    batch_linger: u64,
    /// The largest request body, in bytes (as sent, and once decompressed) [default: the pipeline's `max_body`, or 10485760]
    #[arg(long, value_name = "BYTES")]
    max_body: Option<u64>,
    /// The most records one request body may hold [default: the pipeline's `max_body_records`, or 10000]
    #[arg(long, value_name = "N")]
    max_body_records: Option<u64>,
    /// The spool's size limit in bytes of records; beyond it requests get 503 [default: the pipeline's `spool_max_bytes`, or 1073741824]
    #[arg(long, value_name = "BYTES")]
    spool_max_bytes: Option<u64>,
    /// The spool's limit in records; beyond it requests get 503 [default: the pipeline's `spool_max_records`, or 1000000]
    #[arg(long, value_name = "N")]
    spool_max_records: Option<u64>,
    /// Connections open at once; more wait to be accepted [default: the pipeline's `max_connections`, or 1024]
    #[arg(long, value_name = "N")]
    max_connections: Option<u64>,
    /// Seconds a connection may take to send a request's headers (idle keep-alive included)
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    header_timeout: u64,
    /// Seconds a request may take to send its body
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    body_timeout: u64,
    /// An SMTP relay, HOST:PORT, for email_for_error notices [default: the pipeline's `smtp`]
    #[arg(long, value_name = "HOST:PORT")]
    smtp: Option<String>,
    /// The sender address of notices [default: the pipeline's `mail_from`, or xf@localhost]
    #[arg(long, value_name = "ADDRESS")]
    mail_from: Option<String>,
    /// A URL that receives each failure notice as JSON [default: the pipeline's `error_webhook`]
    #[arg(long, value_name = "URL")]
    error_webhook: Option<String>,
    /// Seconds between two notices about one destination [default: the pipeline's `notice_interval`, or 3600]
    #[arg(long, value_name = "SECS")]
    notice_interval: Option<u64>,
    /// Seconds between looks at the pipeline's files (pipeline, transforms and what they read, notification configs, secret files): a change reloads it, as SIGHUP does; 0: only SIGHUP reloads [default: the pipeline's `reload_poll`, or 2]
    #[arg(long, value_name = "SECS")]
    reload_poll: Option<u64>,
    /// Log lines as text or as JSON
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(flatten)]
    armor: ArmorArgs,
    #[command(flatten)]
    files: FileArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

/// Look into a spool: its queues and dead letters
#[derive(clap::Subcommand)]
pub enum SpoolCommand {
    /// Records queued per destination, dead letters, disabled destinations
    Stats(SpoolPlace),
    /// Queued records (or dead letters, with --dead) as JSON lines
    List {
        #[command(flatten)]
        place: SpoolPlace,
        /// List the dead letters instead of the queue
        #[arg(long)]
        dead: bool,
        /// Only this destination's
        #[arg(long, value_name = "NAME")]
        destination: Option<String>,
        /// At most this many
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: u64,
    },
    /// Queue dead letters again, to their own destination or to --to; with --transform, run the records the transform failed on through the pipeline's current transforms
    Replay {
        #[command(flatten)]
        place: SpoolPlace,
        /// Only the dead letters of this destination
        #[arg(long, value_name = "NAME", conflicts_with = "transform")]
        destination: Option<String>,
        /// Queue them for this destination instead of their own
        #[arg(long, value_name = "NAME", conflicts_with = "transform")]
        to: Option<String>,
        /// The records the transform failed on, each through its source's transform in PIPELINE (loaded as xf serve loads it): what they make is queued for the destinations that want it, what still fails stays dead with its new reason
        #[arg(long, value_name = "PIPELINE")]
        transform: Option<PathBuf>,
        /// Show what would be replayed, and change nothing
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        files: FileArgs,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Delete dead letters (or, with --queued, queued records)
    Purge {
        #[command(flatten)]
        place: SpoolPlace,
        /// Delete queued records instead of dead letters (`--queue` names a JetStream server)
        #[arg(long)]
        queued: bool,
        /// Only this destination's
        #[arg(long, value_name = "NAME")]
        destination: Option<String>,
    },
    /// Turn a destination disabled by a 410 back on
    Enable {
        #[command(flatten)]
        place: SpoolPlace,
        /// The destination's name
        destination: String,
    },
}

#[derive(clap::Args)]
pub struct SpoolPlace {
    /// The spool folder
    #[arg(long, value_name = "DIR", required_unless_present = "queue")]
    spool: Option<PathBuf>,
    /// The queue on NATS JetStream instead: its server, nats://HOST:PORT
    #[arg(long, value_name = "URL", conflicts_with = "spool")]
    queue: Option<String>,
    /// The NATS user
    #[arg(long = "queue-user", value_name = "USER", requires = "queue")]
    queue_user: Option<String>,
    /// The NATS password, from this environment variable
    #[arg(long = "queue-password-env", value_name = "VAR", requires = "queue")]
    queue_password_env: Option<String>,
    /// The NATS token, from this environment variable
    #[arg(long = "queue-token-env", value_name = "VAR", requires = "queue")]
    queue_token_env: Option<String>,
    /// A NATS credentials file (.creds)
    #[arg(long = "queue-creds", value_name = "FILE", requires = "queue")]
    queue_creds: Option<PathBuf>,
    /// The CA certificate (PEM) of the NATS server's TLS
    #[arg(long = "queue-ca-file", value_name = "PEM", requires = "queue")]
    queue_ca_file: Option<PathBuf>,
    /// The start of the stream and subject names the servers use
    #[arg(
        long = "queue-prefix",
        value_name = "NAME",
        default_value = "xf",
        requires = "queue"
    )]
    queue_prefix: String,
}

impl SpoolCommand {
    fn place(&self) -> &SpoolPlace {
        match self {
            SpoolCommand::Stats(place) => place,
            SpoolCommand::List { place, .. }
            | SpoolCommand::Replay { place, .. }
            | SpoolCommand::Purge { place, .. }
            | SpoolCommand::Enable { place, .. } => place,
        }
    }
}

pub fn serve(args: ServeArgs) -> ExitCode {
    init_logs(&args.log_format);
    // reqwest is built without a TLS provider of its own: ring, through rustls.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Checked once before the runtime starts, so a bad start says why at once.
    let settings = match load_pipeline(&args) {
        Ok(loaded) => loaded.settings,
        Err(refused) => {
            eprint!("{}", with_newline(refused.problems));
            return ExitCode::from(2);
        }
    };
    let options = match serve_options(&args, settings) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("xf-serve")
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let args = Arc::new(args);
    let load = {
        let args = Arc::clone(&args);
        Box::new(move || load_pipeline(&args).map(|loaded| loaded.pipeline))
    };
    match runtime.block_on(xf::serve::serve(options, load)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprint!("{}", as_error(error));
            ExitCode::from(2)
        }
    }
}

/// A reason `xf::serve::serve` gives, as printed: a refused pipeline's
/// problems say `error…` themselves (rendered diagnostics, `error:
/// destination …`); any other reason (an address in use) gets the `error: `
/// every refusal starts with, once.
fn as_error(reason: String) -> String {
    let reason = with_newline(reason);
    if reason.starts_with("error:") || reason.starts_with("error[") {
        reason
    } else {
        format!("error: {reason}")
    }
}

fn init_logs(format: &str) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn with_newline(mut text: String) -> String {
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// The server's settings, each from its flag if given, else from the
/// pipeline file, else the default: the one place where they meet.
fn serve_options(args: &ServeArgs, mut file: ServerSettings) -> Result<ServeOptions, String> {
    let spool_limits = SpoolLimits {
        max_bytes: args
            .spool_max_bytes
            .or(file.spool_max_bytes)
            .unwrap_or(SpoolLimits::default().max_bytes),
        max_records: args
            .spool_max_records
            .or(file.spool_max_records)
            .unwrap_or(SpoolLimits::default().max_records),
    };
    let queue = match queue_options(args, &mut file, spool_limits)? {
        Some(nats) => QueueChoice::Nats(Box::new(nats)),
        None => QueueChoice::Embedded(args.spool.clone().or(file.spool.clone()).ok_or(
            if args.pipeline.is_some() {
                "the pipeline sets no `spool`, and --spool is not given"
            } else {
                "--spool DIR is needed (or a pipeline file that sets `spool`)"
            },
        )?),
    };
    let smtp = match &args.smtp {
        None => file.smtp,
        Some(text) => Some(smtp_relay(text)?),
    };
    let webhook = match &args.error_webhook {
        None => file.error_webhook,
        Some(text) => Some(config::parse_uri(text).map_err(|e| format!("--error-webhook: {e}"))?),
    };
    let (body_limits, notices) = (BodyLimits::default(), NoticeConfig::default());
    let max_body = args
        .max_body
        .or(file.max_body)
        .map_or(body_limits.max_body, |n| n as usize);
    let reload_poll = args
        .reload_poll
        .or(file.reload_poll)
        .map_or(reload::DEFAULT_POLL, Duration::from_secs)
        .min(reload::POLL_LIMIT);
    Ok(ServeOptions {
        listen: {
            let listen = args.listen.or(file.listen).unwrap_or(DEFAULT_LISTEN);
            if args.pipeline.is_none() && args.auth.is_none() && !listen.ip().is_loopback() {
                return Err(format!(
                    "without --auth anyone may send, so the quick start listens only on a loopback \
                     address, not {listen}: give --auth (or --auth none, to take webhooks from anyone \
                     who can reach it)"
                ));
            }
            listen
        },
        tls: match (
            args.tls_cert.clone().or(file.tls_cert),
            args.tls_key.clone().or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => Some(xf::serve::receive::tls::TlsFiles { cert, key }),
            (None, None) => None,
            _ => return Err("TLS needs both a certificate and its key (--tls-cert and --tls-key, or tls_cert and tls_key)".into()),
        },
        private_destinations: crate::shared_cli::private_networks(
            &args.private_destinations,
            file.private_destinations,
        )?,
        queue,
        spool_limits,
        body_limits: BodyLimits {
            max_body,
            max_decoded: max_body,
            max_records: args
                .max_body_records
                .or(file.max_body_records)
                .map_or(body_limits.max_records, |n| n as usize),
            ..body_limits
        },
        connections: ConnectionLimits {
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .map_or(ConnectionLimits::default().max_connections, |n| {
                    n.max(1) as usize
                }),
            header_timeout: Duration::from_secs(args.header_timeout.max(1)),
            body_timeout: Duration::from_secs(args.body_timeout.max(1)),
        },
        notices: NoticeConfig {
            smtp,
            from: args
                .mail_from
                .clone()
                .or(file.mail_from)
                .unwrap_or(notices.from),
            webhook,
            interval: args
                .notice_interval
                .or(file.notice_interval)
                .map_or(notices.interval, Duration::from_secs),
        },
        reload_poll: (!reload_poll.is_zero()).then_some(reload_poll),
    })
}

/// JetStream's settings, if the queue is on NATS (flags over the file's).
fn queue_options(
    args: &ServeArgs,
    file: &mut ServerSettings,
    limits: SpoolLimits,
) -> Result<Option<NatsOptions>, String> {
    let url = match args.queue.as_deref() {
        Some("embedded") => None,
        Some(url) if NatsOptions::is_url(url) => Some(url.to_string()),
        Some(other) => {
            return Err(format!(
                "--queue {other}: `embedded`, or a NATS URL (nats://HOST:PORT or tls://HOST:PORT)"
            ))
        }
        None => file.queue_nats.take(),
    };
    let Some(url) = url else {
        return Ok(None);
    };
    let from_env = |flag: &str, variable: &Option<String>| -> Result<Option<String>, String> {
        match variable {
            None => Ok(None),
            Some(variable) => std::env::var(variable)
                .map(Some)
                .map_err(|_| format!("{flag} {variable}: the environment has no such variable")),
        }
    };
    let mut nats = NatsOptions::new(&url);
    nats.user = args.queue_user.clone().or(file.queue_user.take());
    nats.password =
        from_env("--queue-password-env", &args.queue_password_env)?.or(file.queue_password.take());
    nats.token = from_env("--queue-token-env", &args.queue_token_env)?.or(file.queue_token.take());
    if nats.password.is_some() != nats.user.is_some() {
        return Err("a NATS password needs its user, and a user its password".into());
    }
    nats.creds = args.queue_creds.clone().or(file.queue_creds.take());
    nats.ca_file = args.queue_ca_file.clone().or(file.queue_ca_file.take());
    nats.tls = url.split(',').any(|u| u.trim().starts_with("tls://"));
    if let Some(prefix) = args.queue_prefix.clone().or(file.queue_prefix.take()) {
        if !NatsOptions::is_prefix(&prefix) {
            return Err(format!(
                "--queue-prefix {prefix}: 1 to 32 letters, digits, `_` or `-`"
            ));
        }
        nats.prefix = prefix;
    }
    if let Some(replicas) = file.queue_replicas {
        nats.replicas = replicas.clamp(1, 5) as usize;
    }
    if let Some(seconds) = args.queue_ack_wait.or(file.queue_ack_wait) {
        nats.ack_wait = Duration::from_secs(seconds.max(1));
    }
    if let Some(seconds) = file.queue_duplicate_window {
        nats.duplicate_window = Duration::from_secs(seconds.max(1));
    }
    nats.limits = limits;
    Ok(Some(nats))
}

/// `--smtp HOST:PORT`.
fn smtp_relay(text: &str) -> Result<(String, u16), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("--smtp {text}: HOST:PORT"))?;
    let port = port
        .parse()
        .map_err(|_| format!("--smtp {text}: `{port}` is not a port"))?;
    Ok((host.to_string(), port))
}

/// Where the server listens when neither the flags nor the pipeline say.
const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);

/// Loads the pipeline file, or what the flags describe: one source at `/`
/// and its destinations.
fn load_pipeline(args: &ServeArgs) -> Result<Loaded, Refused> {
    let options = args.files.options(args.limits.limits());
    if let Some(file) = &args.pipeline {
        if args.transform.is_some() || !args.to.is_empty() || !args.armor_notifications.is_empty() {
            return Err(Refused {
                problems: "error: give a pipeline file, or --transform with --to/--armor-notification, not both".to_string(),
                watched: Vec::new(),
            });
        }
        return xf::serve::config::pipeline::load_watched(file, &options);
    }
    let mut watched = named_files(args);
    match quick_start(args, &options) {
        Ok(mut loaded) => {
            for source in &loaded.pipeline.sources {
                watched.extend_from_slice(source.transform.files());
            }
            loaded.pipeline.watched = watched;
            Ok(loaded)
        }
        Err(problems) => Err(Refused { problems, watched }),
    }
}

/// The files the quick-start flags name: the transform (and its tags
/// table), notification configs, secret files.
fn named_files(args: &ServeArgs) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = args.transform.iter().cloned().collect();
    files.extend(args.armor.options().tags.map(PathBuf::from));
    files.extend(args.armor_notifications.iter().cloned());
    for text in &args.headers_from_file {
        if let Some((_, path)) = text.split_once('=') {
            files.push(PathBuf::from(path));
        }
    }
    files
}

/// One source at `/`, its transform and destinations from the flags.
fn quick_start(args: &ServeArgs, options: &LoadOptions) -> Result<Loaded, String> {
    let Some(path) = &args.transform else {
        return Err("error: give a pipeline file, or --transform FILE with --to URL (see `xf serve --help`)".to_string());
    };
    let transform = load_transform(path, &args.armor, options)
        .map_err(|problems| problems.trim_end().to_string())?;
    let mut problems = Vec::new();
    let mut headers = Vec::new();
    for text in &args.headers {
        match config::parse_header(text) {
            Ok(header) => headers.push(header),
            Err(error) => problems.push(format!("error: --header: {error}")),
        }
    }
    for (flag, list, from_file) in [
        ("--header-from-env", &args.headers_from_env, false),
        ("--header-from-file", &args.headers_from_file, true),
    ] {
        for text in list {
            match secret_header(text, from_file) {
                Ok(header) => headers.push(header),
                Err(error) => problems.push(format!("error: {flag} {text}: {error}")),
            }
        }
    }
    let Some(format) = BodyFormat::parse(&args.format) else {
        return Err(format!(
            "error: --format {}: json, array, ndjson or hec",
            args.format
        ));
    };
    if args.timeout == 0 || Duration::from_secs(args.timeout) > MAX_TIMEOUT {
        problems.push(format!(
            "error: --timeout {}: 1 to 300 seconds",
            args.timeout
        ));
    }
    let mut destinations: Vec<Destination> = Vec::new();
    for uri in &args.to {
        match config::parse_uri(uri) {
            Ok(parsed) => {
                // Named by the URL without what may be a secret (a password,
                // a query's key): the name goes into metrics, logs and the spool.
                let mut shown = parsed.clone();
                let _ = shown.set_password(None);
                let _ = shown.set_username("");
                shown.set_query(None);
                let mut destination = Destination::new(shown.as_str(), parsed);
                destination.headers = headers.clone();
                destination.format = format;
                destinations.push(destination);
            }
            Err(error) => problems.push(format!("error: --to: {error}")),
        }
    }
    for file in &args.armor_notifications {
        match config::armor_notification(file) {
            Ok(destination) => destinations.push(destination),
            Err(error) => problems.extend(error.lines().map(|line| format!("error: {line}"))),
        }
    }
    for destination in &mut destinations {
        destination.timeout = Duration::from_secs(args.timeout.clamp(1, 300));
        destination.concurrency = args.concurrency.max(1);
        destination.retry.max_attempts = args.max_attempts.clamp(1, 1_000_000);
        destination.retry.max_age =
            Duration::from_secs(args.max_age.clamp(1, destination::MAX_AGE_LIMIT));
        destination.batch.max_records = args
            .batch_records
            .clamp(1, destination::BATCH_RECORDS_LIMIT);
        destination.batch.linger =
            Duration::from_millis(args.batch_linger.min(destination::LINGER_LIMIT_MS));
    }
    if destinations.is_empty() {
        problems
            .push("error: no destination: give --to URL or --armor-notification FILE".to_string());
    }
    for (i, destination) in destinations.iter().enumerate() {
        if destinations[..i].iter().any(|d| d.name == destination.name) {
            problems.push(format!(
                "error: two destinations are named `{}`: each needs its own name (its queue in the spool)",
                destination.name
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    let slot = xf::serve::receive::auth::IssuerSlot::default();
    let issuer = Arc::new(quick_issuer(args)?);
    let _ = slot.set(Arc::clone(&issuer));
    Ok(Loaded {
        settings: ServerSettings::default(),
        pipeline: Pipeline {
            issuer: Arc::clone(&issuer),
            sources: vec![Source {
                name: "default".to_string(),
                path: "/".to_string(),
                transform: Arc::new(transform),
                auth: Arc::new(quick_auth(args, &slot)?.with_window_of("/")),
                rates: Arc::new(xf::serve::receive::rate::Rates::new(
                    args.rate_limit,
                    args.client_rate_limit,
                )),
                counters: std::sync::OnceLock::new(),
                fields_seen: std::sync::OnceLock::new(),
            }],
            destinations: destinations.into_iter().map(Arc::new).collect(),
            watched: Vec::new(),
        },
    })
}

/// The quick start's token issuer: for `--auth oauth`, its one client
/// (`--auth-user`) with the --auth secrets; tokens signed with a key made
/// for this process.
fn quick_issuer(args: &ServeArgs) -> Result<xf::serve::receive::oauth::Issuer, String> {
    let mut clients = std::collections::HashMap::new();
    if args.auth.as_deref() == Some("oauth") {
        let client = args
            .auth_user
            .clone()
            .ok_or("error: --auth oauth needs --auth-user CLIENT_ID")?;
        let secrets = auth_secrets(args)?;
        clients.insert(client, Digest::of_each(&secrets));
    }
    let allow = quick_allow(args)?;
    Ok(xf::serve::receive::oauth::Issuer::new(
        None,
        xf::serve::receive::oauth::DEFAULT_TOKEN_LIFETIME,
        clients,
    )
    .guarded_by((!allow.is_empty()).then_some(allow), args.client_rate_limit))
}

/// The --auth secrets, from the environment and files, none empty.
fn auth_secrets(args: &ServeArgs) -> Result<Vec<String>, String> {
    let mut secrets = Vec::new();
    for variable in &args.auth_secret_env {
        let secret = std::env::var(variable).map_err(|_| {
            format!("error: --auth-secret-env: the environment has no variable {variable}")
        })?;
        secrets.push(secret);
    }
    for path in &args.auth_secret_file {
        let text = config::read_config_file(path)
            .map_err(|e| format!("error: --auth-secret-file: {e}"))?;
        secrets.push(text.lines().next().unwrap_or("").trim().to_string());
    }
    if secrets.iter().any(String::is_empty) {
        return Err("error: an --auth secret is empty, which would let anyone in".into());
    }
    Ok(secrets)
}

/// The quick start's source authentication, from --auth and its flags.
/// The quick start's --allow networks, read as a pipeline's `allow` is.
fn quick_allow(args: &ServeArgs) -> Result<Vec<ipnet::IpNet>, String> {
    args.allow
        .iter()
        .map(|text| {
            xf::serve::config::pipeline::parse_network(text)
                .ok_or_else(|| format!("error: --allow {text}: not an address or a network"))
        })
        .collect()
}

fn quick_auth(
    args: &ServeArgs,
    issuer: &xf::serve::receive::auth::IssuerSlot,
) -> Result<Auth, String> {
    let allow = quick_allow(args)?;
    let secrets = auth_secrets(args)?;
    let scheme = args.auth.as_deref().unwrap_or("none");
    if scheme != "none" && secrets.is_empty() {
        return Err(format!(
            "error: --auth {scheme} needs its secret: --auth-secret-env VAR or --auth-secret-file PATH"
        ));
    }
    let digests = Digest::of_each;
    let scheme = match scheme {
        "none" => Scheme::None,
        "basic" => {
            let user = args
                .auth_user
                .as_deref()
                .filter(|user| !user.contains(':'))
                .ok_or("error: --auth basic needs --auth-user USER (without `:`)")?;
            let pairs: Vec<String> = secrets.iter().map(|s| format!("{user}:{s}")).collect();
            Scheme::Basic(digests(&pairs))
        }
        "bearer" => Scheme::Bearer(digests(&secrets)),
        "api_key" => {
            let place = match (&args.auth_header, &args.auth_query) {
                (Some(header), None) => KeyPlace::Header(
                    reqwest::header::HeaderName::from_bytes(header.as_bytes())
                        .map_err(|_| format!("error: --auth-header {header}: not a header name"))?,
                ),
                (None, Some(query)) => KeyPlace::Query(query.clone()),
                _ => return Err("error: --auth api_key needs --auth-header NAME or --auth-query NAME".into()),
            };
            Scheme::ApiKey {
                place,
                keys: digests(&secrets),
            }
        }
        "standard_webhooks" => Scheme::StandardWebhooks {
            keys: secrets
                .iter()
                .map(|s| auth::standard_webhooks_key(s))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("error: --auth standard_webhooks: {e}"))?,
            tolerance: auth::DEFAULT_TOLERANCE,
        },
        "oauth" => Scheme::OAuth {
            clients: args.auth_user.iter().cloned().collect(),
            issuer: Arc::clone(issuer),
        },
        "github" => Scheme::GitHub(auth::github_keys(&secrets)),
        other => {
            return Err(format!(
                "error: --auth {other}: the schemes are none, basic, bearer, api_key, standard_webhooks, github, oauth"
            ))
        }
    };
    Ok(Auth::new(allow, scheme))
}

/// `Name=VARIABLE` or `Name=PATH`: a header whose value is kept out of the command line.
fn secret_header(
    text: &str,
    from_file: bool,
) -> Result<(reqwest::header::HeaderName, reqwest::header::HeaderValue), String> {
    let (name, place) = text
        .split_once('=')
        .ok_or_else(|| "NAME=VALUE-SOURCE".to_string())?;
    let value = if from_file {
        let text = config::read_config_file(Path::new(place))?;
        text.lines().next().unwrap_or("").trim().to_string()
    } else {
        std::env::var(place).map_err(|_| format!("the environment has no variable {place}"))?
    };
    config::header(name.trim(), &value)
}

pub fn spool_command(command: SpoolCommand) -> ExitCode {
    let ran = if command.place().queue.is_some() {
        nats_spool_run(command)
    } else {
        spool_run(command)
    };
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

fn open(place: &SpoolPlace) -> Result<rusqlite::Connection, String> {
    let folder = place.spool.as_deref().unwrap_or(Path::new("."));
    let path = spool::database_path(folder);
    if !Path::new(&path).is_file() {
        return Err(format!("{} holds no spool", folder.display()));
    }
    spool::open_database(&path).map_err(|e| e.to_string())
}

/// `xf spool stats`' answer: indented JSON, and a line end.
fn pretty(stats: &serde_json::Value) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(stats).unwrap_or_default()
    )
}

/// `xf spool stats`' queues and dead letters, as JSON.
fn overview_json(
    overview: &spool::Overview,
    with_bytes: bool,
) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let now = spool::now_ms();
    let queued = overview
        .queued
        .iter()
        .map(|(name, depth)| {
            let mut line = serde_json::json!({
                "destination": name,
                "records": depth.records,
                "oldest_age_seconds": depth.oldest_ms.map(|at| (now - at).max(0) / 1000),
            });
            if with_bytes {
                line["bytes"] = depth.bytes.into();
            }
            line
        })
        .collect();
    let dead = overview
        .dead
        .iter()
        .map(|(name, count)| serde_json::json!({"destination": name, "records": count}))
        .collect();
    (queued, dead)
}

#[cfg(not(feature = "nats"))]
fn nats_spool_run(_: SpoolCommand) -> Result<(), String> {
    Err("this xf was built without JetStream (the `nats` feature, on by default): build it with default features, or `--features nats`".into())
}

/// `xf spool … --queue nats://…`: the same commands on the JetStream queue.
#[cfg(feature = "nats")]
fn nats_spool_run(command: SpoolCommand) -> Result<(), String> {
    use xf::serve::queue::jetstream::{self, JetStream};
    let place = command.place();
    let url = place.queue.clone().unwrap_or_default();
    let mut options = NatsOptions::new(&url);
    let env = |variable: &Option<String>| -> Result<Option<String>, String> {
        variable
            .as_ref()
            .map(|v| std::env::var(v).map_err(|_| format!("the environment has no variable `{v}`")))
            .transpose()
    };
    options.user = place.queue_user.clone();
    options.password = env(&place.queue_password_env)?;
    options.token = env(&place.queue_token_env)?;
    options.creds = place.queue_creds.clone();
    options.ca_file = place.queue_ca_file.clone();
    options.tls = url.starts_with("tls://");
    options.prefix = place.queue_prefix.clone();
    let through = match &command {
        SpoolCommand::Replay {
            transform: Some(pipeline),
            files,
            limits,
            ..
        } => Some(load_for_replay(pipeline, files, limits)?),
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))?;
    let text = |e: xf::serve::queue::spool::SpoolError| e.to_string();
    runtime.block_on(async {
        // Opened without touching the limits the servers set: only looked into.
        let queue = JetStream::look(&options).await.map_err(text)?;
        let overview = xf::serve::queue::Queue::overview(&queue).await.map_err(text)?;
        match command {
            SpoolCommand::Stats(_) => {
                let (records, bytes) = xf::serve::queue::Queue::usage(&queue);
                // JetStream knows no bytes per destination: the stream's total is given instead.
                let (queued, dead) = overview_json(&overview, false);
                let consumers: Vec<_> = queue
                    .consumers()
                    .await
                    .map_err(text)?
                    .into_iter()
                    .map(|(name, pending, in_flight, redelivered)| {
                        serde_json::json!({
                            "destination": name,
                            "not_yet_delivered": pending,
                            "in_flight": in_flight,
                            "redelivered": redelivered,
                        })
                    })
                    .collect();
                let stats = serde_json::json!({
                    "queue": options.shown_url(),
                    "consumers": consumers,
                    "stream": queue.names().records_stream,
                    "records": records,
                    "bytes": bytes,
                    "queued": queued,
                    "dead_letters": dead,
                    "disabled": overview.disabled,
                });
                print_stdout(&pretty(&stats))?;
            }
            SpoolCommand::List {
                dead,
                destination,
                limit,
                ..
            } => {
                for (to, message) in queue
                    .peek(dead, destination.as_deref(), 1, limit)
                    .await
                    .map_err(text)?
                {
                    let header = |name| jetstream::header(Some(&message.headers), name);
                    let record: serde_json::Value = serde_json::from_slice(&message.payload)
                        .unwrap_or_else(|_| {
                            String::from_utf8_lossy(&message.payload).into_owned().into()
                        });
                    let mut line = serde_json::json!({
                        "seq": message.sequence,
                        "destination": to,
                        "id": header(jetstream::RECORD_ID),
                        "source": header(jetstream::SOURCE),
                        "received_ms": header(jetstream::RECEIVED).and_then(|t| t.parse::<i64>().ok()),
                    });
                    if dead {
                        line["reason"] = header(jetstream::REASON).into();
                        line["attempts"] = header(jetstream::ATTEMPTS)
                            .and_then(|a| serde_json::from_str(&a).ok())
                            .unwrap_or_default();
                    }
                    line["record"] = record;
                    if !print_stdout(&format!("{line}\n"))? {
                        break;
                    }
                }
            }
            SpoolCommand::Replay { dry_run, .. } if through.is_some() => {
                if let Some(pipeline) = &through {
                    crate::replay_cli::replay_jetstream(&queue, pipeline, dry_run).await?;
                }
            }
            SpoolCommand::Replay {
                destination,
                dry_run: true,
                ..
            } => {
                // Counted, not moved: what `replay` would queue again.
                let (mut moved, mut left) = (0, 0);
                for (name, count) in &overview.dead {
                    match name {
                        None => left += count,
                        Some(name) if destination.as_ref().is_none_or(|d| d == name) => {
                            moved += count
                        }
                        Some(_) => {}
                    }
                }
                eprintln!("{moved} dead letter(s) would be queued again (dry run: nothing was changed)");
                if left > 0 {
                    eprintln!(
                        "{left} record(s) the transform failed on stay: `xf spool replay --transform PIPELINE` runs them through the current transforms"
                    );
                }
            }
            SpoolCommand::Replay {
                destination, to, ..
            } => {
                let (moved, left) = queue
                    .replay(destination.as_deref(), to.as_deref())
                    .await
                    .map_err(text)?;
                eprintln!("{moved} dead letter(s) queued again");
                if left > 0 {
                    eprintln!(
                        "{left} record(s) the transform failed on stay: `xf spool replay --transform PIPELINE` runs them through the current transforms"
                    );
                }
            }
            SpoolCommand::Purge {
                queued,
                destination,
                ..
            } => {
                let deleted = queue
                    .purge(!queued, destination.as_deref())
                    .await
                    .map_err(text)?;
                eprintln!("{deleted} record(s) deleted");
            }
            SpoolCommand::Enable { destination, .. } => {
                if !overview.disabled.contains(&destination) {
                    eprintln!("{destination} was not disabled");
                } else {
                    xf::serve::queue::Queue::set_disabled(&queue, &destination, false)
                        .await
                        .map_err(text)?;
                    eprintln!("{destination} is enabled: the running servers take it up again within a few seconds");
                }
            }
        }
        Ok(())
    })
}

/// The pipeline `xf spool replay --transform` routes through, loaded as
/// `xf serve` loads it (its secrets too: run it with the server's environment).
fn load_for_replay(path: &Path, files: &FileArgs, limits: &LimitArgs) -> Result<Pipeline, String> {
    // A transform named here by mistake would fail to parse as a pipeline, in less helpful words.
    if path.extension().is_some_and(|e| e == "xf") || xf::Transform::is_armor_config(path) {
        return Err(format!(
            "--transform names the pipeline file (.xfp) whose sources' transforms the records run through, not a transform ({})",
            path.display()
        ));
    }
    match xf::serve::config::pipeline::load(path, &files.options(limits.limits())) {
        Ok(loaded) => Ok(loaded.pipeline),
        Err(problems) => {
            eprint!("{problems}");
            Err(format!(
                "{} does not load: nothing was replayed",
                path.display()
            ))
        }
    }
}

fn spool_run(command: SpoolCommand) -> Result<(), String> {
    let sql = |e: rusqlite::Error| e.to_string();
    match command {
        SpoolCommand::Stats(place) => {
            let connection = open(&place)?;
            let overview = spool::overview(&connection).map_err(sql)?;
            let (queued, dead) = overview_json(&overview, true);
            let stats = serde_json::json!({
                "queued": queued,
                "dead_letters": dead,
                "disabled": overview.disabled,
            });
            print_stdout(&pretty(&stats))?;
        }
        SpoolCommand::List {
            place,
            dead,
            destination,
            limit,
        } => {
            let connection = open(&place)?;
            let query = if dead {
                "SELECT seq, destination, record_id, source, received_ms, reason, attempts, body FROM dead
                 WHERE ?1 IS NULL OR destination = ?1 ORDER BY seq LIMIT ?2"
            } else {
                "SELECT seq, destination, record_id, source, received_ms, attempts, attempt_log, body FROM queue
                 WHERE ?1 IS NULL OR destination = ?1 ORDER BY seq LIMIT ?2"
            };
            let mut statement = connection.prepare(query).map_err(sql)?;
            let mut rows = statement
                .query(params![destination, limit as i64])
                .map_err(sql)?;
            while let Some(row) = rows.next().map_err(sql)? {
                let body: Vec<u8> = row.get(7).map_err(sql)?;
                let record: serde_json::Value =
                    serde_json::from_slice(&body).unwrap_or_else(|_| {
                        serde_json::Value::String(String::from_utf8_lossy(&body).into_owned())
                    });
                let mut line = serde_json::json!({
                    "seq": row.get::<_, i64>(0).map_err(sql)?,
                    "destination": row.get::<_, Option<String>>(1).map_err(sql)?,
                    "id": row.get::<_, String>(2).map_err(sql)?,
                    "source": row.get::<_, String>(3).map_err(sql)?,
                    "received_ms": row.get::<_, i64>(4).map_err(sql)?,
                });
                if dead {
                    line["reason"] = row.get::<_, String>(5).map_err(sql)?.into();
                    let attempts: String = row.get(6).map_err(sql)?;
                    line["attempts"] = serde_json::from_str(&attempts).unwrap_or_default();
                } else {
                    line["attempts"] = row.get::<_, i64>(5).map_err(sql)?.into();
                    let log: String = row.get(6).map_err(sql)?;
                    line["attempt_log"] = serde_json::from_str(&log).unwrap_or_default();
                }
                line["record"] = record;
                if !print_stdout(&format!("{line}\n"))? {
                    break;
                }
            }
        }
        SpoolCommand::Replay {
            place,
            transform: Some(pipeline),
            dry_run,
            files,
            limits,
            ..
        } => {
            let pipeline = load_for_replay(&pipeline, &files, &limits)?;
            let mut connection = open(&place)?;
            crate::replay_cli::replay_sqlite(&mut connection, &pipeline, dry_run)?;
        }
        SpoolCommand::Replay {
            place,
            destination,
            to,
            dry_run,
            ..
        } => {
            let mut connection = open(&place)?;
            let transaction = connection.transaction().map_err(sql)?;
            let now = spool::now_ms();
            let moved = transaction
                .execute(
                    "INSERT INTO queue (destination, record_id, source, received_ms, due_ms, body)
                     SELECT coalesce(?1, destination), record_id, source, ?3, ?3, body FROM dead
                     WHERE destination IS NOT NULL AND (?2 IS NULL OR destination = ?2)",
                    params![to, destination, now],
                )
                .map_err(sql)?;
            transaction
                .execute(
                    "DELETE FROM dead WHERE destination IS NOT NULL AND (?1 IS NULL OR destination = ?1)",
                    params![destination],
                )
                .map_err(sql)?;
            let left: i64 = transaction
                .query_row(
                    "SELECT count(*) FROM dead WHERE destination IS NULL",
                    [],
                    |r| r.get(0),
                )
                .map_err(sql)?;
            if dry_run {
                // Rolled back: the same statements tell what would be done.
                drop(transaction);
                eprintln!(
                    "{moved} dead letter(s) would be queued again (dry run: nothing was changed)"
                );
            } else {
                transaction.commit().map_err(sql)?;
                eprintln!("{moved} dead letter(s) queued again");
            }
            if left > 0 {
                eprintln!(
                    "{left} record(s) the transform failed on stay: `xf spool replay --transform PIPELINE` runs them through the current transforms"
                );
            }
        }
        SpoolCommand::Purge {
            place,
            queued,
            destination,
        } => {
            let connection = open(&place)?;
            let table = if queued { "queue" } else { "dead" };
            let deleted = connection
                .execute(
                    &format!("DELETE FROM {table} WHERE ?1 IS NULL OR destination = ?1"),
                    params![destination],
                )
                .map_err(sql)?;
            eprintln!("{deleted} record(s) deleted");
        }
        SpoolCommand::Enable { place, destination } => {
            let connection = open(&place)?;
            let changed = connection
                .execute(
                    "DELETE FROM disabled WHERE destination = ?1",
                    params![destination],
                )
                .map_err(sql)?;
            if changed == 0 {
                eprintln!("{destination} was not disabled");
            } else {
                eprintln!("{destination} is enabled: a running server takes it up again within a few seconds");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn options(flags: &[&str], file: ServerSettings) -> ServeOptions {
        let args = Serve::parse_from(["xf"].iter().chain(flags)).args;
        serve_options(&args, file).unwrap()
    }

    /// What `--help` says a flag's default is, after "or ".
    fn stated_default(help: &str, flag: &str) -> String {
        // A flag's entry is its line and the lines of its text, however clap
        // wraps them, up to the next flag.
        let lines: Vec<&str> = help.lines().map(str::trim).collect();
        let start = lines
            .iter()
            .position(|line| line.starts_with(&format!("{flag} ")))
            .unwrap_or_else(|| panic!("no {flag} in {help}"));
        let end = lines[start + 1..]
            .iter()
            .position(|line| line.starts_with('-'))
            .map_or(lines.len(), |at| start + 1 + at);
        let entry = lines[start..end].join(" ");
        let default = entry.rsplit_once("or ").map(|(_, d)| d).unwrap_or("");
        default.split(']').next().unwrap_or("").to_string()
    }

    #[test]
    fn the_help_states_the_defaults_a_server_takes() {
        let help = Serve::command().render_help().to_string();
        let o = options(&["--spool", "s"], ServerSettings::default());
        for (flag, taken) in [
            ("--max-body", o.body_limits.max_body.to_string()),
            ("--max-body-records", o.body_limits.max_records.to_string()),
            ("--spool-max-bytes", o.spool_limits.max_bytes.to_string()),
            (
                "--spool-max-records",
                o.spool_limits.max_records.to_string(),
            ),
            (
                "--max-connections",
                o.connections.max_connections.to_string(),
            ),
            ("--mail-from", o.notices.from.clone()),
            (
                "--notice-interval",
                o.notices.interval.as_secs().to_string(),
            ),
            (
                "--reload-poll",
                o.reload_poll.unwrap().as_secs().to_string(),
            ),
        ] {
            assert_eq!(stated_default(&help, flag), taken, "{flag}");
        }
    }

    #[test]
    fn a_flag_given_wins_over_the_pipeline_and_the_pipeline_over_the_default() {
        let file = ServerSettings {
            spool: Some(PathBuf::from("from-file")),
            max_body: Some(1000),
            max_connections: Some(7),
            mail_from: Some("file@example.com".to_string()),
            reload_poll: Some(0),
            ..ServerSettings::default()
        };
        let o = options(
            &["--max-body", "2000", "--spool", "from-flag"],
            file.clone(),
        );
        assert!(
            matches!(&o.queue, QueueChoice::Embedded(dir) if dir.as_path() == Path::new("from-flag"))
        );
        assert_eq!(
            (o.body_limits.max_body, o.body_limits.max_decoded),
            (2000, 2000)
        );
        assert_eq!(o.connections.max_connections, 7);
        assert_eq!(o.notices.from, "file@example.com");
        assert_eq!(o.reload_poll, None, "0: no polls");
        let o = options(&["--reload-poll", "5"], file);
        assert!(
            matches!(&o.queue, QueueChoice::Embedded(dir) if dir.as_path() == Path::new("from-file"))
        );
        assert_eq!(o.body_limits.max_body, 1000);
        assert_eq!(o.reload_poll, Some(Duration::from_secs(5)));
        assert_eq!(
            o.spool_limits.max_records,
            SpoolLimits::default().max_records
        );
    }

    #[test]
    fn the_queue_is_jetstream_when_a_nats_url_is_given_by_flag_or_file() {
        let file = ServerSettings {
            queue_nats: Some("nats://file:4222".to_string()),
            queue_prefix: Some("team-a".to_string()),
            queue_ack_wait: Some(10),
            spool_max_records: Some(50),
            ..ServerSettings::default()
        };
        let o = options(&["--queue-ack-wait", "4"], file.clone());
        let QueueChoice::Nats(nats) = &o.queue else {
            panic!("the file's queue is JetStream");
        };
        assert_eq!(nats.url, "nats://file:4222");
        assert_eq!(nats.prefix, "team-a");
        assert_eq!(nats.ack_wait, Duration::from_secs(4), "the flag wins");
        assert_eq!(
            nats.limits.max_records, 50,
            "the stream's limits are the spool's"
        );
        let o = options(&["--queue", "tls://flag:4222"], file.clone());
        assert!(matches!(&o.queue, QueueChoice::Nats(n) if n.url == "tls://flag:4222" && n.tls));
        // `--queue embedded` over a file's JetStream needs a spool folder.
        let o = options(&["--queue", "embedded", "--spool", "here"], file);
        assert!(
            matches!(&o.queue, QueueChoice::Embedded(dir) if dir.as_path() == Path::new("here"))
        );
    }

    #[test]
    fn a_password_in_a_nats_url_is_not_shown() {
        let nats = NatsOptions::new("nats://me:secret@a:4222, nats://b:4222");
        assert_eq!(nats.shown_url(), "nats://…@a:4222,nats://b:4222");
    }
}
