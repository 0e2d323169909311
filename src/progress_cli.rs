//! `xf run --progress` (and `xf validate`): a bar on standard error with the
//! records read, the input bytes consumed, records per second, failures and
//! drops so far, and the time left when the inputs' total size is known.
//!
//! The stream only publishes its counts ([`LiveStats`], after each frame) and
//! the inputs count the bytes they hand over (one atomic add per read, which
//! is a buffer of input, not a record); the bar is redrawn from them ten
//! times a second. Who redraws depends on whether xf runs on threads anyway:
//! if it does (`-j` over 1, or an input that is not a regular file, read on a
//! thread of its own), a thread of the bar's own; if not, the thread that
//! reads the input, at its next read once a tenth of a second has passed. On
//! the system allocator a second thread costs a single-threaded run even
//! while it sleeps: glibc's `malloc` and `free` take their locked paths once
//! a process has two threads, and xf allocates for every value it reads (the
//! bar's own thread cost `-j 1` about 2 %; the reads' redraws cost nothing
//! measurable: see the README, `--progress`). The bar never touches standard output, record
//! error lines are printed with the bar lifted ([`Progress::eprintln`]), and
//! [`Progress::finish`] clears it and prints one summary line, on every way
//! out of a run (its end, an error, a signal).

use std::cell::RefCell;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{BinaryBytes, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};
use xf::stream::LiveStats;

/// How often the counts are read and the bar redrawn.
const REDRAW: Duration = Duration::from_millis(100);
const REDRAW_HZ: u8 = 10;

/// `--progress` / `--no-progress`.
#[derive(clap::Args, Default)]
pub(crate) struct ProgressArgs {
    /// Show a progress bar on stderr: records, bytes, records/s, failures, time left.
    /// Default: on when stderr is a terminal and every input is a file (not stdin)
    #[arg(long, overrides_with = "no_progress")]
    progress: bool,
    /// Never show the progress bar
    #[arg(long, overrides_with = "progress")]
    no_progress: bool,
}

impl ProgressArgs {
    /// Whether to show the bar. With `--trace` on standard error the two
    /// would interleave on one stream: the bar is off by default then, and
    /// asking for both is refused.
    pub(crate) fn wanted(&self, inputs: &[PathBuf], trace_on_stderr: bool) -> Result<bool, String> {
        if self.progress && trace_on_stderr {
            return Err("--progress and --trace both write to standard error; give --trace=FILE to have both".into());
        }
        if self.progress || self.no_progress {
            return Ok(self.progress);
        }
        Ok(!trace_on_stderr
            && io::stderr().is_terminal()
            && !inputs.is_empty()
            && inputs.iter().all(|input| input.as_os_str() != "-"))
    }
}

/// The bar of one run, or nothing ([`Progress::off`]).
pub(crate) struct Progress {
    // A cell: record error lines go through the bar from the stream's error
    // callback, which holds it until the run is over.
    shown: RefCell<Option<Shown>>,
}

struct Shown {
    bar: ProgressBar,
    counts: Arc<Counts>,
    /// The redrawing thread, if the bar has one (else the reads redraw it).
    redraw: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
    /// Whether the reads redraw the bar.
    by_reads: bool,
}

/// What the bar shows, written by the stream and its inputs.
#[derive(Default)]
struct Counts {
    live: Arc<LiveStats>,
    bytes: Arc<AtomicU64>,
    started: Option<Instant>,
}

impl Counts {
    /// What the bar says beside its bytes: `1000 records (3333/s), 3 failed, 1 dropped`.
    fn message(&self) -> String {
        let (read, rate, failed, dropped) = self.now();
        let mut message = format!("{read} records ({rate}/s), {failed} failed");
        if dropped > 0 {
            message.push_str(&format!(", {dropped} dropped"));
        }
        message
    }

