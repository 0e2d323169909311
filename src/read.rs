//! Stage 0, read: a byte stream → frames, one per top-level JSON value.
//!
//! Input is any sequence of whitespace-separated JSON values: NDJSON,
//! pretty-printed documents, several values on a line, with UTF-8 byte order
//! marks before any of them (skipped like white space). The framer finds where
//! each value ends by tracking strings and bracket depth only; parsing the
//! frame is left to serde_json, so a malformed value costs that one frame.
//!
//! To keep a malformed value from swallowing the records after it, a frame
//! also ends (as malformed) at a line break inside a string (JSON strings
//! cannot hold one) and, while a container is still open, before a line that
//! starts with `{` or `[` (pretty-printers indent nested values) or with a
//! byte that cannot continue JSON.
//!
//! A word between values that is no JSON scalar (`hello` in `hello world`,
//! a stray `}`) is malformed, and so is everything after it on its line:
//! the frame runs to the line's end, and reading resumes on the next line.
//! A line of text is then one failure, dead-lettered whole, not one per word.
//!
//! NDJSON's common case is cheaper still: a line whose next line starts
//! another value would end a frame at its line break whatever it holds, so it
//! is taken whole without scanning ([`Frame::unscanned`]); only when it does
//! not parse as one value is it framed byte by byte. A frame never ends in
//! white space, so both ways give the same frames.
//!
//! Before each read that may wait for input, the `before_wait` hook runs: the
//! stream driver flushes its output there, so a record written to a pipe shows
//! up downstream as soon as the producer pauses.

use std::io::{self, Read};

/// Bytes read from the source at a time.
const CHUNK: usize = 64 * 1024;

/// The UTF-8 byte order mark, skipped between values.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];
const BOM_FIRST: u8 = BOM[0];

/// The default largest value kept whole: 4 MiB. A parsed record takes up to
/// about 100 times its size in memory (measured worst case: an array of
/// one-item arrays of numbers; text-heavy payloads take 5 to 15 times), so
/// this keeps one record's worst case near 400 MiB. Webhook payloads are
/// kilobytes; `--max-record-size` raises it.
pub const DEFAULT_MAX_RECORD: usize = 4 * 1024 * 1024;

/// How much of an oversized value is kept, for the error report and dead letter.
const OVERSIZED_HEAD: usize = 1024;

/// One top-level value's bytes and where it starts.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub bytes: &'a [u8],
    /// 1-based line of the frame's first byte.
    pub line: usize,
    /// 1-based column (in bytes) of the frame's first byte.
    pub column: usize,
    /// For a value over the size limit: its full length. `bytes` then holds
    /// only its first KiB; the rest was scanned and let go.
    pub oversized: Option<u64>,
    /// The frame is a whole line taken without scanning it (see
    /// `Framer::whole_line`). If it does not parse as one value, it holds
    /// several or a malformed one: [`Framer::within_line`] frames it for real.
    pub unscanned: bool,
}

