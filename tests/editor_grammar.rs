//! The TextMate grammar of `.xf` (editors/xf.tmLanguage.json), checked against
//! the pest grammar it mirrors: a small TextMate tokenizer (match, begin/end,
//! captures, patterns, include, repository) over fancy-regex runs it on every
//! shipped transform and the README's example, and each comment, string,
//! keyword, number and constant that the pest parser sees must get its scope.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use fancy_regex::Regex;
use pest::Parser as _;
use serde_json::Value;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/xf.pest"]
struct XfParser;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ── The tokenizer ────────────────────────────────────────────────────────────

/// One rule of the TextMate grammar, compiled: a `match`, a `begin`/`end` pair, or a
/// list of `patterns` (what an `include` of the repository stands for).
enum TmRule {
    Match {
        regex: Regex,
        name: Option<String>,
        captures: Captures,
    },
    Block {
        begin: Regex,
        end: String,
        name: Option<String>,
        begin_captures: Captures,
        end_captures: Captures,
        patterns: Vec<usize>,
    },
    Include(Vec<usize>),
}

type Captures = Vec<(usize, String)>;

struct Grammar {
    rules: Vec<TmRule>,
    top: Vec<usize>,
    end_cache: std::cell::RefCell<HashMap<String, Regex>>,
}

impl Grammar {
    fn load(json: &Value) -> Grammar {
        let mut grammar = Grammar {
            rules: Vec::new(),
            top: Vec::new(),
            end_cache: Default::default(),
        };
        let repository = json["repository"].as_object().expect("a repository");
        // Each repository entry gets its index first, so includes resolve in any order.
        let mut names = HashMap::new();
        for (index, name) in repository.keys().enumerate() {
            names.insert(name.clone(), index);
            grammar.rules.push(TmRule::Include(Vec::new()));
        }
        let entries: Vec<_> = repository.values().cloned().collect();
        for (index, entry) in entries.iter().enumerate() {
            grammar.rules[index] = grammar.compile(entry, &names);
        }
        grammar.top = grammar.patterns(&json["patterns"], &names);
        grammar
    }

    fn patterns(&mut self, list: &Value, names: &HashMap<String, usize>) -> Vec<usize> {
        let Some(list) = list.as_array() else {
            return Vec::new();
        };
        list.iter()
            .map(|rule| match rule["include"].as_str() {
                Some(include) => {
                    let name = include.strip_prefix('#').expect("only #name includes");
                    *names
                        .get(name)
                        .unwrap_or_else(|| panic!("include of unknown {name}"))
                }
                None => {
                    let compiled = self.compile(rule, names);
                    self.rules.push(compiled);
                    self.rules.len() - 1
                }
            })
            .collect()
    }

    fn compile(&mut self, rule: &Value, names: &HashMap<String, usize>) -> TmRule {
        let name = rule["name"].as_str().map(String::from);
        let captures = |key: &str| -> Captures {
            let mut list: Captures = rule[key]
                .as_object()
                .map(|map| {
                    map.iter()
                        .map(|(group, scope)| {
                            let scope = scope["name"].as_str().expect("a capture's name");
                            (group.parse().expect("a group number"), scope.to_string())
                        })
                        .collect()
                })
                .unwrap_or_default();
            list.sort();
            list
        };
        if let Some(regex) = rule["match"].as_str() {
            return TmRule::Match {
                regex: compile_regex(regex),
                name,
                captures: captures("captures"),
            };
        }
        if let Some(begin) = rule["begin"].as_str() {
            let shared = captures("captures");
            let or_shared = |own: Captures| if own.is_empty() { shared.clone() } else { own };
            let end = rule["end"]
                .as_str()
                .expect("a begin with an end")
                .to_string();
            compile_regex(&end);
            return TmRule::Block {
                begin: compile_regex(begin),
                end,
                name,
                begin_captures: or_shared(captures("beginCaptures")),
                end_captures: or_shared(captures("endCaptures")),
                patterns: self.patterns(&rule["patterns"], names),
            };
        }
        TmRule::Include(self.patterns(&rule["patterns"], names))
    }