    /// Records read, records per second, failed, dropped.
    fn now(&self) -> (u64, u64, u64, u64) {
        let read = self.live.read.load(Ordering::Relaxed);
        let seconds = self.started.map_or(0.0, |at| at.elapsed().as_secs_f64());
        let rate = if seconds > 0.0 {
            (read as f64 / seconds).round() as u64
        } else {
            0
        };
        let failed = self.live.failed.load(Ordering::Relaxed);
        (
            read,
            rate,
            failed,
            self.live.dropped.load(Ordering::Relaxed),
        )
    }

    /// The summary line's text, after `xf: `.
    fn line(&self) -> String {
        let read = self.live.read.load(Ordering::Relaxed);
        let failed = self.live.failed.load(Ordering::Relaxed);
        let dropped = self.live.dropped.load(Ordering::Relaxed);
        let seconds = self.started.map_or(0.0, |at| at.elapsed().as_secs_f64());
        let bytes = self.bytes.load(Ordering::Relaxed);
        let rate = if seconds > 0.0 {
            (read as f64 / seconds).round() as u64
        } else {
            0
        };
        let mut line = format!(
            "{read} records, {} in {seconds:.1}s ({rate} records/s), {failed} failed",
            BinaryBytes(bytes)
        );
        if dropped > 0 {
            line.push_str(&format!(", {dropped} dropped"));
        }
        line
    }
}

impl Progress {
    pub(crate) fn off() -> Progress {
        Progress {
            shown: RefCell::new(None),
        }
    }

    /// Starts the bar for these inputs: with a known total (every input a
    /// regular file), a bar with the time left; otherwise a spinner.
    /// `one_thread`: whether the stream runs on the calling thread only (`-j
    /// 1`, or `--trace`); with regular files only, the reads then redraw the
    /// bar, and xf stays one thread (see the module's documentation).
    pub(crate) fn start(inputs: &[PathBuf], one_thread: bool) -> Progress {
        let total = total_size(inputs);
        let target = if io::stderr().is_terminal() {
            ProgressDrawTarget::stderr_with_hz(REDRAW_HZ)
        } else {
            // Asked for with --progress into a pipe or a file: drawn all the same.
            ProgressDrawTarget::term_like_with_hz(Box::new(PlainStderr), REDRAW_HZ)
        };
        let (bar, template) = match total {
            Some(total) => (
                ProgressBar::with_draw_target(Some(total), target),
                "{msg}, {binary_bytes}/{binary_total_bytes} [{wide_bar}] {eta} left",
            ),
            None => (
                ProgressBar::with_draw_target(None, target),
                "{spinner} {msg}, {binary_bytes} ({binary_bytes_per_sec})",
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        let counts = Arc::new(Counts {
            started: Some(Instant::now()),
            ..Counts::default()
        });
        let by_reads = one_thread && total.is_some();
        redraw(&bar, &counts);
        let redraw = if by_reads {
            None
        } else {
            redraw_thread(bar.clone(), Arc::clone(&counts))
        };
        Progress {
            shown: RefCell::new(Some(Shown {
                bar,
                counts,
                redraw,
                by_reads,
            })),
        }
    }

    /// Where the stream publishes its counts, when the bar is shown.
    pub(crate) fn live(&self) -> Option<Arc<LiveStats>> {
        self.shown
            .borrow()
            .as_ref()
            .map(|shown| Arc::clone(&shown.counts.live))
    }

    /// The input, counting the bytes read from it when the bar is shown (and
    /// redrawing the bar, when the reads do).
    pub(crate) fn count(&self, input: Box<dyn Read + Send>) -> Box<dyn Read + Send> {
        match &*self.shown.borrow() {
            Some(shown) => Box::new(Counted {
                input,
                bytes: Arc::clone(&shown.counts.bytes),
                redraws: shown.by_reads.then(|| Redraws {
                    bar: shown.bar.clone(),
                    counts: Arc::clone(&shown.counts),
                    last: Instant::now(),
                }),
            }),
            None => input,
        }
    }

    /// Prints one line on stderr, whole: with the bar lifted while it is written.
    pub(crate) fn eprintln(&self, line: &str) {
        let print = || {
            let _ = writeln!(io::stderr().lock(), "{line}");
        };
        match &*self.shown.borrow() {
            Some(shown) => shown.bar.suspend(print),
            None => print(),
        }
    }

    /// Clears the bar and prints the summary line
    /// (`xf: 1000 records, 1.2 MiB in 0.3s (3333 records/s), 3 failed`).
    pub(crate) fn finish(&self) {
        let Some(mut shown) = self.shown.borrow_mut().take() else {
            return;
        };
        if let Some((stop, thread)) = shown.redraw.take() {
            drop(stop);
            let _ = thread.join();
        }
        shown.bar.finish_and_clear();
        eprintln!("xf: {}", shown.counts.line());
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(shown) = &*self.shown.borrow() {
            shown.bar.finish_and_clear();
        }
    }
}

/// Draws the bar with the counts as they are now.
fn redraw(bar: &ProgressBar, counts: &Counts) {
    bar.set_message(counts.message());
    bar.set_position(counts.bytes.load(Ordering::Relaxed));
    bar.tick();
}

/// Reads the counts and redraws, until its sender is dropped.
fn redraw_thread(
    bar: ProgressBar,
    counts: Arc<Counts>,
) -> Option<(mpsc::Sender<()>, JoinHandle<()>)> {
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("xf-progress".into())
        .spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(REDRAW) {
                redraw(&bar, &counts);
            }
        })
        // Without the thread the bar stays as first drawn; the run goes on.
        .ok()?;
    Some((stop, thread))
}

