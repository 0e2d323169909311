//! What the server tests share: a real HTTP destination (hyper on loopback)
//! whose answers a test scripts, and the real `xf serve` binary, started on a
//! free loopback port with a temporary spool.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod sink;
pub use sink::*;

/// A running `xf serve`.
pub struct Server {
    pub child: Child,
    pub address: SocketAddr,
    pub spool: PathBuf,
    pub log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `xf serve --listen 127.0.0.1:0 --spool SPOOL ARGS…` and waits until it listens.
    pub fn start(spool: &Path, args: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xf"));
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--spool"])
            .arg(spool)
            .args(args);
        Server::start_command(command, spool)
    }

    /// Starts a command that runs `xf serve` (listening on port 0) and waits until it listens.
    /// The test destinations are on loopback, which the request forgery guard
    /// refuses unless allowed: allowed here, as a pipeline would.
    pub fn start_command(mut command: Command, spool: &Path) -> Server {
        command.args(["--private-destination", "127.0.0.0/8"]);
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (found, address) = std::sync::mpsc::channel();
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut found = Some(found);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(at) = line.find("address=") {
                        if let Some(found) = found.take() {
                            let rest = &line[at + "address=".len()..];
                            let text = rest.split_whitespace().next().unwrap_or("");
                            let _ = found.send(text.parse::<SocketAddr>().ok());
                        }
                    }
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let address = match address.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(address)) => address,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("xf serve did not start: {}", log.lock().unwrap());
            }
        };
        Server {
            child,
            address,
            spool: spool.to_path_buf(),
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }

    /// `kill -9`.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::forget(self);
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `xf spool ARGS… --spool DIR`: its stdout, stderr and status.
pub fn spool(dir: &Path, args: &[&str]) -> (String, String, bool) {
    let output = Command::new(env!("CARGO_BIN_EXE_xf"))
        .arg("spool")
        .args(args)
        .arg("--spool")
        .arg(dir)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        output.status.success(),
    )
}

/// The write end of a pipe whose reader is already gone, as a child's
/// stdout: `xf … | head -0` without the race of who goes first.
pub fn closed_pipe() -> Stdio {
    let mut reader = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
    let writer = reader.stdin.take().unwrap();
    reader.wait().unwrap();
    Stdio::from(writer)
}

/// A blocking HTTP/1.1 POST on a fresh connection: status and body. Written
/// on std's TcpStream so that a test can also send what no client library
/// would (a wrong length, a half body).
pub fn post(
    address: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    try_post(address, path, headers, body).unwrap_or_else(|error| panic!("POST {path}: {error}"))
}

/// [`post`], for a server that may be gone: status 0 when there was no answer.
pub fn try_post(
    address: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let (status, text) = try_post_raw(address, path, headers, body)?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    Ok((status, body.unwrap_or_default()))
}

/// [`post`], with the answer's head (status line and headers) as well.
pub fn post_with_head(
    address: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let (status, text) = try_post_raw(address, path, headers, body)
        .unwrap_or_else(|error| panic!("POST {path}: {error}"));
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_string(), body.to_string())
}

/// Sends raw bytes (a whole request, as written) on a fresh connection: the
/// answer's status and its whole text, head and body.
pub fn send_raw(address: SocketAddr, request: &[u8]) -> (u16, String) {
    try_send_raw(address, request).unwrap_or_else(|error| panic!("cannot connect: {error}"))
}

/// [`send_raw`], for a server that may be gone: an error when it cannot be reached.
fn try_send_raw(address: SocketAddr, request: &[u8]) -> std::io::Result<(u16, String)> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let _ = stream.write_all(request);
    Ok(read_all(&mut stream))
}

/// Everything the server sends until it closes: the status (0 for none) and the text.
fn read_all(stream: &mut std::net::TcpStream) -> (u16, String) {
    use std::io::Read;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn try_post_raw(
    address: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    try_send_raw(address, &request)
}

/// The whole answer on a connection the server closes: its status (0 for
/// none) and its body.
fn read_answer(stream: &mut std::net::TcpStream) -> (u16, String) {
    let (status, text) = read_all(stream);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A GET: status and body.
pub fn get(address: SocketAddr, path: &str) -> (u16, String) {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    read_answer(&mut stream)
}

/// A metric's value from `/metrics` text (the sum over its label sets that contain `labels`).
pub fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The mail one SMTP relay received: recipients and message text, per mail.
pub type Mails = Arc<Mutex<Vec<(Vec<String>, Vec<u8>)>>>;

#[derive(Clone, Default)]
struct Mailbox {
    mails: Mails,
    to: Vec<String>,
    data: Vec<u8>,
}

impl mailin::Handler for Mailbox {
    fn rcpt(&mut self, to: &str) -> mailin::Response {
        self.to.push(to.to_string());
        mailin::response::OK
    }
    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }
    fn data_end(&mut self) -> mailin::Response {
        let mail = (std::mem::take(&mut self.to), std::mem::take(&mut self.data));
        self.mails.lock().unwrap().push(mail);
        mailin::response::OK
    }
}

/// An SMTP relay on a loopback port: the `mailin` library speaks SMTP, this
/// only carries its lines over TCP.
pub fn smtp_relay() -> (SocketAddr, Mails) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let mails = Mails::default();
    let shared = Arc::clone(&mails);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mails = Arc::clone(&shared);
            std::thread::spawn(move || {
                let peer = stream.peer_addr().unwrap().ip();
                let mut session = mailin::SessionBuilder::new("relay.test").build(
                    peer,
                    Mailbox {
                        mails,
                        ..Mailbox::default()
                    },
                );
                let _ = session.greeting().write_to(&mut stream);
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match reader.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let response = session.process(&line);
                    match response.action {
                        mailin::Action::Reply => {
                            let _ = response.write_to(&mut stream);
                        }
                        mailin::Action::Close => {
                            let _ = response.write_to(&mut stream);
                            break;
                        }
                        _ => {}
                    }
                    let _ = stream.flush();
                }
            });
        }
    });
    (address, mails)
}