/// Splits a byte stream into frames.
pub struct Framer<R> {
    source: R,
    buf: Vec<u8>,
    /// Start of the frame being scanned (or of unscanned input).
    start: usize,
    /// Scan position.
    pos: usize,
    /// Bytes of `buf` that hold input.
    filled: usize,
    eof: bool,
    /// Line and column at `pos`.
    line: usize,
    /// Where the current line starts in `buf`; negative once compaction moved it out.
    line_start: isize,
    scan: Scan,
    at_input_start: bool,
    max_record: usize,
    /// The head of a value over `max_record`, while the rest is skipped.
    oversized_head: Vec<u8>,
    /// Bytes of an oversized value let go so far.
    skipped: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Scan {
    in_frame: bool,
    frame_line: usize,
    frame_column: usize,
    /// The frame is a bare scalar (number, literal): it ends at white space.
    scalar: bool,
    /// The frame is a whole line, taken without scanning it.
    unscanned: bool,
    /// The frame began with a word that is no JSON value: it runs to the
    /// line's end, so that a line of text is one failure, not one per word.
    rest_of_line: bool,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl<R: Read> Framer<R> {
    pub fn new(source: R) -> Self {
        Framer::with_limit(source, DEFAULT_MAX_RECORD)
    }

    /// A framer that keeps values of at most `max_record` bytes whole; a
    /// larger one is scanned to its end in constant memory and reported
    /// as [`Frame::oversized`].
    pub fn with_limit(source: R, max_record: usize) -> Self {
        Framer {
            source,
            buf: Vec::with_capacity(CHUNK),
            start: 0,
            pos: 0,
            filled: 0,
            eof: false,
            line: 1,
            line_start: 0,
            scan: Scan::default(),
            at_input_start: true,
            max_record: max_record.max(1),
            oversized_head: Vec::new(),
            skipped: 0,
        }
    }

    /// A framer for the bytes of one unscanned line (see [`Frame::unscanned`])
    /// that starts at `line` and `column` of the input.
    pub fn within_line(source: R, line: usize, column: usize) -> Self {
        let mut framer = Framer::with_limit(source, usize::MAX);
        framer.at_input_start = false;
        framer.line = line;
        framer.line_start = 1 - column as isize;
        framer
    }

    /// The next frame, or `None` at the end of the input.
    pub fn next_frame(
        &mut self,
        before_wait: &mut dyn FnMut() -> io::Result<()>,
    ) -> io::Result<Option<Frame<'_>>> {
        self.next_frame_telling(&mut |_| before_wait())
    }

    /// Like [`Framer::next_frame`]; `before_wait` is told whether the start
    /// of a value that has not ended yet is held (what a stop would cut).
    pub fn next_frame_telling(
        &mut self,
        before_wait: &mut dyn FnMut(bool) -> io::Result<()>,
    ) -> io::Result<Option<Frame<'_>>> {
        loop {
            if let Some((start, end)) = self.scan_available() {
                return Ok(Some(self.frame(start, end)));
            }
            if self.eof {
                if self.scan.in_frame && (self.start < self.filled || self.skipped > 0) {
                    // A value cut short by the end of the input.
                    let start = self.start;
                    let end = self.trimmed_end(self.filled);
                    self.start = end;
                    return Ok(Some(self.frame(start, end)));
                }
                return Ok(None);
            }
            self.let_go_of_oversized();
            before_wait(self.scan.in_frame)?;
            self.fill()?;
        }
    }

