//! The stream driver on several threads, with the same output in the same order.
//!
//! ```text
//!  reader thread ──chunks of frames──▶ N workers ──results──▶ calling thread (writer)
//! ```
//!
//! - The reader frames the input and copies frames into chunks; before it
//!   would wait for input it sends the chunk it has, marked `flush`, so a
//!   record written to a pipe still comes out at once. When the read would
//!   not wait (a regular file's never do; a pipe's input may be read ahead:
//!   [`Reads`]), chunks go out full.
//! - Workers parse, apply and serialize whole chunks ([`super::process`]).
//! - The calling thread writes results strictly in chunk order, reports
//!   failures and flushes at `flush` chunks.
//! - At most `2 × threads + 2` chunks are in flight: the reader takes a permit
//!   for each chunk and the writer gives it back once the chunk is written, so
//!   a slow reader of the output slows xf down instead of growing its memory.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::process::{self, Cut, Failure, Results};
use super::{Flow, Interrupt, Options, Reads, Stats, Stream, StreamError};
use crate::read::{Frame, Framer, DEFAULT_MAX_RECORD};

/// Frames per chunk, and bytes: a chunk is sent when either is reached.
const CHUNK_FRAMES: usize = 256;
const CHUNK_BYTES: usize = 512 * 1024;

/// Frames copied out of the reader's buffer.
#[derive(Default)]
struct Chunk {
    seq: u64,
    data: Vec<u8>,
    frames: Vec<FrameInfo>,
    /// Where the worker writes the chunk's output (empty, with room: see [`Buffers`]).
    out: Vec<u8>,
    /// Write out and flush once this chunk is written: the reader is about to wait.
    flush: bool,
    /// The input failed after this chunk's frames: the stream ends with this error.
    read_error: Option<io::Error>,
    /// It holds a frame over [`LARGE_FRAME`].
    large: bool,
}

struct FrameInfo {
    bytes: Range<usize>,
    line: usize,
    column: usize,
    oversized: Option<u64>,
    unscanned: bool,
    /// A record cut short by a stop request or a read error: reported, not parsed.
    cut: Option<Cut>,
}

/// What a worker made of a chunk.
struct Done {
    seq: u64,
    out: Vec<u8>,
    failures: Vec<Failure>,
    /// Where each frame's results end, so that the writer can stop after any
    /// frame, as `-j1` does (a dead-letter file that fails).
    frames: Vec<FrameEnd>,
    flow: Flow,
    flush: bool,
    read_error: Option<io::Error>,
    /// The chunk's own buffers, to go back to the reader.
    input: (Vec<u8>, Vec<FrameInfo>),
}

/// A chunk's buffers, which go round: the reader fills `data` and `frames`,
/// a worker writes `out`, and the writer hands all of them back with the
/// chunk's permit. Nothing is allocated or freed per chunk then: glibc's
/// `free` of a buffer another thread allocated takes that thread's arena
/// lock, and a chunk's buffers are large enough that freed ones went back
/// to the system, for the next chunk to fault their pages in again.
#[derive(Default)]
struct Buffers {
    data: Vec<u8>,
    frames: Vec<FrameInfo>,
    out: Vec<u8>,
}

impl Buffers {
    /// Emptied for the next chunk; one that a large frame or a large output
    /// grew is let go of, so that memory stays that of ordinary chunks.
    fn emptied(mut self) -> Buffers {
        for buffer in [&mut self.data, &mut self.out] {
            buffer.clear();
            if buffer.capacity() > 2 * CHUNK_BYTES {
                *buffer = Vec::new();
            }
        }
        self.frames.clear();
        self
    }
}

/// Where one frame's results end in a [`Done`], and its counts.
struct FrameEnd {
    out: usize,
    failures: usize,
    stats: Stats,
}

/// What the reader and writer share to tell a signal handler that it may end
/// the process: the reader waits for input and every chunk sent is written.
struct Quiet {
    state: Mutex<QuietState>,
    waiting: Option<Arc<AtomicBool>>,
}

#[derive(Default)]
struct QuietState {
    sent: u64,
    written: u64,
    reader_waiting: bool,
    /// The reader holds the start of a record that has not ended yet.
    partial: bool,
}

impl Quiet {
    /// Whether the reader waits for input and every chunk sent is written.
    fn is_quiet(&self) -> bool {
        let state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.reader_waiting && state.written == state.sent
    }

    /// Whether the reader holds part of a record, which a stop must dead-letter.
    fn holds_partial(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .partial
    }

    fn update(&self, change: impl FnOnce(&mut QuietState)) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut state);
        if let Some(waiting) = &self.waiting {
            waiting.store(
                state.reader_waiting && state.written == state.sent,
                Ordering::SeqCst,
            );
        }
    }
}