/// The inputs' total size, when each is a regular file (not stdin, a pipe or a device).
fn total_size(inputs: &[PathBuf]) -> Option<u64> {
    inputs.iter().try_fold(0u64, |total, input| {
        if input.as_os_str() == "-" {
            return None;
        }
        let metadata = std::fs::metadata(Path::new(input)).ok()?;
        metadata
            .is_file()
            .then(|| total.saturating_add(metadata.len()))
    })
}

/// An input that counts the bytes read from it.
struct Counted {
    input: Box<dyn Read + Send>,
    bytes: Arc<AtomicU64>,
    /// When the reads redraw the bar: what they need.
    redraws: Option<Redraws>,
}

/// The bar as a reading thread redraws it: at a read, once [`REDRAW`] has
/// passed since it last did (a read is a buffer of input: 64 KiB of a file).
struct Redraws {
    bar: ProgressBar,
    counts: Arc<Counts>,
    last: Instant,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.input.read(buf)?;
        self.bytes.fetch_add(read as u64, Ordering::Relaxed);
        if let Some(redraws) = &mut self.redraws {
            if redraws.last.elapsed() >= REDRAW {
                redraws.last = Instant::now();
                redraw(&redraws.bar, &redraws.counts);
            }
        }
        Ok(read)
    }
}

/// Standard error that is not a terminal, drawn on as if it were one: a
/// carriage return and "erase line" before each redraw (what `--progress`
/// into a pipe or a log shows), 80 columns or `$COLUMNS`.
#[derive(Debug)]
struct PlainStderr;

impl PlainStderr {
    fn write(&self, text: &str) -> io::Result<()> {
        io::stderr().lock().write_all(text.as_bytes())
    }
}

impl TermLike for PlainStderr {
    fn width(&self) -> u16 {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|columns| columns.parse().ok())
            .unwrap_or(80)
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        // `ESC[0A` moves one line on some terminals: no move is no sequence.
        if n == 0 {
            return Ok(());
        }
        self.write(&format!("\x1b[{n}A"))
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.write(&format!("\x1b[{n}B"))
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.write(&format!("\x1b[{n}C"))
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.write(&format!("\x1b[{n}D"))
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        self.write(&format!("{s}\n"))
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        self.write(s)
    }

    fn clear_line(&self) -> io::Result<()> {
        self.write("\r\x1b[2K")
    }

    fn flush(&self) -> io::Result<()> {
        io::stderr().flush()
    }
}
