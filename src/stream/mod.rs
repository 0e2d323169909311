//! The stream driver: read → parse → apply → write for a whole input, record
//! by record, in constant memory.
//!
//! A record that cannot be read or transformed is reported (input position and
//! reason) through the error callback, kept verbatim in the dead-letter file
//! when there is one, and counted; the stream goes on unless `strict` is set.
//! Output is flushed whenever the input would make xf wait, and only ever
//! written in whole lines.
//!
//! With [`Options::threads`] above one, `parallel` spreads the work over
//! worker threads; the output is the same, in the same order.

mod interruptible;
mod parallel;
mod process;

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

pub use interruptible::Interruptible;
pub use process::{in_record_work, parse_frame, parse_record, Cut, Failure, Problem, Traced};

use crate::read::{Framer, DEFAULT_MAX_RECORD};
use crate::write::{DeadLetters, Position, Sink};
use crate::Transform;

/// How the stream treats batches and errors, and how many threads it uses.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Write one array per input array instead of one line per record.
    pub keep_batches: bool,
    /// Stop at the first record that fails.
    pub strict: bool,
    /// The largest input value kept whole, in bytes; `None`: [`DEFAULT_MAX_RECORD`].
    pub max_record: Option<usize>,
    /// Worker threads; 1 does everything on the calling thread.
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            keep_batches: false,
            strict: false,
            max_record: None,
            threads: 1,
        }
    }
}

/// What happened to the records of a stream. `read == written + dropped + failed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub read: u64,
    /// Records read that were written out (as one record, or with `fan_out` several).
    pub written: u64,
    /// The records written out: `written`, plus the more that `fan_out` made.
    pub outputs: u64,
    pub dropped: u64,
    pub failed: u64,
    /// Failed records whose dead letter could not be written (counted in `failed` too).
    pub lost: u64,
}

impl Stats {
    fn add(&mut self, other: &Stats) {
        self.read += other.read;
        self.written += other.written;
        self.outputs += other.outputs;
        self.dropped += other.dropped;
        self.failed += other.failed;
        self.lost += other.lost;
    }
}

/// A stream's counts as another thread may read them while it runs (`xf run
/// --progress`): published after each frame (a record, or a whole top-level
/// array), three relaxed stores, so that watching costs the stream nothing more.
#[derive(Debug, Default)]
pub struct LiveStats {
    pub read: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
}

impl LiveStats {
    fn publish(&self, stats: &Stats) {
        self.read.store(stats.read, Ordering::Relaxed);
        self.dropped.store(stats.dropped, Ordering::Relaxed);
        self.failed.store(stats.failed, Ordering::Relaxed);
    }
}

/// Flags shared with signal handlers (see `xf run`): `stop` asks the stream
/// to end after the records it has read; `waiting` is true while the stream
/// waits for input with all its output written, so an embedding program's
/// handler may end the process then (`xf run` does not need to: its inputs are read
/// through [`Interruptible`], so a stop is seen while it waits).
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    pub stop: Arc<AtomicBool>,
    pub waiting: Arc<AtomicBool>,
    /// When `stop` was first seen, by the driver or by any record's work: the
    /// one [`crate::apply::STOP_GRACE`] that every record still to finish shares.
    pub stop_seen: Arc<OnceLock<Instant>>,
}

impl Interrupt {
    /// Whether a stop was asked for; the first time it is seen starts the grace.
    pub fn stop_requested(&self) -> bool {
        let stop = self.stop.load(Ordering::SeqCst);
        if stop {
            self.stop_seen.get_or_init(Instant::now);
        }
        stop
    }

    /// What a record's work runs with: this stop and its shared grace.
    pub fn context(&self) -> crate::apply::Context<'_> {
        crate::apply::Context {
            stop: Some(&self.stop),
            stop_seen: Some(&self.stop_seen),
            now: None,
            request: None,
            kept_elsewhere: false,
        }
    }
}

/// What every record of a stream runs with, fixed for the stream: what
/// `now()` gives ([`Stream::fix_now`]) and what `request` reads ([`Stream::set_request`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Fixed {
    now: Option<i64>,
    request: Option<crate::apply::Request>,
}

/// What each record's work runs with: the stop (if any), the time `now()`
/// gives and the request.
fn record_context<'a>(
    interrupt: Option<&'a Interrupt>,
    fixed: &'a Fixed,
) -> crate::apply::Context<'a> {
    crate::apply::Context {
        now: fixed.now,
        request: fixed.request.as_ref(),
        kept_elsewhere: false,
        ..interrupt.map_or_else(Default::default, Interrupt::context)
    }
}