/// A worker's stack: the main thread's size, so that what a record may do
/// does not depend on `-j` (every depth is bounded far below it anyway).
const WORKER_STACK: usize = 8 * 1024 * 1024;

pub(super) fn run<W: Write, D: Write>(
    stream: &mut Stream<'_, W, D>,
    input_name: &str,
    input: impl Read + Send + 'static,
    reads: Reads,
) -> Result<Flow, StreamError> {
    let threads = stream.options.threads.max(1);
    let in_flight = 2 * threads + 2;
    let (work_tx, work_rx) = mpsc::sync_channel::<Chunk>(in_flight);
    let (large_tx, large_rx) = mpsc::sync_channel::<Chunk>(in_flight);
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let (permit_tx, permit_rx) = mpsc::sync_channel::<Buffers>(in_flight);
    for _ in 0..in_flight {
        let _ = permit_tx.send(Buffers::default());
    }
    let halt = Arc::new(AtomicBool::new(false));
    let quiet = Arc::new(Quiet {
        state: Mutex::new(QuietState::default()),
        waiting: stream.interrupt.as_ref().map(|i| Arc::clone(&i.waiting)),
    });
    let limit = stream.options.max_record.unwrap_or(DEFAULT_MAX_RECORD);
    let reader = Reader {
        work: Lanes {
            small: work_tx,
            large: large_tx,
        },
        permits: permit_rx,
        halt: Arc::clone(&halt),
        quiet: Arc::clone(&quiet),
        interrupt: stream.interrupt.clone(),
        reads,
        chunk: Chunk::default(),
    };
    // Not scoped: a reader blocked on input that never comes must not keep the
    // stream from ending when the output is closed.
    let reader = thread::Builder::new()
        .name("xf-reader".into())
        .spawn(move || reader.run(Framer::with_limit(input, limit)))
        .map_err(|error| cannot_start("the reader", &error))?;
    let work = Arc::new(Mutex::new(work_rx));
    let large_work = Arc::new(Mutex::new(large_rx));
    let transform = stream.transform;
    let options = stream.options;
    // A copy: the stream itself is lent to the writer meanwhile.
    let fixed = &stream.fixed.clone();
    let result = thread::scope(|scope| {
        // One more worker, for the chunks that hold a large frame (see [`LARGE_FRAME`]).
        for lane in 0..=threads {
            let work = Arc::clone(if lane < threads { &work } else { &large_work });
            let (done, ended) = (done_tx.clone(), Arc::clone(&halt));
            let stop = stream.interrupt.clone();
            // Named, so that a profile or /proc/PID/task tells them apart.
            let name = if lane < threads {
                "xf-worker"
            } else {
                "xf-large"
            };
            let spawned = thread::Builder::new()
                .name(name.into())
                .stack_size(WORKER_STACK)
                .spawn_scoped(scope, move || {
                    worker(transform, &options, &work, &done, &ended, stop, fixed)
                });
            if let Err(error) = spawned {
                halt.store(true, Ordering::SeqCst);
                return Err(cannot_start("a worker", &error));
            }
        }
        drop(done_tx);
        let result = write_in_order(stream, input_name, &done_rx, &permit_tx, &quiet);
        if result.is_err() || matches!(result, Ok(Flow::Stop)) {
            halt.store(true, Ordering::SeqCst);
        }
        // Let the reader go if it waits for a permit.
        drop(permit_tx);
        result
    });
    if !halt.load(Ordering::SeqCst) {
        // The input ended: the reader has finished, or is about to.
        let _ = reader.join();
    }
    result
}

fn cannot_start(what: &str, error: &io::Error) -> StreamError {
    StreamError::Output(io::Error::other(format!(
        "cannot start {what} thread: {error}"
    )))
}