    /// The match and block rules that `list` stands for, includes expanded.
    fn flatten(&self, list: &[usize], out: &mut Vec<usize>, depth: usize) {
        assert!(depth < 32, "includes nest too deep");
        for &index in list {
            match &self.rules[index] {
                TmRule::Include(inner) => self.flatten(inner, out, depth + 1),
                _ => out.push(index),
            }
        }
    }

    fn end_regex(&self, end: &str) -> Regex {
        self.end_cache
            .borrow_mut()
            .entry(end.to_string())
            .or_insert_with(|| compile_regex(end))
            .clone()
    }
}

fn compile_regex(source: &str) -> Regex {
    for banned in ["\\h", "\\A", "\\z", "\\G", "(?x)", "*+", "++", "?+", "}+"] {
        assert!(
            !source.contains(banned),
            "{source}: {banned} is not in the common subset of Oniguruma, JavaScript and fancy-regex"
        );
    }
    Regex::new(source).unwrap_or_else(|e| panic!("{source}: {e}"))
}

/// An open begin/end block: its rule and the scopes it pushed.
struct Open {
    rule: usize,
    scopes: Vec<String>,
}

/// The scopes of every byte of `text`, line by line, as an editor sees them.
fn tokenize(grammar: &Grammar, text: &str) -> Vec<Vec<String>> {
    let mut scopes = vec![Vec::new(); text.len()];
    let mut stack: Vec<Open> = Vec::new();
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let content = line.strip_suffix('\n').unwrap_or(line);
        tokenize_line(grammar, content, &mut stack, &mut scopes[line_start..]);
        if content.len() < line.len() {
            // The line end belongs to whatever is still open (a """ string).
            scopes[line_start + content.len()] =
                stack.iter().flat_map(|open| open.scopes.clone()).collect();
        }
        line_start += line.len();
    }
    scopes
}