/// Why a stream could not go on: the input could not be read, or the output
/// or the dead-letter file could not be written. Whatever was complete before
/// it has been written out; a record the input cut short is a failure.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("cannot read {input}: {error}")]
    Input { input: String, error: io::Error },
    #[error("cannot write the output: {0}")]
    Output(io::Error),
    #[error("cannot write a dead letter: {0}")]
    DeadLetters(io::Error),
}

/// Whether a read of an input may wait for more of it to be written.
enum Reads {
    /// A pipe, a terminal, a socket, any reader: what was read is written out
    /// before each read.
    MayWait,
    /// A regular file.
    NeverWait,
    /// An input that tells: a read would not wait while this returns true.
    WaitsUnless(Box<dyn Fn() -> bool + Send>),
}

impl Reads {
    /// Whether the next read may wait, so that what was read must be written out first.
    fn may_wait(&self) -> bool {
        match self {
            Reads::MayWait => true,
            Reads::NeverWait => false,
            Reads::WaitsUnless(ready) => !ready(),
        }
    }
}

/// Whether the stream may go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// `strict` and a record failed, the output was closed, or a stop was asked for.
    Stop,
}

/// A failed record as the error callback gets it: where it is and why, as
/// values. Its `Display` is the error line `xf run` prints
/// (`stdin:2 (batch item 0): tag add (line 3): …`).
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    pub position: &'a Position<'a>,
    pub problem: &'a Problem,
}

impl std::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.position, self.problem)
    }
}

/// Runs one transform over any number of inputs into one output.
pub struct Stream<'t, W: Write, D: Write> {
    transform: &'t Transform,
    sink: Sink<W>,
    dead_letters: Option<DeadLetters<D>>,
    on_error: Box<dyn FnMut(&Report<'_>) + 't>,
    options: Options,
    pub stats: Stats,
    output_closed: bool,
    interrupt: Option<Interrupt>,
    /// What `now()` gives and `request` reads, when set.
    fixed: Fixed,
    first_lost: Option<Lost>,
    /// Where each record's trace goes, when tracing ([`Stream::trace_to`]).
    on_trace: Option<Box<OnTrace<'t>>>,
    /// Where the counts are published as they change ([`Stream::publish_to`]).
    live: Option<Arc<LiveStats>>,
}

/// What [`Stream::trace_to`] gives each record's trace to.
type OnTrace<'t> = dyn FnMut(&Position<'_>, &crate::apply::Trace) + 't;

/// The first failed record whose dead letter could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    /// Where it is in the input, as error lines say it (`stdin:2 (batch item 0)`).
    pub position: String,
    /// It is an item of a top-level array, whose other items went through too.
    pub in_batch: bool,
}