    /// The next frame already in the buffer, without reading more input.
    pub fn next_buffered_frame(&mut self) -> Option<Frame<'_>> {
        let (start, end) = self.scan_available()?;
        Some(self.frame(start, end))
    }

    /// The start of a value that has not ended yet, if any: what is lost if
    /// the input stops now.
    pub fn unfinished(&mut self) -> Option<Frame<'_>> {
        if !self.scan.in_frame {
            return None;
        }
        let (start, end) = (self.start, self.filled);
        self.start = end;
        self.pos = end;
        Some(self.frame(start, end))
    }

    /// The frame for `buf[start..end]`, or for the oversized value that ended there.
    fn frame(&mut self, start: usize, end: usize) -> Frame<'_> {
        let (line, column) = (self.scan.frame_line, self.scan.frame_column);
        let unscanned = self.scan.unscanned;
        self.scan = Scan::default();
        if self.skipped == 0 && end - start <= self.max_record {
            return Frame {
                bytes: &self.buf[start..end],
                line,
                column,
                oversized: None,
                unscanned,
            };
        }
        let total = self.skipped + (end - start) as u64;
        self.skipped = 0;
        if self.oversized_head.is_empty() {
            let keep = self.head_len(end - start);
            self.oversized_head
                .extend_from_slice(&self.buf[start..start + keep]);
        }
        Frame {
            bytes: &self.oversized_head,
            line,
            column,
            oversized: Some(total),
            unscanned: false,
        }
    }

    /// While a value is over the limit, keep its head and let the rest go,
    /// so that memory stays bounded whatever its size.
    fn let_go_of_oversized(&mut self) {
        let held = self.pos - self.start;
        if !self.scan.in_frame || (self.skipped == 0 && held <= self.max_record) {
            return;
        }
        if self.skipped == 0 {
            self.oversized_head.clear();
            self.oversized_head
                .extend_from_slice(&self.buf[self.start..self.start + self.head_len(held)]);
        }
        self.skipped += held as u64;
        self.start = self.pos;
    }

    /// How much of an oversized value of `len` bytes is kept.
    fn head_len(&self, len: usize) -> usize {
        len.min(OVERSIZED_HEAD).min(self.max_record)
    }

    /// Reads more input, first moving the unfinished frame to the buffer's front.
    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.filled, 0);
            self.filled -= self.start;
            self.pos -= self.start;
            self.line_start -= self.start as isize;
            self.start = 0;
        }
        if self.buf.len() > 4 * CHUNK && self.filled < CHUNK {
            // A large value has gone: give its memory back.
            self.buf.truncate(2 * CHUNK);
            self.buf.shrink_to_fit();
        }
        if self.buf.len() < self.filled + CHUNK {
            self.buf.resize(self.filled + CHUNK, 0);
        }
        let read = loop {
            match self.source.read(&mut self.buf[self.filled..]) {
                Ok(n) => break n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
        };
        if read == 0 {
            self.eof = true;
        }
        self.filled += read;
        if self.at_input_start {
            // A UTF-8 byte order mark is not part of the first value.
            let seen = self.filled.min(3);
            if self.buf[..seen] != BOM[..seen] || seen == 3 || self.eof {
                self.at_input_start = false;
                if self.buf[..seen] == BOM {
                    self.pos = 3;
                    self.start = 3;
                    self.line_start = 3;
                }
            }
        }
        Ok(())
    }

    /// Scans the buffered input; returns a complete frame's range if one ends.
    fn scan_available(&mut self) -> Option<(usize, usize)> {
        if self.at_input_start && !self.eof {
            return None;
        }
        while self.pos < self.filled {
            let byte = self.buf[self.pos];
            if !self.scan.in_frame {
                match byte {
                    b' ' | b'\t' | b'\r' => {}
                    b'\n' => self.newline(),
                    BOM_FIRST => match self.byte_order_mark() {
                        Some(true) => continue,
                        Some(false) => self.begin_frame(byte),
                        None => return None,
                    },
                    b'{' | b'[' => {
                        self.begin_frame(byte);
                        if let Some(end) = self.whole_line() {
                            self.scan.unscanned = true;
                            return Some(self.end_frame(end));
                        }
                    }
                    _ => self.begin_frame(byte),
                }
                self.pos += 1;
                continue;
            }
            if self.scan.rest_of_line {
                match memchr::memchr(b'\n', &self.buf[self.pos..self.filled]) {
                    Some(offset) => {
                        let end = self.trimmed_end(self.pos + offset);
                        return Some(self.end_frame(end));
                    }
                    None => self.pos = self.filled,
                }
                continue;
            }
            let scan = &mut self.scan;
            if scan.scalar {
                if matches!(byte, b' ' | b'\t' | b'\r' | b'\n') {
                    if byte == b'\n'
                        || self.skipped > 0
                        || is_json_scalar(&self.buf[self.start..self.pos])
                    {
                        return Some(self.end_frame(self.pos));
                    }
                    // Not JSON at all (`hello world`): the failure is the rest of the line.
                    self.scan.scalar = false;
                    self.scan.rest_of_line = true;
                    continue;
                }
            } else if scan.in_string {
                if !scan.escaped && !matches!(byte, b'"' | b'\\' | b'\n') {
                    // Most input bytes are inside strings: jump to the next one that matters.
                    let rest = &self.buf[self.pos..self.filled];
                    match memchr::memchr3(b'"', b'\\', b'\n', rest) {
                        Some(offset) => self.pos += offset,
                        None => self.pos = self.filled,
                    }
                    continue;
                }
                if byte == b'\n' {
                    // A raw line break cannot be inside a JSON string, escaped or not:
                    // the value is malformed.
                    let end = self.trimmed_end(self.pos);
                    return Some(self.end_frame(end));
                } else if scan.escaped {
                    scan.escaped = false;
                } else if byte == b'\\' {
                    scan.escaped = true;
                } else if byte == b'"' {
                    scan.in_string = false;
                    if scan.depth == 0 {
                        return Some(self.end_frame(self.pos + 1));
                    }
                }
            } else {
                match byte {
                    b'"' => scan.in_string = true,
                    b'{' | b'[' => scan.depth += 1,
                    b'}' | b']' => {
                        scan.depth = scan.depth.saturating_sub(1);
                        if scan.depth == 0 {
                            return Some(self.end_frame(self.pos + 1));
                        }
                    }
                    b'\n' => {
                        // Knowing whether the next line starts a new value needs its first byte.
                        if self.pos + 1 >= self.filled && !self.eof {
                            return None;
                        }
                        // (Bytes past `filled` are stale: left from before the buffer was compacted.)
                        if self.buf[..self.filled]
                            .get(self.pos + 1)
                            .is_some_and(|b| starts_another_value(*b))
                        {
                            let end = self.trimmed_end(self.pos);
                            return Some(self.end_frame(end));
                        }
                        self.newline();
                    }
                    _ => {}
                }
            }
            self.pos += 1;
        }
        None
    }

    /// At a byte `0xEF` between values: whether it starts a UTF-8 byte order
    /// mark (as where files were concatenated), which is then skipped like white
    /// space; `None` when more input is needed to tell. A mark at a line's
    /// start is not counted in its columns, as at the input's start.
    fn byte_order_mark(&mut self) -> Option<bool> {
        let rest = &self.buf[self.pos..self.filled];
        if rest.len() < BOM.len() && !self.eof && BOM.starts_with(rest) {
            return None;
        }
        if !rest.starts_with(&BOM) {
            return Some(false);
        }
        if self.pos as isize == self.line_start {
            self.line_start += BOM.len() as isize;
        }
        self.pos += BOM.len();
        Some(true)
    }

    /// Where the frame starting at `pos` ends, if that can be known without
    /// scanning it: NDJSON's case, a line whose next line starts another value.
    /// Scanning would end a frame at that line break whatever the line holds
    /// (see the module's resync rules), so the line is one frame or several
    /// whole ones, and parsing it tells which (see [`Frame::unscanned`]).
    fn whole_line(&self) -> Option<usize> {
        let rest = &self.buf[self.pos..self.filled];
        let newline = memchr::memchr(b'\n', rest)?;
        let next = *rest.get(newline + 1)?;
        if next.is_ascii_whitespace() || !starts_another_value(next) {
            return None;
        }
        let end = self.trimmed_end(self.pos + newline);
        (end - self.pos <= self.max_record).then_some(end)
    }

    fn begin_frame(&mut self, byte: u8) {
        self.start = self.pos;
        self.skipped = 0;
        self.oversized_head.clear();
        self.scan = Scan {
            in_frame: true,
            frame_line: self.line,
            frame_column: (self.pos as isize - self.line_start + 1).max(1) as usize,
            scalar: !matches!(byte, b'{' | b'[' | b'"'),
            depth: usize::from(matches!(byte, b'{' | b'[')),
            in_string: byte == b'"',
            escaped: false,
            unscanned: false,
            rest_of_line: false,
        };
    }

    /// `end` moved back over white space: a frame never ends in white space,
    /// so a malformed value is framed the same whichever rule ended it.
    fn trimmed_end(&self, end: usize) -> usize {
        let start = self.start.min(end);
        let kept = self.buf[start..end].trim_ascii_end().len();
        if kept == 0 {
            end
        } else {
            start + kept
        }
    }

    /// Ends the current frame at `end` (exclusive); scanning resumes there.
    fn end_frame(&mut self, end: usize) -> (usize, usize) {
        let start = self.start;
        self.pos = end;
        self.start = end;
        (start, end)
    }

    fn newline(&mut self) {
        self.line += 1;
        self.line_start = self.pos as isize + 1;
    }
}

