//! A reader that a stop request wakes: `xf run` reads its inputs through it,
//! so that SIGINT or SIGTERM ends the stream while it waits for input (with
//! a record cut short by the signal dead-lettered, not lost), instead of
//! leaving it blocked in `read` until more input comes. It also tells whether
//! a read would wait ([`Interruptible::ready`]), so that the stream writes
//! out what it has only then.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Bytes read at a time by the thread behind the reader.
const PIECE: usize = 64 * 1024;

/// Pieces read ahead: the thread behind waits when this many are unread.
const AHEAD: usize = 4;

/// How often a waiting read looks at the stop flag.
const POLL: Duration = Duration::from_millis(20);

/// Reads `source` on a thread of its own; a read fails (not
/// [`io::ErrorKind::Interrupted`], which readers retry) once `stop` is set.
pub struct Interruptible {
    pieces: Receiver<io::Result<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    piece: Vec<u8>,
    at: usize,
    ended: bool,
    ahead: Arc<Ahead>,
}

/// What the thread behind has read that the reader has not handed out yet.
#[derive(Default)]
struct Ahead {
    bytes: AtomicUsize,
    /// The input's end or error is read: a read no longer waits.
    ended: AtomicBool,
}

impl Interruptible {
    pub fn new(mut source: impl Read + Send + 'static, stop: Arc<AtomicBool>) -> Self {
        let (tx, rx) = mpsc::sync_channel(AHEAD);
        let ahead = Arc::new(Ahead::default());
        let behind = Arc::clone(&ahead);
        // The thread ends at the input's end or error, or when the reader is
        // dropped; one blocked in `read` forever ends with the process.
        let spawned = thread::Builder::new()
            .name("xf-input".into())
            .spawn(move || loop {
                let mut piece = vec![0; PIECE];
                let result = loop {
                    match source.read(&mut piece) {
                        Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                        other => break other,
                    }
                };
                let last = !matches!(result, Ok(n) if n > 0);
                // Counted before it is sent: a read that [`Interruptible::ready`]
                // let through then waits at most for this send, never for input.
                match &result {
                    Ok(n) if *n > 0 => {
                        behind.bytes.fetch_add(*n, Ordering::SeqCst);
                    }
                    _ => behind.ended.store(true, Ordering::SeqCst),
                }
                let sent = tx.send(result.map(|n| {
                    piece.truncate(n);
                    piece
                }));
                if last || sent.is_err() {
                    return;
                }
            });
        if let Err(error) = spawned {
            // Without the thread behind, the first read fails.
            let (tx, failed) = mpsc::sync_channel(1);
            let _ = tx.send(Err(error));
            ahead.ended.store(true, Ordering::SeqCst);
            return Interruptible::from_pieces(failed, stop, ahead);
        }
        Interruptible::from_pieces(rx, stop, ahead)
    }

    fn from_pieces(
        pieces: Receiver<io::Result<Vec<u8>>>,
        stop: Arc<AtomicBool>,
        ahead: Arc<Ahead>,
    ) -> Self {
        Interruptible {
            pieces,
            stop,
            piece: Vec::new(),
            at: 0,
            ended: false,
            ahead,
        }
    }

    /// Whether a read would return without waiting for the source: what
    /// the thread behind has read is not all handed out, or the input's end
    /// (or error) is there. For [`super::Stream::run_ready`], from any thread.
    pub fn ready(&self) -> impl Fn() -> bool + Send + 'static {
        let ahead = Arc::clone(&self.ahead);
        move || ahead.bytes.load(Ordering::SeqCst) > 0 || ahead.ended.load(Ordering::SeqCst)
    }
}

impl Read for Interruptible {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.piece.len() {
            if self.ended {
                return Ok(0);
            }
            if self.stop.load(Ordering::SeqCst) {
                return Err(io::Error::other("stop requested"));
            }
            match self.pieces.recv_timeout(POLL) {
                Ok(Ok(piece)) => {
                    self.ended = piece.is_empty();
                    self.piece = piece;
                    self.at = 0;
                }
                Ok(Err(error)) => {
                    self.ended = true;
                    return Err(error);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.ended = true;
                }
            }
        }
        let n = buf.len().min(self.piece.len() - self.at);
        buf[..n].copy_from_slice(&self.piece[self.at..self.at + n]);
        self.at += n;
        self.ahead.bytes.fetch_sub(n, Ordering::SeqCst);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that never has anything to read: a pipe whose writer sleeps.
    struct Silent;

    impl Read for Silent {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            thread::sleep(Duration::from_secs(3600));
            Ok(0)
        }
    }

    #[test]
    fn passes_input_through_and_ends_with_it() {
        let input: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut reader = Interruptible::new(io::Cursor::new(input.clone()), Arc::default());
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, input);
    }

    /// A pipe: each read waits for what the test writes next.
    struct Fed(mpsc::Receiver<Vec<u8>>);

    impl Read for Fed {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let bytes = self.0.recv().unwrap_or_default();
            buf[..bytes.len()].copy_from_slice(&bytes);
            Ok(bytes.len())
        }
    }

    fn becomes_true(ready: &impl Fn() -> bool) -> bool {
        (0..1000).any(|_| {
            thread::sleep(Duration::from_millis(10));
            ready()
        })
    }

    #[test]
    fn tells_whether_a_read_would_wait() {
        let (feed, fed) = mpsc::channel();
        let mut reader = Interruptible::new(Fed(fed), Arc::default());
        let ready = reader.ready();
        thread::sleep(Duration::from_millis(50));
        assert!(!ready(), "nothing was written");
        feed.send(b"{}\n{}\n".to_vec()).unwrap();
        assert!(becomes_true(&ready), "a piece was read ahead");
        let mut buf = [0; 4];
        assert_eq!(reader.read(&mut buf).unwrap(), 4);
        assert!(ready(), "two bytes are left");
        assert_eq!(reader.read(&mut buf).unwrap(), 2);
        assert!(!ready(), "all was handed out");
        drop(feed);
        assert!(becomes_true(&ready), "the end is there");
        assert_eq!(reader.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn a_stop_wakes_a_read_that_waits() {
        let stop = Arc::new(AtomicBool::new(false));
        let mut reader = Interruptible::new(Silent, Arc::clone(&stop));
        let setter = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(100));
                stop.store(true, Ordering::SeqCst);
            })
        };
        let error = reader.read(&mut [0; 16]).unwrap_err();
        assert_ne!(error.kind(), io::ErrorKind::Interrupted);
        setter.join().unwrap();
    }
}