impl<'t, W: Write, D: Write> Stream<'t, W, D> {
    pub fn new(
        transform: &'t Transform,
        output: W,
        dead_letters: Option<D>,
        on_error: impl FnMut(&Report<'_>) + 't,
        options: Options,
    ) -> Self {
        Stream {
            transform,
            sink: Sink::new(output),
            dead_letters: dead_letters.map(DeadLetters::new),
            on_error: Box::new(on_error),
            options,
            stats: Stats::default(),
            output_closed: false,
            interrupt: None,
            fixed: Fixed::default(),
            first_lost: None,
            on_trace: None,
            live: None,
        }
    }

    /// Publishes [`Stream::stats`] to `live` after every frame, at every
    /// thread count, for a progress display to read.
    pub fn publish_to(&mut self, live: Arc<LiveStats>) {
        self.live = Some(live);
    }

    /// Traces every record ([`crate::Transform::apply_traced`]) and gives
    /// each trace, with the record's position, to `on_trace`, in input order,
    /// before the record's error line if it fails. A traced stream runs on
    /// the calling thread alone, whatever [`Options::threads`] says, so that
    /// traces come in order and are timed without other work in between.
    pub fn trace_to(&mut self, on_trace: impl FnMut(&Position<'_>, &crate::apply::Trace) + 't) {
        self.on_trace = Some(Box::new(on_trace));
    }

    /// Lets signal handlers stop the stream between records (see [`Interrupt`]).
    pub fn set_interrupt(&mut self, interrupt: Interrupt) {
        self.interrupt = Some(interrupt);
    }

    /// Fixes what `now()` gives (epoch milliseconds) for this stream's
    /// records, for reproducible output.
    pub fn fix_now(&mut self, millis: i64) {
        self.fixed.now = Some(millis);
    }

    /// What `request` reads for this stream's records (`xf run
    /// --request-header`); without it, `request` is null.
    pub fn set_request(&mut self, request: crate::apply::Request) {
        self.fixed.request = Some(request);
    }

    /// Whether the stream ended because `Interrupt::stop` was set.
    pub fn interrupted(&self) -> bool {
        self.interrupt
            .as_ref()
            .is_some_and(Interrupt::stop_requested)
    }

    /// The first failed record that could not be dead-lettered, if any
    /// ([`Stats::lost`] counts them all).
    pub fn first_lost(&self) -> Option<&Lost> {
        self.first_lost.as_ref()
    }

    /// Whether the reader of the output has gone away (`xf run … | head -1`).
    pub fn output_closed(&self) -> bool {
        self.output_closed
    }

    /// Streams one input through the transform. A closed output (its reader
    /// went away) just stops the stream; other errors are returned, after
    /// everything complete before them has been written out.
    /// With more than one thread, the input is read on a thread of its own,
    /// hence `Send + 'static` (standard input and files are).
    ///
    /// Before each read, which may wait for more input to be written (a pipe,
    /// a terminal), the stream writes out what it has, so that a record
    /// written to a pipe comes out at once; [`Stream::run_file`] and
    /// [`Stream::run_ready`] do so only when a read may wait.
    pub fn run(
        &mut self,
        input_name: &str,
        input: impl Read + Send + 'static,
    ) -> Result<Flow, StreamError> {
        self.run_input(input_name, input, Reads::MayWait)
    }

    /// Like [`Stream::run`], for an input whose reads never wait for a writer:
    /// a regular file. Nothing is written out before each read, so with
    /// several threads the work goes to them in full chunks, not one chunk
    /// per read, each written out apart (see the README, Performance). Given a
    /// pipe, output would only come out as the buffers fill.
    pub fn run_file(
        &mut self,
        input_name: &str,
        input: impl Read + Send + 'static,
    ) -> Result<Flow, StreamError> {
        self.run_input(input_name, input, Reads::NeverWait)
    }

    /// Like [`Stream::run`], for an input that can tell whether its next read
    /// would wait: while `ready` returns true (bytes are there, or the
    /// input's end), nothing is written out before a read, as for
    /// [`Stream::run_file`]. [`Interruptible::ready`] tells it for a pipe.
    pub fn run_ready(
        &mut self,
        input_name: &str,
        input: impl Read + Send + 'static,
        ready: impl Fn() -> bool + Send + 'static,
    ) -> Result<Flow, StreamError> {
        self.run_input(input_name, input, Reads::WaitsUnless(Box::new(ready)))
    }

    fn run_input(
        &mut self,
        input_name: &str,
        input: impl Read + Send + 'static,
        reads: Reads,
    ) -> Result<Flow, StreamError> {
        let result = if self.options.threads > 1 && self.on_trace.is_none() {
            parallel::run(self, input_name, input, reads)
        } else {
            self.run_here_inner(input_name, input, reads)
        };
        self.closed_output_stops(result)
    }

    /// A closed output ends the stream quietly: `xf run … | head -1`.
    fn closed_output_stops(
        &mut self,
        result: Result<Flow, StreamError>,
    ) -> Result<Flow, StreamError> {
        match result {
            Err(StreamError::Output(error)) if error.kind() == io::ErrorKind::BrokenPipe => {
                self.output_closed = true;
                Ok(Flow::Stop)
            }
            other => other,
        }
    }

    /// Like [`Stream::run`], on the calling thread only, for any reader.
    pub fn run_here(&mut self, input_name: &str, input: impl Read) -> Result<Flow, StreamError> {
        let result = self.run_here_inner(input_name, input, Reads::MayWait);
        self.closed_output_stops(result)
    }

    fn run_here_inner(
        &mut self,
        input_name: &str,
        input: impl Read,
        reads: Reads,
    ) -> Result<Flow, StreamError> {
        let limit = self.options.max_record.unwrap_or(DEFAULT_MAX_RECORD);
        let mut framer = Framer::with_limit(input, limit);
        let interrupt = self.interrupt.clone();
        let mut failures = Vec::new();
        loop {
            let sink = &mut self.sink;
            let mut output_failed = false;
            let next = framer.next_frame_telling(&mut |mid_record| {
                if !reads.may_wait() {
                    // Stop requests are seen after each record.
                    return Ok(());
                }
                if let Err(error) = sink.flush() {
                    output_failed = true;
                    return Err(error);
                }
                // Everything is written and no record is cut: from here until input
                // arrives, a signal may end xf at once. One that came just before this
                // point only set `stop`.
                if let Some(interrupt) = &interrupt {
                    interrupt.waiting.store(!mid_record, Ordering::SeqCst);
                    if interrupt.stop_requested() {
                        return Err(io::Error::new(io::ErrorKind::Interrupted, "stop requested"));
                    }
                }
                Ok(())
            });
            if let Some(interrupt) = &interrupt {
                interrupt.waiting.store(false, Ordering::SeqCst);
            }
            let frame = match next {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) if output_failed => return Err(StreamError::Output(error)),
                Err(_) if self.interrupted() => {
                    return self.drain(input_name, &mut framer, Cut::Signal)
                }
                Err(error) => {
                    // What was read whole still goes through; a record the error cut is kept.
                    self.drain(input_name, &mut framer, Cut::ReadError)?;
                    return Err(StreamError::Input {
                        input: input_name.to_string(),
                        error,
                    });
                }
            };
            let flow = self.process(input_name, &frame, &mut failures);
            self.report(input_name, failures.drain(..))?;
            self.sink.commit().map_err(StreamError::Output)?;
            if flow == Flow::Stop {
                self.sink.flush().map_err(StreamError::Output)?;
                return Ok(Flow::Stop);
            }
            if self.interrupted() {
                return self.drain(input_name, &mut framer, Cut::Signal);
            }
        }
        self.sink.flush().map_err(StreamError::Output)?;
        Ok(Flow::Continue)
    }

    fn process(
        &mut self,
        input_name: &str,
        frame: &crate::read::Frame<'_>,
        failures: &mut Vec<Failure>,
    ) -> Flow {
        let mut traces = Vec::new();
        let mut results = process::Results {
            out: self.sink.buffer(),
            failures,
            stats: &mut self.stats,
            context: record_context(self.interrupt.as_ref(), &self.fixed),
            traces: self.on_trace.is_some().then_some(&mut traces),
        };
        let flow = process::process(self.transform, &self.options, frame, &mut results);
        if let Some(on_trace) = &mut self.on_trace {
            for traced in &traces {
                let position = Position {
                    input: input_name,
                    line: traced.line,
                    index: traced.index,
                };
                on_trace(&position, &traced.trace);
            }
        }
        flow
    }

    /// After a stop request or a read error: every record already read is
    /// written whole or dead-lettered (up to the first failure, with
    /// `strict`); nothing more is read.
    fn drain(
        &mut self,
        input_name: &str,
        framer: &mut Framer<impl Read>,
        why: Cut,
    ) -> Result<Flow, StreamError> {
        let mut failures = Vec::new();
        while let Some(frame) = framer.next_buffered_frame() {
            let flow = self.process(input_name, &frame, &mut failures);
            self.report(input_name, failures.drain(..))?;
            if flow == Flow::Stop {
                // `strict`: nothing after the failure is written, as at `-jN`.
                self.sink.flush().map_err(StreamError::Output)?;
                return Ok(Flow::Stop);
            }
        }
        if let Some(frame) = framer.unfinished() {
            let mut results = process::Results {
                out: self.sink.buffer(),
                failures: &mut failures,
                stats: &mut self.stats,
                context: record_context(None, &self.fixed),
                traces: None,
            };
            process::cut(&self.options, &mut results, &frame, why);
            self.report(input_name, failures.drain(..))?;
        }
        self.sink.flush().map_err(StreamError::Output)?;
        Ok(Flow::Stop)
    }

    /// Reports failures: the error callback, then the dead-letter file. When a
    /// dead letter cannot be written, every failure given still gets its error
    /// line, and those not dead-lettered (that one and the rest: the file is
    /// not tried again) are counted in [`Stats::lost`]; then the output
    /// complete so far is written, so that a broken dead-letter file loses no
    /// good record, and the error is returned.
    fn report(
        &mut self,
        input_name: &str,
        failures: impl IntoIterator<Item = Failure>,
    ) -> Result<(), StreamError> {
        let mut broken = None;
        for failure in failures {
            let position = Position {
                input: input_name,
                line: failure.line,
                index: failure.index,
            };
            (self.on_error)(&Report {
                position: &position,
                problem: &failure.problem,
            });
            if let Some(dead_letters) = &mut self.dead_letters {
                let reason = failure.problem.to_string();
                let kept = broken.is_none()
                    && match dead_letters.write(&position, &reason, &failure.raw) {
                        Ok(()) => true,
                        Err(error) => {
                            broken = Some(error);
                            false
                        }
                    };
                if !kept {
                    self.stats.lost += 1;
                    self.first_lost.get_or_insert_with(|| Lost {
                        position: position.to_string(),
                        in_batch: failure.index.is_some(),
                    });
                }
            }
        }
        // Every frame (with threads: every chunk of frames) ends with its report.
        if let Some(live) = &self.live {
            live.publish(&self.stats);
        }
        match broken {
            None => Ok(()),
            Some(error) => {
                let _ = self.sink.flush();
                Err(StreamError::DeadLetters(error))
            }
        }
    }
}
