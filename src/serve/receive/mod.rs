//! Receiving: connections accepted (TLS too), their requests' heads and
//! bodies read within limits, senders authenticated and rate-limited.
//!
//! - [`body`] turns a request body into records, or a refusal;
//! - [`auth`] checks who sent a request ([`digest`], [`oauth`] for the schemes' secrets and tokens,
//!   [`jwks`] for an issuer's key set fetched from its URL);
//! - [`rate`] limits requests per source and per client address;
//! - [`tls`] terminates TLS;
//! - [`source`] is what a pipeline's `source` section comes to.

pub mod auth;
pub mod body;
pub mod digest;
pub mod jwks;
pub mod oauth;
pub mod rate;
pub mod source;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap};
use axum::Router;
use tokio::sync::{watch, Semaphore};

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

/// The most bytes of a request's URI and headers together: 64 KiB (431 above).
pub const MAX_HEAD_BYTES: usize = 64 << 10;

/// The address a request came from (its connection's peer).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub std::net::IpAddr);

/// A listening socket with a deep accept queue (the kernel caps it at
/// `net.core.somaxconn`): a burst of connections waits there rather than in
/// SYN retries of a second and more.
pub(crate) fn listen(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(4096)
}

/// Accepts connections until told to stop, then lets the open ones finish.
pub(crate) async fn accept_loop(
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

pub(crate) fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The sender's own id of a delivery, the same in its retries: Standard
/// Webhooks' `webhook-id`, GitHub's `X-GitHub-Delivery`, or `Idempotency-Key`.
pub(crate) fn delivery_id(headers: &HeaderMap) -> Option<String> {
    ["webhook-id", "x-github-delivery", "idempotency-key"]
        .iter()
        .find_map(|name| headers.get(*name)?.to_str().ok())
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.len() <= 256)
        .map(str::to_string)
}
