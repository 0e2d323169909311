//! An open document's text, and positions in it: xf's spans are byte
//! offsets, LSP's positions are a line and a column in UTF-16 code units
//! (the encoding every client supports). Both directions clamp: an offset
//! past the end or inside a character, a line past the last or a column
//! past the line's end land on the nearest place that exists.

use lsp_types::{Position, Range};

use crate::lsp::Kind;

/// An open document, as the client last sent it.
pub(crate) struct Document {
    pub text: String,
    pub kind: Kind,
    /// The file it stands for, when its URI is a `file:` one.
    pub path: Option<std::path::PathBuf>,
    lines: Vec<usize>,
}

impl Document {
    pub fn new(text: String, kind: Kind, path: Option<std::path::PathBuf>) -> Document {
        let lines = line_starts(&text);
        Document {
            text,
            kind,
            path,
            lines,
        }
    }

    /// The LSP position of byte `offset`.
    pub fn position(&self, offset: usize) -> Position {
        position(&self.text, &self.lines, offset)
    }

    /// The LSP range of bytes `start..end`.
    pub fn range(&self, start: usize, end: usize) -> Range {
        Range::new(self.position(start), self.position(end.max(start)))
    }

    /// The byte offset of an LSP position.
    pub fn offset(&self, position: Position) -> usize {
        offset(&self.text, &self.lines, position)
    }

    /// The whole text's range, for an edit that replaces it.
    pub fn whole(&self) -> Range {
        self.range(0, self.text.len())
    }
}

/// Where each line starts (byte offsets); the first is 0.
pub(crate) fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(memchr_newlines(text).map(|at| at + 1))
        .collect()
}

fn memchr_newlines(text: &str) -> impl Iterator<Item = usize> + '_ {
    text.bytes()
        .enumerate()
        .filter(|(_, b)| *b == b'\n')
        .map(|(at, _)| at)
}

/// The LSP position of byte `offset` in `text` whose lines start at `lines`.
pub(crate) fn position(text: &str, lines: &[usize], offset: usize) -> Position {
    let offset = floor_boundary(text, offset);
    let line = lines.partition_point(|&start| start <= offset).max(1) - 1;
    let start = lines[line];
    let character: usize = text[start..offset].chars().map(char::len_utf16).sum();
    Position::new(saturate(line), saturate(character))
}

/// The byte offset of an LSP position in `text` whose lines start at `lines`.
pub(crate) fn offset(text: &str, lines: &[usize], position: Position) -> usize {
    let Some(&start) = lines.get(position.line as usize) else {
        return text.len();
    };
    let end = lines
        .get(position.line as usize + 1)
        .map_or(text.len(), |next| next - 1);
    let line = &text[start..end];
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut units = 0usize;
    for (at, c) in line.char_indices() {
        if units >= position.character as usize {
            return start + at;
        }
        units += c.len_utf16();
    }
    start + line.len()
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The nearest character boundary at or before `offset`, within `text`.
pub(crate) fn floor_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Document {
        Document::new(text.to_string(), Kind::Transform, None)
    }

    #[test]
    fn positions_count_utf16_units_and_round_trip() {
        // é is 2 bytes and 1 unit; 𝄞 is 4 bytes and 2 units.
        let d = doc("a\nlabel é = \"𝄞x\"\r\nlast");
        let at_x = d.text.find('x').unwrap();
        assert_eq!(d.position(at_x), Position::new(1, 13));
        assert_eq!(d.offset(Position::new(1, 13)), at_x);
        for offset in 0..=d.text.len() {
            if d.text.is_char_boundary(offset) && !d.text[..offset].ends_with('\r') {
                assert_eq!(d.offset(d.position(offset)), offset, "at {offset}");
            }
        }
    }

    #[test]
    fn out_of_range_positions_and_offsets_clamp() {
        let d = doc("ab\ncd");
        assert_eq!(d.offset(Position::new(0, 99)), 2);
        assert_eq!(d.offset(Position::new(9, 0)), 5);
        assert_eq!(d.position(99), Position::new(1, 2));
        // Inside a character: the character's start.
        let d = doc("é");
        assert_eq!(d.position(1), Position::new(0, 0));
        // Inside a surrogate pair: after the character.
        let d = doc("𝄞b");
        assert_eq!(d.offset(Position::new(0, 1)), 4);
    }
}
