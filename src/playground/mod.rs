//! `xf playground`: a local page to write a transform against a payload.
//!
//! One page (its HTML, CSS, scripts and the TextMate grammar of
//! `editors/xf.tmLanguage.json` built into the binary), `POST /api/run`
//! ([`run`]) and `GET /api/examples` (the shipped fixtures and transforms,
//! built in too). It listens on loopback unless told otherwise, answers
//! only requests addressed to the host it listens as (no DNS rebinding), and
//! the page requests nothing from anywhere else: every answer carries a
//! `Content-Security-Policy` of `default-src 'self'`.

mod examples;
pub mod run;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use run::{Bounds, Files, Refusal};

/// Edit a transform against a payload in the browser, with the engine of `xf run`
#[derive(clap::Args)]
pub struct PlaygroundArgs {
    /// The address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// Listen on an address other than loopback (anyone who reaches it can run transforms here)
    #[arg(long)]
    allow_remote: bool,
    /// Read the transform's files (lookups, includes, templates, schemas) from DIR and below;
    /// by default they come only from the shipped transforms, built into xf
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// The policy every answer carries: nothing but this server, no inline script.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

struct App {
    files: Files,
    bounds: Bounds,
    /// The `Host` values requests may carry: the address as listened on,
    /// and `localhost:PORT` for a loopback one (without `:80` on port 80);
    /// `None` with `--allow-remote`, whose clients name it as they reach it.
    hosts: Option<Vec<String>>,
    /// Runs at a time: each takes a blocking thread for up to its time limit.
    runs: tokio::sync::Semaphore,
    /// Requests past the bodies read: at work or waiting for a run (more are
    /// answered 503 rather than held in memory).
    admitted: tokio::sync::Semaphore,
}

/// Runs at a time, and requests admitted at once (at work or waiting).
const RUNS: usize = 2;
const ADMITTED: usize = 8;

pub fn playground(args: PlaygroundArgs) -> ExitCode {
    if !args.listen.ip().is_loopback() && !args.allow_remote {
        eprintln!(
            "error: {} is not a loopback address: the playground runs any transform it is sent; \
             give --allow-remote to listen there anyway",
            args.listen
        );
        return ExitCode::from(2);
    }
    let files = match &args.dir {
        Some(dir) => match std::fs::canonicalize(dir) {
            Ok(dir) if dir.is_dir() => Files::Dir(dir),
            Ok(_) => {
                eprintln!("error: --dir {}: not a folder", dir.display());
                return ExitCode::from(2);
            }
            Err(error) => {
                eprintln!("error: --dir {}: {error}", dir.display());
                return ExitCode::from(2);
            }
        },
        None => Files::Shipped(Arc::new(examples::shipped_files())),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(serve(args.listen, files, args.allow_remote)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("error: {problem}");
            ExitCode::from(2)
        }
    }
}

async fn serve(listen: SocketAddr, files: Files, allow_remote: bool) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| format!("cannot listen on {listen}: {error}"))?;
    let local = listener
        .local_addr()
        .map_err(|error| format!("cannot listen on {listen}: {error}"))?;
    let mut hosts = vec![local.to_string()];
    if local.ip().is_loopback() {
        hosts.push(format!("localhost:{}", local.port()));
    }
    if local.port() == 80 {
        // Browsers leave the default port out of `Host`.
        let without: Vec<String> = hosts
            .iter()
            .filter_map(|host| host.strip_suffix(":80").map(str::to_string))
            .collect();
        hosts.extend(without);
    }
    let bounds = Bounds::DEFAULT;
    let app = Arc::new(App {
        files,
        bounds,
        hosts: (!allow_remote).then_some(hosts),
        runs: tokio::sync::Semaphore::new(RUNS),
        admitted: tokio::sync::Semaphore::new(ADMITTED),
    });
    let router = Router::new()
        .route("/", get(|| async { asset("index.html") }))
        .route("/assets/{name}", get(asset_named))
        .route("/api/examples", get(examples_list))
        .route("/api/run", post(run_request))
        .fallback(|| async { plain(StatusCode::NOT_FOUND, "not found\n") })
        .layer(DefaultBodyLimit::max(bounds.body))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            same_host,
        ))
        .with_state(app);
    // The address on standard output (for a script to read), or, when
    // nothing reads that any more, where the person at the terminal sees it.
    let address = format!("xf playground: http://{local}/\n");
    // Written, not `eprint!`: a closed stderr (its reader gone) must not stop the server.
    let mut stderr = std::io::stderr();
    if !matches!(crate::shared_cli::print_stdout(&address), Ok(true)) {
        let _ = std::io::Write::write_all(&mut stderr, address.as_bytes());
    }
    let _ = std::io::Write::write_all(&mut stderr, b"(Ctrl-C stops it)\n");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|error| format!("the server stopped: {error}"))
}