/// Whether a bare word between values is a JSON scalar (`12`, `-1.5e3`,
/// `true`, `null`); anything else (`hello`, `}`, `truex`) is not JSON.
fn is_json_scalar(word: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(word).is_ok()
}

/// Whether a line that starts with `byte`, inside an open container, must be
/// the start of another value: `{` or `[` (pretty-printers indent nested ones),
/// or a byte that cannot continue JSON at all.
fn starts_another_value(byte: u8) -> bool {
    let continues = byte.is_ascii_whitespace()
        || byte.is_ascii_digit()
        || matches!(
            byte,
            b'"' | b'}' | b']' | b',' | b':' | b'-' | b't' | b'f' | b'n'
        );
    !continues || matches!(byte, b'{' | b'[')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8]) -> Vec<(String, usize)> {
        let mut framer = Framer::new(input);
        let mut out = Vec::new();
        while let Some(frame) = framer.next_frame(&mut || Ok(())).unwrap() {
            out.push((
                String::from_utf8_lossy(frame.bytes).into_owned(),
                frame.line,
            ));
        }
        out
    }

    #[test]
    fn splits_ndjson_pretty_and_same_line_values() {
        let input = b"{\"a\":1}\n{\n  \"b\": [1,\n 2]\n}\n  {\"c\":\"}\"} {\"d\":{}} 12 \"s\"\n";
        assert_eq!(
            frames(input),
            vec![
                ("{\"a\":1}".into(), 1),
                ("{\n  \"b\": [1,\n 2]\n}".into(), 2),
                ("{\"c\":\"}\"}".into(), 6),
                ("{\"d\":{}}".into(), 6),
                ("12".into(), 6),
                ("\"s\"".into(), 6),
            ]
        );
    }

    #[test]
    fn a_truncated_line_does_not_swallow_the_next_record() {
        let input = b"{\"a\": [1, 2\n{\"b\":2}\n{\"c\": \"open\n{\"d\":4}";
        assert_eq!(
            frames(input),
            vec![
                ("{\"a\": [1, 2".into(), 1),
                ("{\"b\":2}".into(), 2),
                ("{\"c\": \"open".into(), 3),
                ("{\"d\":4}".into(), 4),
            ]
        );
    }

    #[test]
    fn a_line_of_text_is_one_frame_to_its_end() {
        let input =
            b"{\"a\":1}\nhello world\n12 true x {\"b\":2}\n  } ]\n{\"c\":3} nope\n{\"d\":4}";
        assert_eq!(
            frames(input),
            vec![
                ("{\"a\":1}".into(), 1),
                ("hello world".into(), 2),
                ("12".into(), 3),
                ("true".into(), 3),
                ("x {\"b\":2}".into(), 3),
                ("} ]".into(), 4),
                // A line before another value is taken whole; parsing splits it (see below).
                ("{\"c\":3} nope".into(), 5),
                ("{\"d\":4}".into(), 6),
            ]
        );
        let mut framer = Framer::new(Trickle(b"one two\n{}"));
        let first = framer
            .next_frame(&mut || Ok(()))
            .unwrap()
            .map(|f| f.bytes.to_vec());
        assert_eq!(first.as_deref(), Some(&b"one two"[..]));
    }

    #[test]
    fn a_backslash_at_a_line_end_does_not_escape_the_line_break() {
        // Found by the property test `valid_lines_survive_any_garbage_lines`.
        assert_eq!(
            frames(b"\"\\\n{\"id\":0}\n"),
            vec![("\"\\".into(), 1), ("{\"id\":0}".into(), 2)]
        );
    }

    #[test]
    fn an_oversized_value_is_scanned_in_bounded_memory_and_reported() {
        let mut input = b"{\"a\":1}\n[".to_vec();
        input.extend(std::iter::repeat_n(b'1', 300_000).flat_map(|b| [b, b',']));
        input.extend_from_slice(b"1]\n{\"b\":2}\n");
        let mut framer = Framer::with_limit(Trickle(&input), 1000);
        let mut seen = Vec::new();
        while let Some(frame) = framer.next_frame(&mut || Ok(())).unwrap() {
            seen.push((frame.bytes.len(), frame.line, frame.oversized));
        }
        assert_eq!(
            seen,
            vec![(7, 1, None), (1000, 2, Some(600_003)), (7, 3, None)]
        );
        assert!(
            framer.buf.len() < 200_000,
            "the buffer grew to {}",
            framer.buf.len()
        );
    }

    #[test]
    fn skips_a_byte_order_mark_and_crlf() {
        assert_eq!(
            frames(b"\xEF\xBB\xBF{}\r\n[1]\r\n"),
            vec![("{}".into(), 1), ("[1]".into(), 2)]
        );
    }

    #[test]
    fn skips_a_byte_order_mark_between_values_whatever_the_read_sizes() {
        // Files concatenated, each with its mark (one with two); a cut mark is a value.
        let input = b"{\"a\":1}\n\xEF\xBB\xBF{\"b\":2}\n\xEF\xBB\xBF\xEF\xBB\xBF[3]\n \xEF\xBB\xBF4\n\xEF\xBB{}";
        let expected = vec![
            ("{\"a\":1}".to_string(), 1, 1),
            ("{\"b\":2}".to_string(), 2, 1),
            ("[3]".to_string(), 3, 1),
            ("4".to_string(), 4, 5),
            ("\u{FFFD}{}".to_string(), 5, 1),
        ];
        for trickle in [false, true] {
            let mut framer = if trickle {
                Framer::new(Box::new(Trickle(input)) as Box<dyn Read>)
            } else {
                Framer::new(Box::new(&input[..]) as Box<dyn Read>)
            };
            let mut seen = Vec::new();
            while let Some(frame) = framer.next_frame(&mut || Ok(())).unwrap() {
                let text = String::from_utf8_lossy(frame.bytes).into_owned();
                seen.push((text, frame.line, frame.column));
            }
            assert_eq!(seen, expected, "trickle: {trickle}");
        }
    }

    #[test]
    fn a_last_value_without_newline_is_kept() {
        assert_eq!(
            frames(b"{}\n{\"x\":1"),
            vec![("{}".into(), 1), ("{\"x\":1".into(), 2)]
        );
        assert_eq!(frames(b"42"), vec![("42".into(), 1)]);
    }

    /// A reader that hands out one byte at a time, as a slow pipe might.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.split_first() {
                Some((first, rest)) if !buf.is_empty() => {
                    buf[0] = *first;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn frames_do_not_depend_on_read_sizes() {
        let input = b"\xEF\xBB\xBF{\"a\":\"x\\\"}\"}\n[\n {\"b\":1}\n]\n7 {\"c\":2}";
        let mut framer = Framer::new(Trickle(input));
        let mut out = Vec::new();
        while let Some(frame) = framer.next_frame(&mut || Ok(())).unwrap() {
            out.push(String::from_utf8_lossy(frame.bytes).into_owned());
        }
        assert_eq!(
            out,
            vec!["{\"a\":\"x\\\"}\"}", "[\n {\"b\":1}\n]", "7", "{\"c\":2}"]
        );
    }

    #[test]
    fn a_line_before_another_value_is_taken_whole_without_scanning() {
        let input = b"{\"a\":1}  \r\n{\"b\":2} {\"c\":3}\n[4]\n{\"open\": [\n  5]}\n";
        let mut framer = Framer::new(&input[..]);
        let mut seen = Vec::new();
        while let Some(frame) = framer.next_frame(&mut || Ok(())).unwrap() {
            seen.push((
                String::from_utf8_lossy(frame.bytes).into_owned(),
                frame.unscanned,
            ));
        }
        let expected = [
            ("{\"a\":1}", true),
            // Two values on a line: the line is one unscanned frame; parsing splits it.
            ("{\"b\":2} {\"c\":3}", true),
            ("[4]", true),
            // The next line starts with white space: it may continue this value.
            ("{\"open\": [\n  5]}", false),
        ];
        let expected: Vec<(String, bool)> =
            expected.iter().map(|(s, u)| (s.to_string(), *u)).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn within_line_frames_from_the_line_and_column_given() {
        let mut framer = Framer::within_line(&b"{\"b\":2} [3"[..], 7, 5);
        let first = framer
            .next_frame(&mut || Ok(()))
            .unwrap()
            .map(|f| (f.line, f.column));
        let second = framer
            .next_frame(&mut || Ok(()))
            .unwrap()
            .map(|f| (f.line, f.column));
        assert_eq!((first, second), (Some((7, 5)), Some((7, 13))));
    }
}
