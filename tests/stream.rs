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
