//! The stream driver through the library, for what the real binary cannot be
//! made to do on cue: a stop request that comes with records read behind the
//! one at work.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use xf::stream::{Interrupt, Options, Stats, Stream};
use xf::Transform;

/// Gives all its bytes in one read and sets `stop` as it does: a signal that
/// comes while the first record is at work, the records after it already read.
struct StopsAsItReads {
    bytes: Vec<u8>,
    at: usize,
    stop: Arc<AtomicBool>,
}

impl Read for StopsAsItReads {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.bytes.len() - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        self.stop.store(true, Ordering::SeqCst);
        Ok(n)
    }
}

fn run_stopping(
    transform: &Transform,
    input: &[u8],
    options: Options,
) -> (String, Vec<String>, Stats) {
    let (mut output, mut errors) = (Vec::new(), Vec::new());
    let interrupt = Interrupt::default();
    let reader = StopsAsItReads {
        bytes: input.to_vec(),
        at: 0,
        stop: Arc::clone(&interrupt.stop),
    };
    let mut stream = Stream::new(
        transform,
        &mut output,
        None::<Vec<u8>>,
        |e| errors.push(e.to_string()),
        options,
    );
    stream.set_interrupt(interrupt);
    stream.run("input", reader).unwrap();
    let stats = stream.stats;
    drop(stream);
    (String::from_utf8(output).unwrap(), errors, stats)
}

#[test]
fn strict_stops_the_records_read_before_a_stop_at_every_thread_count() {
    let transform =
        Transform::from_source("t.xf", "when bad exists {\n  fail \"no\"\n}\n", None).unwrap();
    let input = b"{\"a\":1}\n{\"bad\":1}\n{\"a\":2}\n{\"bad\":2}\n";
    for threads in [1, 3] {
        let options = Options {
            strict: true,
            threads,
            ..Options::default()
        };
        let (output, errors, stats) = run_stopping(&transform, input, options);
        assert_eq!(output, "{\"a\":1}\n", "-j{threads}");
        assert_eq!(errors, ["input:2: fail (line 2): no"], "-j{threads}");
        assert_eq!(
            (stats.read, stats.written, stats.failed),
            (2, 1, 1),
            "-j{threads}"
        );
    }
    // Without --strict, every record read is written or reported.
    let (output, errors, stats) = run_stopping(&transform, input, Options::default());
    assert_eq!(output, "{\"a\":1}\n{\"a\":2}\n");
    assert_eq!(errors.len(), 2);
    assert_eq!((stats.read, stats.written, stats.failed), (4, 2, 2));
}

/// Hands out its bytes in reads of varying size, and says a read would not
/// wait for about half of them, at random: the pieces a pipe read ahead.
struct Pieces {
    bytes: Vec<u8>,
    at: usize,
    seed: u64,
}

impl Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.seed = next(self.seed);
        let n = buf
            .len()
            .min(self.bytes.len() - self.at)
            .min(1 + (self.seed % 70_000) as usize);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn next(seed: u64) -> u64 {
    seed.wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        >> 1
}

/// Records of every kind a stream frames, many chunks' worth (a chunk holds
/// 256 frames at most): some that the transform fails, malformed ones,
/// pretty-printed ones, batches, two on a line, CRLF, one above the size of
/// a frame that goes to the large lane, and one over the record size limit.
fn varied_input() -> Vec<u8> {
    let mut input = Vec::new();
    let mut seed = 7;
    for n in 0..3000u32 {
        seed = next(seed);
        let pad = "x".repeat((seed % 2500) as usize);
        let record = match n {
            _ if n % 97 == 0 => format!("{{\"n\":{n},\"bad\":1}}\n"),
            _ if n % 131 == 0 => format!("{{\"n\":{n},\"x\":}}\n"),
            _ if n % 211 == 0 => format!("{{\n  \"n\": {n},\n  \"pad\": \"{pad}\"\n}}\n"),
            _ if n % 307 == 0 => format!("[{{\"n\":{n}}},\n {{\"n\":{n},\"bad\":2}}, 3]\n"),
            _ if n % 401 == 0 => format!("{{\"n\":{n}}} {{\"n\":{n},\"second\":true}}\r\n"),
            1000 => format!("{{\"n\":{n},\"large\":\"{}\"}}\n", "y".repeat(100_000)),
            2000 => format!("{{\"n\":{n},\"over\":\"{}\"}}\n", "z".repeat(300_000)),
            _ if n % 50 == 0 => format!("\n{{\"n\":{n},\"pad\":\"{pad}\"}}\n"),
            _ => format!("{{\"n\":{n},\"pad\":\"{pad}\"}}\n"),
        };
        input.extend_from_slice(record.as_bytes());
    }
    // The last record cut short by the input's end.
    input.extend_from_slice(b"{\"n\":3000,\"pad\":\"unfinished");
    input
}

