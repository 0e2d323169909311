//! What a document declares, read line by line: its statements' keywords,
//! `let` variables, loop items, lookups, schemas, `nest`s, includes and
//! template files, with their places.
//!
//! The language has one statement per line, so this reading needs no parse
//! and still works while the file does not parse (as it mostly does not,
//! while being typed). A line inside a `"""…"""` text is skipped; a line's
//! words, strings and punctuation are told apart as the grammar tells them,
//! and a `#` outside a string ends it.

use xf::diagnostic::Span;

/// A word or a string's text, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Name {
    pub text: String,
    pub span: Span,
}

/// A statement's first word, where its line starts and ends, and its block depth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Line {
    pub keyword: Name,
    pub start: usize,
    pub end: usize,
    pub depth: usize,
}

/// A `lookup NAME from "FILE"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LookupDecl {
    pub name: Name,
    pub file: Option<Name>,
}

/// What a document declares (see the module's documentation).
#[derive(Debug, Default)]
pub(super) struct Outline {
    pub statements: Vec<Line>,
    pub lets: Vec<Name>,
    /// `for`, `fan_out`, `any` and `all` items.
    pub items: Vec<Name>,
    pub lookups: Vec<LookupDecl>,
    /// `validate "NAME"`: the string's text and place.
    pub validates: Vec<Name>,
    /// `nest PATH`: the path's text.
    pub nests: Vec<Name>,
    /// Whether it says `events …` (an Armor transform).
    pub events: bool,
    /// `include "FILE"`, `template "FILE"`, a pipeline's `transform "FILE"`.
    pub files: Vec<Name>,
    /// A pipeline's sections: kind, name and where the section's line is.
    pub sections: Vec<(Name, Name)>,
}

/// A token of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    Word(Name),
    Text(Name),
    Punct(char, usize),
}

impl Token {
    fn word(&self) -> Option<&Name> {
        match self {
            Token::Word(name) => Some(name),
            _ => None,
        }
    }

    fn text(&self) -> Option<&Name> {
        match self {
            Token::Text(name) => Some(name),
            _ => None,
        }
    }
}

/// The tokens of `text[start..end]` (one line), offsets in `text`. A `#`
/// outside a string ends the line; an unclosed string runs to its end.
pub(super) fn tokens(text: &str, start: usize, end: usize) -> Vec<Token> {
    let line = &text[start..end];
    let mut tokens = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '#' => break,
            '"' => {
                let mut content = String::new();
                let mut close = line.len();
                let mut escaped = false;
                for (i, c) in chars.by_ref() {
                    if escaped {
                        content.push(c);
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        close = i + 1;
                        break;
                    } else {
                        content.push(c);
                    }
                }
                tokens.push(Token::Text(Name {
                    text: content,
                    span: Span::new(start + at, start + close),
                }));
            }
            c if c.is_ascii_alphanumeric() || c == '_' => {
                let mut stop = at + c.len_utf8();
                while let Some(&(i, c)) = chars.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        stop = i + 1;
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Word(Name {
                    text: line[at..stop].to_string(),
                    span: Span::new(start + at, start + stop),
                }));
            }
            c if c.is_whitespace() => {}
            c => tokens.push(Token::Punct(c, start + at)),
        }
    }
    tokens
}

/// Each line's byte range, without its line end, and whether it starts
/// inside a `"""…"""` text.
pub(super) fn lines(text: &str) -> Vec<(usize, usize, bool)> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut in_text = false;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        lines.push((start, start + body.len(), in_text));
        if triple_quotes(body, in_text) % 2 == 1 {
            in_text = !in_text;
        }
        start += line.len();
    }
    lines
}

/// How many `"""` the line holds that open or close a text (inside a
/// one-line string or after a comment they do neither).
fn triple_quotes(line: &str, mut in_text: bool) -> usize {
    let bytes = line.as_bytes();
    let mut count = 0;
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"\"\"\"") && !in_string {
            count += 1;
            in_text = !in_text;
            i += 3;
            continue;
        }
        match bytes[i] {
            b'\\' if in_string || in_text => i += 1,
            b'"' if !in_text => in_string = !in_string,
            b'#' if !in_string && !in_text => break,
            _ => {}
        }
        i += 1;
    }
    count
}