/// Refuses a request whose `Host` is not this server's: a page elsewhere
/// that rebinds its name to 127.0.0.1 gets nothing from here.
async fn same_host(
    State(app): State<Arc<App>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|host| host.to_str().ok());
    let known = |host: &str| {
        app.hosts
            .as_ref()
            .is_none_or(|hosts| hosts.iter().any(|known| known.eq_ignore_ascii_case(host)))
    };
    if !host.is_some_and(known) {
        return plain(
            StatusCode::MISDIRECTED_REQUEST,
            "this playground answers requests for its own address only\n",
        );
    }
    let mut response = next.run(request).await;
    secure(response.headers_mut());
    response
}

fn secure(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut response = (status, text).into_response();
    secure(response.headers_mut());
    response
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

async fn asset_named(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    asset(&name)
}

/// The page's files, built in.
fn asset(name: &str) -> Response {
    let (kind, text) = match name {
        "index.html" => (
            "text/html; charset=utf-8",
            include_str!("assets/index.html"),
        ),
        "style.css" => ("text/css; charset=utf-8", include_str!("assets/style.css")),
        "app.js" => (
            "text/javascript; charset=utf-8",
            include_str!("assets/app.js"),
        ),
        "textmate.js" => (
            "text/javascript; charset=utf-8",
            include_str!("assets/textmate.js"),
        ),
        "xf.tmLanguage.json" => (
            "application/json",
            include_str!("../../editors/xf.tmLanguage.json"),
        ),
        _ => return plain(StatusCode::NOT_FOUND, "not found\n"),
    };
    ([(header::CONTENT_TYPE, kind)], text).into_response()
}

async fn examples_list() -> Response {
    json(StatusCode::OK, &examples::list())
}

/// `POST /api/run`: JSON in (`{"transform", "input", "now"?, "headers"?,
/// "source"?}`, [`run::parse_request`]), JSON out; 400 for a body that is not
/// such an object (or a header line that is not `Name: value`), 413 past a limit.
async fn run_request(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejected) if rejected.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refusal(Refusal::TooLarge(format!(
                "the body is over the playground's limit of {} bytes",
                app.bounds.body
            )))
        }
        Err(rejected) => return refusal(Refusal::BadRequest(rejected.body_text())),
    };
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|kind| kind.to_str().ok())
        .is_some_and(|kind| kind.starts_with("application/json"));
    if !is_json {
        return refusal(Refusal::BadRequest(
            "the body must be sent as Content-Type: application/json".into(),
        ));
    }
    let Ok(_admitted) = app.admitted.try_acquire() else {
        return json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"error": format!(
                "{ADMITTED} runs are already at work or waiting; try again"
            )}),
        );
    };
    let request = match run::parse_request(&body, &app.bounds) {
        Ok(request) => request,
        Err(refused) => return refusal(refused),
    };
    let Ok(_permit) = app.runs.acquire().await else {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    };
    let work = Arc::clone(&app);
    let answer =
        tokio::task::spawn_blocking(move || run::run(&request, &work.files, &work.bounds)).await;
    match answer {
        Ok(Ok(answer)) => json(StatusCode::OK, &answer),
        Ok(Err(refused)) => refusal(refused),
        Err(_) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({"error": "internal error: the run did not finish"}),
        ),
    }
}

fn refusal(refused: Refusal) -> Response {
    let (status, why) = match refused {
        Refusal::BadRequest(why) => (StatusCode::BAD_REQUEST, why),
        Refusal::TooLarge(why) => (StatusCode::PAYLOAD_TOO_LARGE, why),
    };
    json(status, &serde_json::json!({ "error": why }))
}