/// The calling thread: writes results in chunk order.
fn write_in_order<W: Write, D: Write>(
    stream: &mut Stream<'_, W, D>,
    input_name: &str,
    done: &Receiver<Done>,
    permits: &SyncSender<Buffers>,
    quiet: &Quiet,
) -> Result<Flow, StreamError> {
    let mut pending = BTreeMap::new();
    let mut next = 0;
    loop {
        match done.recv_timeout(Duration::from_millis(50)) {
            Ok(result) => {
                pending.insert(result.seq, result);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        while let Some(mut result) = pending.remove(&next) {
            next += 1;
            write_chunk(stream, input_name, &mut result)?;
            if result.flush {
                stream.sink.flush().map_err(StreamError::Output)?;
            }
            quiet.update(|state| state.written = next);
            let (data, frames) = result.input;
            let buffers = Buffers {
                data,
                frames,
                out: result.out,
            };
            let _ = permits.try_send(buffers.emptied());
            if let Some(error) = result.read_error {
                stream.sink.flush().map_err(StreamError::Output)?;
                return Err(StreamError::Input {
                    input: input_name.to_string(),
                    error,
                });
            }
            if result.flow == Flow::Stop {
                stream.sink.flush().map_err(StreamError::Output)?;
                return Ok(Flow::Stop);
            }
        }
        // A stop asked for while nothing is in flight and the reader waits for
        // input that may never come (a reader that a stop does not wake, see
        // [`super::Interruptible`]): the stream ends here, unless a record was
        // cut short, which the reader still has to send on.
        if stream.interrupted() && quiet.is_quiet() && !quiet.holds_partial() {
            stream.sink.flush().map_err(StreamError::Output)?;
            return Ok(Flow::Stop);
        }
    }
    stream.sink.flush().map_err(StreamError::Output)?;
    Ok(if stream.interrupted() {
        Flow::Stop
    } else {
        Flow::Continue
    })
}

/// One chunk's results, in the order `-j1` writes and reports them: a
/// frame's failures are reported once the output of the frames up to it is
/// appended, so that a dead-letter file that fails stops the stream after
/// the same record at every `-j`. The output between failures is appended
/// in one piece.
fn write_chunk<W: Write, D: Write>(
    stream: &mut Stream<'_, W, D>,
    input_name: &str,
    done: &mut Done,
) -> Result<(), StreamError> {
    let mut failures = std::mem::take(&mut done.failures).into_iter();
    let (mut out_at, mut failures_at) = (0, 0);
    let mut counts = Stats::default();
    for end in &done.frames {
        counts.add(&end.stats);
        if end.failures > failures_at {
            append(stream, &done.out[out_at..end.out], &mut counts)?;
            stream.report(
                input_name,
                failures.by_ref().take(end.failures - failures_at),
            )?;
            (out_at, failures_at) = (end.out, end.failures);
        }
    }
    append(stream, &done.out[out_at..], &mut counts)?;
    // The counts published (for a progress bar) once a chunk, not once a frame.
    stream.report(input_name, std::iter::empty())
}

/// Appends frames' output, then counts them.
fn append<W: Write, D: Write>(
    stream: &mut Stream<'_, W, D>,
    out: &[u8],
    counts: &mut Stats,
) -> Result<(), StreamError> {
    stream.sink.append(out).map_err(StreamError::Output)?;
    stream.stats.add(&std::mem::take(counts));
    Ok(())
}

fn worker(
    transform: &crate::Transform,
    options: &Options,
    work: &Mutex<Receiver<Chunk>>,
    done: &mpsc::Sender<Done>,
    halt: &AtomicBool,
    stop: Option<Interrupt>,
    fixed: &super::Fixed,
) {
    loop {
        // Poll, so that a halted stream's workers end even if the reader is stuck.
        let received = {
            let work = work.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work.recv_timeout(Duration::from_millis(50))
        };
        let chunk = match received {
            Ok(chunk) => chunk,
            Err(RecvTimeoutError::Timeout) if !halt.load(Ordering::SeqCst) => continue,
            Err(_) => return,
        };
        if done
            .send(process_chunk(
                transform,
                options,
                chunk,
                stop.as_ref(),
                fixed,
            ))
            .is_err()
        {
            return;
        }
    }
}

/// Chunks with a frame above this size go to one worker of their own: a
/// parsed record takes up to about 100 times its size in memory, so two
/// large ones at once would double the worst case, and so would two threads'
/// allocator arenas each keeping the pages of one freed. Below it, a worker
/// holds at most a few MiB.
const LARGE_FRAME: usize = 64 * 1024;

/// Where the reader sends chunks: to any worker, or to the one for large frames.
struct Lanes {
    small: SyncSender<Chunk>,
    large: SyncSender<Chunk>,
}

fn process_chunk(
    transform: &crate::Transform,
    options: &Options,
    chunk: Chunk,
    stop: Option<&Interrupt>,
    fixed: &super::Fixed,
) -> Done {
    let mut out = chunk.out;
    out.reserve(chunk.data.len() + chunk.data.len() / 4);
    let mut failures = Vec::new();
    let mut frames = Vec::with_capacity(chunk.frames.len());
    let mut flow = Flow::Continue;
    for info in &chunk.frames {
        let mut stats = Stats::default();
        let frame = Frame {
            bytes: &chunk.data[info.bytes.clone()],
            line: info.line,
            column: info.column,
            oversized: info.oversized,
            unscanned: info.unscanned,
        };
        let mut results = Results {
            out: &mut out,
            failures: &mut failures,
            stats: &mut stats,
            context: super::record_context(stop, fixed),
            traces: None,
        };
        flow = if let Some(why) = info.cut {
            process::cut(options, &mut results, &frame, why)
        } else {
            process::process(transform, options, &frame, &mut results)
        };
        frames.push(FrameEnd {
            out: out.len(),
            failures: failures.len(),
            stats,
        });
        if flow == Flow::Stop {
            break;
        }
    }
    Done {
        seq: chunk.seq,
        out,
        failures,
        frames,
        flow,
        flush: chunk.flush,
        read_error: chunk.read_error,
        input: (chunk.data, chunk.frames),
    }
}

/// The reader thread's side.
struct Reader {
    work: Lanes,
    /// A permit to send a chunk, with the buffers of the next one.
    permits: Receiver<Buffers>,
    halt: Arc<AtomicBool>,
    quiet: Arc<Quiet>,
    interrupt: Option<Interrupt>,
    reads: Reads,
    chunk: Chunk,
}

impl Reader {
    fn run(mut self, mut framer: Framer<impl Read>) {
        loop {
            if self.halt.load(Ordering::SeqCst) {
                return;
            }
            let next = {
                let (chunk, work, permits, quiet, interrupt, reads) = (
                    &mut self.chunk,
                    &self.work,
                    &self.permits,
                    &self.quiet,
                    &self.interrupt,
                    &self.reads,
                );
                framer.next_frame_telling(&mut |mid_record| {
                    if !reads.may_wait() {
                        // Nothing to wait for: chunks go out full. A stop
                        // request is seen after each frame.
                        return Ok(());
                    }
                    // About to wait for input: send what there is, and say so.
                    chunk.flush = true;
                    send(chunk, work, permits, quiet)?;
                    quiet.update(|state| {
                        state.reader_waiting = true;
                        state.partial = mid_record;
                    });
                    if interrupt.as_ref().is_some_and(Interrupt::stop_requested) {
                        return Err(io::Error::new(io::ErrorKind::Interrupted, "stop requested"));
                    }
                    Ok(())
                })
            };
            self.quiet.update(|state| state.reader_waiting = false);
            match next {
                Ok(Some(frame)) => {
                    add(&mut self.chunk, &frame, None);
                    let full = self.chunk.frames.len() >= CHUNK_FRAMES
                        || self.chunk.data.len() >= CHUNK_BYTES;
                    if full
                        && send(&mut self.chunk, &self.work, &self.permits, &self.quiet).is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(_) if self.stopping() => return self.drain(&mut framer, Cut::Signal, None),
                // The writer ends the stream with the error, after what was read whole.
                Err(error) => return self.drain(&mut framer, Cut::ReadError, Some(error)),
            }
            if self.stopping() {
                return self.drain(&mut framer, Cut::Signal, None);
            }
        }
        self.chunk.flush = true;
        let _ = send(&mut self.chunk, &self.work, &self.permits, &self.quiet);
    }

    fn stopping(&self) -> bool {
        self.interrupt
            .as_ref()
            .is_some_and(Interrupt::stop_requested)
    }

    /// After a stop request or a read error: what was read is sent on,
    /// nothing more is read.
    fn drain(mut self, framer: &mut Framer<impl Read>, why: Cut, error: Option<io::Error>) {
        while let Some(frame) = framer.next_buffered_frame() {
            add(&mut self.chunk, &frame, None);
        }
        if let Some(frame) = framer.unfinished() {
            add(&mut self.chunk, &frame, Some(why));
        }
        self.chunk.flush = true;
        self.chunk.read_error = error;
        self.quiet.update(|state| state.partial = false);
        let _ = send(&mut self.chunk, &self.work, &self.permits, &self.quiet);
    }
}

fn add(chunk: &mut Chunk, frame: &Frame<'_>, cut: Option<Cut>) {
    chunk.large |= frame.bytes.len() > LARGE_FRAME;
    let start = chunk.data.len();
    chunk.data.extend_from_slice(frame.bytes);
    chunk.frames.push(FrameInfo {
        bytes: start..chunk.data.len(),
        line: frame.line,
        column: frame.column,
        oversized: frame.oversized,
        unscanned: frame.unscanned,
        cut,
    });
}

/// Sends the chunk (if it holds anything, or must flush) and starts a new one.
fn send(
    chunk: &mut Chunk,
    work: &Lanes,
    permits: &Receiver<Buffers>,
    quiet: &Quiet,
) -> io::Result<()> {
    if chunk.frames.is_empty() && !chunk.flush {
        return Ok(());
    }
    let closed = || io::Error::new(io::ErrorKind::BrokenPipe, "the stream has ended");
    let buffers = permits.recv().map_err(|_| closed())?;
    let seq = chunk.seq;
    let next = Chunk {
        seq: seq + 1,
        data: buffers.data,
        frames: buffers.frames,
        out: buffers.out,
        ..Chunk::default()
    };
    let full = std::mem::replace(chunk, next);
    quiet.update(|state| state.sent = seq + 1);
    let lane = if full.large { &work.large } else { &work.small };
    lane.send(full).map_err(|_| closed())
}
