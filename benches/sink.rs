//! The benchmark's destination (benches/serve.py): answers every POST 200 at
//! once and counts what it got; `GET /count` says how many records so far.
//! `cargo build --release --example sink`, then `sink PORT`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;

async fn answer(
    records: Arc<AtomicU64>,
    request: Request<Incoming>,
) -> Result<Response<String>, std::io::Error> {
    use http_body_util::BodyExt;
    if request.method() == Method::GET {
        let count = records.load(Ordering::SeqCst);
        return Ok(Response::new(format!("{{\"records\":{count}}}\n")));
    }
    // A batch carries its records' ids, comma-separated.
    let ids = request
        .headers()
        .get("xf-record-id")
        .map(|v| v.as_bytes().iter().filter(|b| **b == b',').count() as u64 + 1)
        .unwrap_or(1);
    let _ = request.into_body().collect().await;
    records.fetch_add(ids, Ordering::SeqCst);
    Ok(Response::new("{}".to_string()))
}

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("usage: sink PORT");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let records = Arc::new(AtomicU64::new(0));
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let records = Arc::clone(&records);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    answer(Arc::clone(&records), request)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