fn tokenize_line(grammar: &Grammar, line: &str, stack: &mut Vec<Open>, scopes: &mut [Vec<String>]) {
    let mut pos = 0;
    let mut stuck = 0;
    loop {
        let base: Vec<String> = stack.iter().flat_map(|open| open.scopes.clone()).collect();
        let (patterns, end) = match stack.last() {
            Some(open) => match &grammar.rules[open.rule] {
                TmRule::Block { patterns, end, .. } => (patterns.as_slice(), Some(end)),
                _ => unreachable!(),
            },
            None => (grammar.top.as_slice(), None),
        };
        let mut candidates = Vec::new();
        grammar.flatten(patterns, &mut candidates, 0);
        // The earliest match wins; at the same place the block's end comes first.
        let mut best: Option<(usize, Option<usize>, fancy_regex::Captures<'_, str>)> = None;
        if let Some(end) = end {
            let regex = grammar.end_regex(end);
            if let Some(found) = regex.captures_from_pos(line, pos).unwrap() {
                best = Some((found.get(0).unwrap().start(), None, found));
            }
        }
        for index in candidates {
            let regex = match &grammar.rules[index] {
                TmRule::Match { regex, .. } => regex,
                TmRule::Block { begin, .. } => begin,
                TmRule::Include(_) => unreachable!(),
            };
            if let Some(found) = regex.captures_from_pos(line, pos).unwrap() {
                let start = found.get(0).unwrap().start();
                if best.as_ref().is_none_or(|(at, _, _)| start < *at) {
                    best = Some((start, Some(index), found));
                }
            }
        }
        let Some((start, rule, found)) = best else {
            fill(scopes, pos..line.len(), &base);
            return;
        };
        let whole = found.get(0).unwrap().range();
        fill(scopes, pos..start, &base);
        match rule {
            None => {
                let open = stack.pop().unwrap();
                let TmRule::Block { end_captures, .. } = &grammar.rules[open.rule] else {
                    unreachable!()
                };
                fill(scopes, whole.clone(), &base);
                apply_captures(scopes, &found, end_captures);
            }
            Some(index) => match &grammar.rules[index] {
                TmRule::Match { name, captures, .. } => {
                    let mut own = base.clone();
                    own.extend(name.clone());
                    fill(scopes, whole.clone(), &own);
                    apply_captures(scopes, &found, captures);
                }
                TmRule::Block {
                    name,
                    begin_captures,
                    ..
                } => {
                    let mut own = base.clone();
                    own.extend(name.clone());
                    fill(scopes, whole.clone(), &own);
                    apply_captures(scopes, &found, begin_captures);
                    stack.push(Open {
                        rule: index,
                        scopes: name.iter().cloned().collect(),
                    });
                }
                TmRule::Include(_) => unreachable!(),
            },
        }
        // A rule that matches nothing must not hold the line forever.
        if whole.is_empty() {
            stuck += 1;
            assert!(stuck < 16, "the grammar loops at byte {pos} of {line:?}");
        } else {
            stuck = 0;
        }
        pos = whole.end;
    }
}

fn fill(scopes: &mut [Vec<String>], range: std::ops::Range<usize>, with: &[String]) {
    for byte in &mut scopes[range] {
        *byte = with.to_vec();
    }
}

/// Each captured group's scope goes on top of what its bytes have (a group
/// inside another gets both).
fn apply_captures(
    scopes: &mut [Vec<String>],
    found: &fancy_regex::Captures<'_, str>,
    captures: &Captures,
) {
    for (group, scope) in captures {
        if let Some(span) = found.get(*group) {
            for byte in &mut scopes[span.range()] {
                byte.push(scope.clone());
            }
        }
    }
}

fn grammar() -> Grammar {
    let text = fs::read_to_string(root().join("editors/xf.tmLanguage.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["scopeName"], "source.xf");
    assert_eq!(json["fileTypes"], serde_json::json!(["xf"]));
    Grammar::load(&json)
}

// ── What pest sees, and what the scopes must say ─────────────────────────────

/// The scope class each kind of pest token must carry.
fn expected_class(rule: &str) -> Option<&'static str> {
    match rule {
        "string" | "triple_string" => Some("string.quoted."),
        "number" => Some("constant.numeric."),
        "boolean" => Some("constant.language.boolean."),
        "null" => Some("constant.language.null."),
        rule if rule.starts_with("kw_") => Some("keyword."),
        _ => None,
    }
}

fn has(scopes: &[String], class: &str) -> bool {
    scopes.iter().any(|scope| scope.starts_with(class))
}

/// Every problem of one file, as `file:line:col: …` lines.
fn check(name: &str, text: &str, grammar: &Grammar) -> Vec<String> {
    let scopes = tokenize(grammar, text);
    let pairs =
        XfParser::parse(Rule::file, text).unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
    let mut problems = Vec::new();
    let mut report = |at: usize, what: String| {
        let line = text[..at].matches('\n').count() + 1;
        let col = at - text[..at].rfind('\n').map_or(0, |n| n + 1) + 1;
        problems.push(format!("{name}:{line}:{col}: {what}"));
    };
    // Bytes inside a token pest reports (the rest is whitespace, punctuation or comment).
    let mut covered = vec![false; text.len()];
    for pair in pairs.flatten() {
        let rule = format!("{:?}", pair.as_rule());
        let span = pair.as_span();
        let range = span.start()..span.end();
        if matches!(
            rule.as_str(),
            "string" | "triple_string" | "number" | "boolean" | "null" | "ident" | "cmp_op"
        ) || rule.starts_with("kw_")
        {
            covered[range.clone()].fill(true);
        }
        if let Some(class) = expected_class(&rule) {
            if let Some(at) = range.clone().find(|&at| !has(&scopes[at], class)) {
                report(
                    at,
                    format!(
                        "{rule} {:?} is {:?}, not {class}*",
                        span.as_str(),
                        scopes[at]
                    ),
                );
            }
        }
        if rule == "ident" {
            let wrong = ["keyword.", "string.", "comment.", "constant."];
            if let Some(at) = range
                .clone()
                .find(|&at| wrong.iter().any(|class| has(&scopes[at], class)))
            {
                report(
                    at,
                    format!("identifier {:?} is {:?}", span.as_str(), scopes[at]),
                );
            }
        }
        if matches!(rule.as_str(), "string" | "triple_string") {
            for part in ["{{", "{%", "{#"] {
                for (offset, _) in span.as_str().match_indices(part) {
                    let at = span.start() + offset;
                    let class = if part == "{#" {
                        "comment.block."
                    } else {
                        "meta.template."
                    };
                    if !has(&scopes[at], class) {
                        report(at, format!("template part {part} is {:?}", scopes[at]));
                    }
                }
            }
        }
    }
    // What pest skips outside its tokens: whitespace, punctuation and comments.
    let mut at = 0;
    while at < text.len() {
        let byte = text.as_bytes()[at];
        if covered[at] || byte.is_ascii_whitespace() {
            at += 1;
            continue;
        }
        if byte == b'#' {
            let end = text[at..].find('\n').map_or(text.len(), |n| at + n);
            if let Some(bad) = (at..end).find(|&b| !has(&scopes[b], "comment.line.")) {
                report(bad, format!("comment is {:?}", scopes[bad]));
            }
            at = end;
            continue;
        }
        if scopes[at].is_empty() {
            report(at, format!("{:?} has no scope", byte as char));
        }
        if has(&scopes[at], "comment.") || has(&scopes[at], "string.") {
            report(at, format!("{:?} is {:?}", byte as char, scopes[at]));
        }
        at += 1;
    }
    problems
}

fn transforms() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(root().join("transforms"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "xf"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 10, "the shipped transforms: {paths:?}");
    paths
}

fn readme_example() -> String {
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    let after = readme
        .split("An example with every statement:")
        .nth(1)
        .expect("the README example");
    after
        .split("```")
        .nth(1)
        .expect("a fenced block")
        .trim_start_matches('\n')
        .to_string()
}

#[test]
fn every_token_of_the_shipped_transforms_gets_its_scope() {
    let grammar = grammar();
    let mut problems = Vec::new();
    for path in transforms() {
        let text = fs::read_to_string(&path).unwrap();
        let name = path
            .strip_prefix(root())
            .unwrap_or(&path)
            .display()
            .to_string();
        problems.extend(check(&name, &text, &grammar));
    }
    problems.extend(check("README.md example", &readme_example(), &grammar));
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// Words that are keywords in one place and keys of a record in another.
#[test]
fn keywords_and_keys_of_the_same_name_and_edge_cases() {
    let grammar = grammar();
    let text = r#"message message = "{{ name }}"
set from = key.to
lookup tags from "t.csv" key accountId column "account"
rename detail.login to user
for ip in network.client.ip {
  append ips = ip
}
fan_out alert in alerts
when a is not null and b contains "x" or not c exists {
  drop
} else when any(item in alerts: item.severity > 3) {
  set s = coalesce([event].sev, -1.5e3, true, null)
}
drop when offenseStatus == "CLOSED"   # a comment with "quotes" and {{ braces }}
label "detail-type".x = {"HIGH": [1, 2], "LOW": false}
tag add [event].account_id = "{{ a | default(\"x\") }} \u00e9 {% if b %}y{% endif %}{# note #}"
set s = """
  {{ one | lower }} "quoted" {% for x in xs %}{{ x }}{% endfor %}
"""
url link from eventId via kibana
message m = template "summary.j2"
"#;
    let problems = check("edge cases", text, &grammar);
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// A few lines as an editor shows them: each token with its innermost scope.
#[test]
fn snapshot_lines() {
    let grammar = grammar();
    let cases = [
        (
            "label [event].account_id = \"Home\"  # Armor's notation",
            "keyword.other.statement.xf:label | punctuation.definition.bracket-key.begin.xf:[ | variable.other.bracket-key.xf:event | punctuation.definition.bracket-key.end.xf:] | punctuation.accessor.xf:. | variable.other.xf:account_id | keyword.operator.assignment.xf:= | punctuation.definition.string.begin.xf:\" | string.quoted.double.xf:Home | punctuation.definition.string.end.xf:\" | punctuation.definition.comment.xf:# | comment.line.number-sign.xf: Armor's notation",
        ),
        (
            "drop when severity >= 8 and name starts_with \"x\"",
            "keyword.control.xf:drop | keyword.control.xf:when | variable.other.xf:severity | keyword.operator.comparison.xf:>= | constant.numeric.xf:8 | keyword.operator.logical.xf:and | variable.other.xf:name | keyword.operator.word.xf:starts_with | punctuation.definition.string.begin.xf:\" | string.quoted.double.xf:x | punctuation.definition.string.end.xf:\"",
        ),
        (
            "tag add s = \"[{{ sev | upper }}]\"",
            "keyword.other.statement.xf:tag | keyword.other.xf:add | variable.other.xf:s | keyword.operator.assignment.xf:= | punctuation.definition.string.begin.xf:\" | string.quoted.double.xf:[ | punctuation.section.embedded.begin.xf:{{ | meta.template.expression.xf:  | variable.other.template.xf:sev | meta.template.expression.xf:  | keyword.operator.filter.xf:| | meta.template.expression.xf:  | support.function.filter.xf:upper | meta.template.expression.xf:  | punctuation.section.embedded.end.xf:}} | string.quoted.double.xf:] | punctuation.definition.string.end.xf:\"",
        ),
        (
            "set id = map(sev, {\"HIGH\": 4}, 0)",
            "keyword.other.statement.xf:set | variable.other.xf:id | keyword.operator.assignment.xf:= | support.function.xf:map | punctuation.section.parens.xf:( | variable.other.xf:sev | punctuation.separator.comma.xf:, | punctuation.section.braces.xf:{ | punctuation.definition.string.begin.xf:\" | string.quoted.double.xf:HIGH | punctuation.definition.string.end.xf:\" | punctuation.separator.key-value.xf:: | constant.numeric.xf:4 | punctuation.section.braces.xf:} | punctuation.separator.comma.xf:, | constant.numeric.xf:0 | punctuation.section.parens.xf:)",
        ),
    ];
    for (line, expected) in cases {
        let scopes = tokenize(&grammar, line);
        let mut tokens: Vec<(String, String)> = Vec::new();
        let mut after_space = true;
        for (at, ch) in line.char_indices() {
            if ch == ' ' && scopes[at].is_empty() {
                after_space = true;
                continue;
            }
            let innermost = scopes[at].last().cloned().unwrap_or_default();
            match tokens.last_mut() {
                Some((scope, text)) if *scope == innermost && !after_space => text.push(ch),
                _ => tokens.push((innermost, ch.to_string())),
            }
            after_space = false;
        }
        let got = tokens
            .iter()
            .map(|(scope, text)| format!("{scope}:{text}"))
            .collect::<Vec<_>>()
            .join(" | ");
        assert_eq!(got, expected, "\n{line}");
    }
}

#[test]
fn the_vscode_extension_points_at_the_same_grammar() {
    let package: Value = serde_json::from_str(
        &fs::read_to_string(root().join("editors/vscode/package.json")).unwrap(),
    )
    .unwrap();
    let grammar_path = package["contributes"]["grammars"][0]["path"]
        .as_str()
        .unwrap();
    let in_extension = root().join("editors/vscode").join(grammar_path);
    assert_eq!(
        fs::read_to_string(in_extension).unwrap(),
        fs::read_to_string(root().join("editors/xf.tmLanguage.json")).unwrap()
    );
    let config: Value = serde_json::from_str(
        &fs::read_to_string(root().join("editors/vscode/language-configuration.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["comments"]["lineComment"], "#");
    assert!(Path::new(&root().join("editors/vscode/package.json")).exists());
}