/// How a test hands the input to the stream.
#[derive(Debug, Clone, Copy)]
enum Way {
    /// `run_here`, on the calling thread.
    Here,
    /// `run`: before every read, what was read is written out.
    Pipe,
    /// `run_file`: reads never wait.
    File,
    /// `run_ready`: reads of varying size; a read would wait about half the time.
    Ready,
}

/// A dead-letter file that fails once it holds `room` bytes.
struct Fills {
    kept: Vec<u8>,
    room: usize,
}

impl io::Write for Fills {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.kept.len() + buf.len() > self.room {
            return Err(io::Error::other("no room"));
        }
        self.kept.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Output, error lines, dead letters, counts and how the stream ended, of
/// one run whose dead-letter file takes `room` bytes.
fn run_way(
    transform: &Transform,
    input: &[u8],
    way: Way,
    threads: usize,
    room: usize,
) -> [String; 5] {
    let (mut output, mut errors) = (Vec::new(), Vec::new());
    let mut dead = Fills {
        kept: Vec::new(),
        room,
    };
    let options = Options {
        threads,
        max_record: Some(200_000),
        ..Options::default()
    };
    let mut stream = Stream::new(
        transform,
        &mut output,
        Some(&mut dead),
        |e| errors.push(e.to_string()),
        options,
    );
    let cursor = io::Cursor::new(input.to_vec());
    let ended = match way {
        Way::Here => stream.run_here("input", cursor),
        Way::Pipe => stream.run("input", cursor),
        Way::File => stream.run_file("input", cursor),
        Way::Ready => {
            let seed = Arc::new(std::sync::atomic::AtomicU64::new(11));
            let pieces = Pieces {
                bytes: input.to_vec(),
                at: 0,
                seed: 3,
            };
            let ready = move || {
                let s = next(seed.load(Ordering::SeqCst));
                seed.store(s, Ordering::SeqCst);
                s % 2 == 0
            };
            stream.run_ready("input", pieces, ready)
        }
    };
    let stats = format!("{:?}", stream.stats);
    drop(stream);
    [
        String::from_utf8(output).unwrap(),
        errors.join("\n"),
        String::from_utf8_lossy(&dead.kept).into_owned(),
        stats,
        format!("{:?}", ended.map_err(|e| e.to_string())),
    ]
}

#[test]
fn every_way_of_reading_gives_what_one_thread_gives_across_chunks() {
    let transform = Transform::from_source(
        "t.xf",
        "when bad exists {\n  fail \"no\"\n}\nlabel ok = true\n",
        None,
    )
    .unwrap();
    let input = varied_input();
    let expected = run_way(&transform, &input, Way::Here, 1, usize::MAX);
    // What the input holds did happen: failures, the cut record, the large ones.
    assert!(
        expected[1].contains("input:2986: malformed JSON: expected value (column 15)"),
        "{}",
        expected[1]
    );
    assert!(
        expected[1].ends_with("input:3109: malformed JSON: EOF while parsing a string (column 27)")
    );
    assert!(
        expected[1].contains("record too large: 300"),
        "{}",
        expected[1]
    );
    assert!(
        expected[1].contains("(batch item 1): fail"),
        "{}",
        expected[1]
    );
    assert!(expected[0].contains("\"large\":\"yyy"));
    assert!(expected[3].contains("failed: "), "{}", expected[3]);
    assert_eq!(expected[4], "Ok(Continue)");
    // A dead-letter file that fills up after a few dozen letters stops the
    // stream after the same record at every `-j`, in a chunk far from the first.
    let filled = run_way(&transform, &input, Way::Here, 1, 4_000);
    assert!(
        filled[4].contains("cannot write a dead letter"),
        "{}",
        filled[4]
    );
    assert!(filled[0].len() > 1_000_000, "{}", filled[0].len());
    for (room, expected) in [(usize::MAX, &expected), (4_000, &filled)] {
        for threads in [1, 2, 3] {
            for way in [Way::Pipe, Way::File, Way::Ready] {
                let got = run_way(&transform, &input, way, threads, room);
                let parts = ["output", "errors", "dead letters", "counts", "end"];
                for (part, (got, expected)) in parts.iter().zip(got.iter().zip(expected)) {
                    assert!(
                        got == expected,
                        "{part} differ: {way:?} at -j{threads}, room {room}"
                    );
                }
            }
        }
    }
}