/// Reads what a document declares.
pub(super) fn outline(text: &str) -> Outline {
    let mut outline = Outline::default();
    let mut depth = 0usize;
    for (start, end, in_text) in lines(text) {
        if in_text {
            continue;
        }
        let tokens = tokens(text, start, end);
        // `} else {`: the statement after the closers, at the depth they leave.
        let closers = tokens
            .iter()
            .take_while(|t| matches!(t, Token::Punct('}', _)))
            .count();
        read_line(
            &tokens[closers..],
            &mut outline,
            start,
            end,
            depth.saturating_sub(closers),
        );
        for token in &tokens {
            match token {
                Token::Punct('{', _) => depth += 1,
                Token::Punct('}', _) => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    outline
}

fn read_line(tokens: &[Token], outline: &mut Outline, start: usize, end: usize, depth: usize) {
    // Anywhere on a line: template files and quantifiers' items.
    for pair in tokens.windows(2) {
        if let (Token::Word(w), Token::Text(file)) = (&pair[0], &pair[1]) {
            if w.text == "template" {
                outline.files.push(file.clone());
            }
        }
    }
    for triple in tokens.windows(3) {
        match (&triple[0], &triple[1], &triple[2]) {
            (Token::Word(w), Token::Punct('(', _), Token::Word(item))
                if w.text == "any" || w.text == "all" =>
            {
                outline.items.push(item.clone());
            }
            _ => {}
        }
    }
    let Some(Token::Word(keyword)) = tokens.first() else {
        return;
    };
    let depth = depth.min(64);
    outline.statements.push(Line {
        keyword: keyword.clone(),
        start,
        end,
        depth,
    });
    let second = tokens.get(1);
    match keyword.text.as_str() {
        "let" => outline.lets.extend(second.and_then(Token::word).cloned()),
        "for" | "fan_out" => outline.items.extend(second.and_then(Token::word).cloned()),
        "lookup" => {
            if let Some(name) = second.and_then(Token::word) {
                let file = tokens.get(3).and_then(Token::text).cloned();
                outline.lookups.push(LookupDecl {
                    name: name.clone(),
                    file,
                });
            }
        }
        "validate" => outline
            .validates
            .extend(second.and_then(Token::text).cloned()),
        "include" | "transform" => outline.files.extend(second.and_then(Token::text).cloned()),
        "events" => outline.events = true,
        "nest" => {
            if let Some(first) = second {
                let from = match first {
                    Token::Word(n) | Token::Text(n) => n.span.start,
                    Token::Punct(_, at) => *at,
                };
                let to = tokens.last().map_or(from, |t| match t {
                    Token::Word(n) | Token::Text(n) => n.span.end,
                    Token::Punct(c, at) => at + c.len_utf8(),
                });
                let _ = end;
                outline.nests.push(Name {
                    text: path_text(&tokens[1..]),
                    span: Span::new(from, to),
                });
            }
        }
        _ => {}
    }
    // A pipeline's section: `source NAME at "…" {` or `destination NAME {`.
    if let (Some(Token::Word(name)), Some(Token::Punct('{', _) | Token::Word(_))) =
        (second, tokens.get(2))
    {
        if matches!(tokens.last(), Some(Token::Punct('{', _)))
            && matches!(keyword.text.as_str(), "source" | "destination")
        {
            outline.sections.push((keyword.clone(), name.clone()));
        }
    }
}

/// A path's text from its tokens, as written (`unmapped`, `a.b`, `[event].x`).
fn path_text(tokens: &[Token]) -> String {
    let mut text = String::new();
    for token in tokens {
        match token {
            Token::Word(name) => text.push_str(&name.text),
            Token::Text(name) => {
                text.push_str(&serde_json::Value::String(name.text.clone()).to_string())
            }
            Token::Punct(c, _) => text.push(*c),
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_are_read_with_their_places() {
        let text = "events security_event\nlookup tags from \"t.csv\" key accountId\n\
                    let team = lower(x)  # a comment: let no = 1\n\
                    message m = \"\"\"\nlet inside = text\n\"\"\"\n\
                    when any(ip in ips: ip == \"1\") {\n  for item in list {\n    include \"other.xf\"\n  }\n}\n\
                    nest unmapped\nvalidate \"cii-event\"\ntag add t = template \"t.j2\"\n";
        let outline = outline(text);
        assert!(outline.events);
        let names = |names: &[Name]| names.iter().map(|n| n.text.clone()).collect::<Vec<_>>();
        assert_eq!(names(&outline.lets), ["team"]);
        assert_eq!(names(&outline.items), ["ip", "item"]);
        assert_eq!(outline.lookups[0].name.text, "tags");
        assert_eq!(outline.lookups[0].file.as_ref().unwrap().text, "t.csv");
        assert_eq!(names(&outline.files), ["other.xf", "t.j2"]);
        assert_eq!(names(&outline.nests), ["unmapped"]);
        assert_eq!(names(&outline.validates), ["cii-event"]);
        let team = &outline.lets[0];
        assert_eq!(&text[team.span.start..team.span.end], "team");
        let include = outline
            .statements
            .iter()
            .find(|l| l.keyword.text == "include")
            .unwrap();
        assert_eq!(include.depth, 2);
        assert!(!outline
            .statements
            .iter()
            .any(|l| l.keyword.text == "inside"));
    }

    #[test]
    fn pipeline_sections_are_read() {
        let text = "listen \"127.0.0.1:8080\"\nsource armor at \"/hooks/armor\" {\n  transform \"t.xf\"\n}\ndestination splunk {\n}\n";
        let outline = outline(text);
        let sections: Vec<_> = outline
            .sections
            .iter()
            .map(|(k, n)| format!("{} {}", k.text, n.text))
            .collect();
        assert_eq!(sections, ["source armor", "destination splunk"]);
        assert_eq!(outline.files[0].text, "t.xf");
    }
}
