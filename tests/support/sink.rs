//! The server tests' stand-in destination: a real HTTP server (hyper on
//! loopback) whose answers a test scripts, and which keeps every request it
//! gets. Its own module so that `tests/support/destination.rs` runs it as a
//! program too.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;

/// How the destination answers one request.
#[derive(Debug, Clone)]
pub enum Answer {
    Ok,
    Status(u16),
    /// A status with `Retry-After: SECS`.
    RetryAfter(u16, u64),
    /// Waits, then 200.
    Slow(Duration),
    /// Closes the connection without an answer.
    Reset,
    /// A body and a status (Splunk HEC's replies).
    Body(u16, &'static str),
    /// 302 to this location.
    Redirect(String),
}

/// One request the destination received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The URL's path it was sent to.
    pub path: String,
    pub ids: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
    pub answered: u16,
    pub at: Instant,
}

#[derive(Default)]
struct Script {
    next: VecDeque<Answer>,
    otherwise: Option<Answer>,
    /// Bodies holding the text get the answer, whatever the script says.
    containing: Vec<(String, Answer)>,
    received: Vec<Received>,
}

impl Received {
    /// The records of its body (one, an array's items, or NDJSON and
    /// stacked HEC lines), each with its id from `xf-record-id`.
    pub fn records(&self) -> Vec<(String, Value)> {
        let ids: Vec<&str> = self.ids.split(',').collect();
        let text = String::from_utf8_lossy(&self.body).into_owned();
        let values: Vec<Value> = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(items)) => items,
            Ok(value) => vec![value],
            Err(_) => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
        };
        assert_eq!(ids.len(), values.len(), "one id per record: {}", self.ids);
        ids.into_iter().map(str::to_string).zip(values).collect()
    }
}

/// A destination on a loopback port.
#[derive(Clone)]
pub struct Sink {
    pub address: SocketAddr,
    script: Arc<Mutex<Script>>,
}

impl Sink {
    /// Starts a destination (on its own thread and runtime) that answers 200.
    pub fn start() -> Sink {
        Sink::start_on("127.0.0.1:0")
    }

    /// [`Sink::start`] on `address` (`127.0.0.1:9000`; port 0 for a free one).
    pub fn start_on(address: &str) -> Sink {
        let script = Arc::new(Mutex::new(Script::default()));
        let shared = Arc::clone(&script);
        let address = serve_http_on(address, move |request| answer(Arc::clone(&shared), request));
        Sink { address, script }
    }

    pub fn url(&self) -> String {
        format!("http://{}/in", self.address)
    }

    /// The next answers, in order; then `otherwise` (or 200).
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.script.lock().unwrap().next.extend(answers);
    }

    /// How it answers any body that holds `text`, before the script.
    pub fn answer_containing(&self, text: &str, answer: Answer) {
        self.script
            .lock()
            .unwrap()
            .containing
            .push((text.to_string(), answer));
    }

    /// How it answers once the script is done.
    pub fn otherwise(&self, answer: Answer) {
        self.script.lock().unwrap().otherwise = Some(answer);
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }

    /// Records delivered (answered 2xx), with their id.
    pub fn delivered(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for request in self.received() {
            if (200..300).contains(&request.answered) {
                out.extend(request.records());
            }
        }
        out
    }

    /// Waits until `done` holds for what was received, or panics after `limit`.
    pub fn wait_for(&self, limit: Duration, what: &str, done: impl Fn(&[Received]) -> bool) {
        let start = Instant::now();
        loop {
            if done(&self.received()) {
                return;
            }
            if start.elapsed() > limit {
                panic!(
                    "waited {limit:?} for {what}; received {} requests",
                    self.received().len()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// An HTTP/1 server on a free loopback port, on its own thread and runtime,
/// answering every request with `handler`; its address. (The destinations
/// and the stand-in identity providers of the server tests.)
pub fn serve_http<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Response<String>, std::io::Error>> + Send + 'static,
{
    serve_http_on("127.0.0.1:0", handler)
}

/// [`serve_http`] on `address`.
pub fn serve_http_on<F, Fut>(address: &str, handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Response<String>, std::io::Error>> + Send + 'static,
{
    let listener = std::net::TcpListener::bind(address)
        .unwrap_or_else(|error| panic!("cannot listen on {address}: {error}"));
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(handler);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    address
}

async fn answer(
    script: Arc<Mutex<Script>>,
    request: Request<Incoming>,
) -> Result<Response<String>, std::io::Error> {
    let path = request.uri().path().to_string();
    let ids = request
        .headers()
        .get("xf-record-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let headers = request
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let answer = {
        let mut script = script.lock().unwrap();
        let text = String::from_utf8_lossy(&body);
        let by_content = script
            .containing
            .iter()
            .find(|(needle, _)| text.contains(needle.as_str()))
            .map(|(_, answer)| answer.clone());
        match by_content {
            Some(answer) => answer,
            None => script
                .next
                .pop_front()
                .or_else(|| script.otherwise.clone())
                .unwrap_or(Answer::Ok),
        }
    };
    if let Answer::Slow(wait) = &answer {
        tokio::time::sleep(*wait).await;
    }
    let location = match &answer {
        Answer::Redirect(location) => Some(location.clone()),
        _ => None,
    };
    let (status, retry_after, text) = match answer {
        Answer::Redirect(_) => (302, None, ""),
        Answer::Ok | Answer::Slow(_) => (200, None, "{}"),
        Answer::Status(status) => (status, None, "{\"error\":\"scripted\"}"),
        Answer::RetryAfter(status, secs) => (status, Some(secs), ""),
        Answer::Body(status, text) => (status, None, text),
        Answer::Reset => {
            script.lock().unwrap().received.push(Received {
                path,
                ids,
                body,
                headers,
                answered: 0,
                at: Instant::now(),
            });
            return Err(std::io::Error::other("reset"));
        }
    };
    script.lock().unwrap().received.push(Received {
        path,
        ids,
        body,
        headers,
        answered: status,
        at: Instant::now(),
    });
    let mut response = Response::builder().status(StatusCode::from_u16(status).unwrap());
    if let Some(secs) = retry_after {
        response = response.header("retry-after", secs.to_string());
    }
    if let Some(location) = location {
        response = response.header("location", location);
    }
    Ok(response.body(text.to_string()).unwrap())
}
