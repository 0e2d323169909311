//! Pipeline files (`.xfp`): what `xf serve PIPELINE` runs, checked whole.
//!
//! ```text
//! listen "127.0.0.1:8080"
//! spool "/var/lib/xf/spool"
//!
//! source armor at "/hooks/armor" {
//!     transform "transforms/armor-splunk.xf"
//! }
//!
//! destination splunk {
//!     uri "https://splunk.example.com:8088/services/collector/event"
//!     header "Authorization" = env "SPLUNK_HEC_TOKEN"
//!     format hec
//!     when severity >= 5
//! }
//! ```
//!
//! The grammar is the transform language's (`syntax::pipeline`); this module
//! gives each setting its meaning. Every problem is a diagnostic with a caret
//! under the setting or value at fault, all of them reported at once. Paths
//! in the file are relative to the file's own folder.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::config::{
    self, BodyFormat, Destination, Source, SourceAuth, BATCH_BYTES_LIMIT, BATCH_RECORDS_LIMIT,
    LINGER_LIMIT_MS, MAX_AGE_LIMIT, MAX_TIMEOUT,
};
use super::{Pipeline, Refused};
use crate::compile::EventType;
use crate::diagnostic::{self, Code, Diagnostic, Span};
use crate::syntax::pipeline::{
    parse_pipeline, Declaration, Section, Setting, Value, ValueKind, Word,
};
use crate::{LoadError, LoadOptions, Transform};

/// What a pipeline file sets besides its sources and destinations, each as
/// written (`None`: not set). They take effect when the server starts (a
/// reload changes only the pipeline); `xf serve` takes a flag given over
/// them, and a default for what neither sets.
#[derive(Debug, Clone, Default)]
pub struct ServerSettings {
    pub listen: Option<SocketAddr>,
    /// Relative to the pipeline file's folder, joined to it.
    pub spool: Option<PathBuf>,
    pub spool_max_bytes: Option<u64>,
    pub spool_max_records: Option<u64>,
    /// Bytes, as sent and once decompressed.
    pub max_body: Option<u64>,
    pub max_body_records: Option<u64>,
    pub max_connections: Option<u64>,
    /// An SMTP relay, host and port.
    pub smtp: Option<(String, u16)>,
    pub mail_from: Option<String>,
    pub error_webhook: Option<reqwest::Url>,
    /// Seconds between two notices about one destination.
    pub notice_interval: Option<u64>,
    /// Seconds between looks at the pipeline's files for a change (0: never).
    pub reload_poll: Option<u64>,
}

/// A loaded pipeline file.
pub struct Loaded {
    pub pipeline: Pipeline,
    pub settings: ServerSettings,
}

const TOP_SETTINGS: &[&str] = &[
    "listen",
    "spool",
    "spool_max_bytes",
    "spool_max_records",
    "max_body",
    "max_body_records",
    "max_connections",
    "smtp",
    "mail_from",
    "error_webhook",
    "notice_interval",
    "reload_poll",
];
const SECTIONS: &[&str] = &["source", "destination"];
const SOURCE_SETTINGS: &[&str] = &["transform", "tags", "kibana", "auth"];
const DESTINATION_SETTINGS: &[&str] = &[
    "uri",
    "armor_notification",
    "header",
    "events",
    "when",
    "from",
    "format",
    "timeout",
    "concurrency",
    "max_attempts",
    "max_age",
    "batch_records",
    "batch_bytes",
    "batch_linger",
    "email_for_error",
];

/// Loads a pipeline file: every problem found, rendered rustc-style, or the pipeline.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Loaded, String> {
    load_watched(path, options).map_err(|refused| refused.problems)
}

/// [`load`], saying also which files were read (the pipeline's `watched`),
/// those of a pipeline that does not load too.
pub fn load_watched(path: &Path, options: &LoadOptions) -> Result<Loaded, Refused> {
    let refused = |problems| Refused {
        problems,
        watched: vec![path.to_path_buf()],
    };
    let shown = path.display().to_string();
    let text =
        config::read_config_file(path).map_err(|error| refused(format!("error: {error}\n")))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut reader = Reader {
        text: &text,
        name: &shown,
        base,
        options,
        problems: Vec::new(),
        watched: vec![path.to_path_buf()],
    };
    let declarations =
        parse_pipeline(&text).map_err(|d| refused(diagnostic::render(&shown, &text, &d)))?;
    let mut loaded = reader.read(&declarations);
    if reader.problems.is_empty() {
        loaded.pipeline.watched = reader.watched;
        Ok(loaded)
    } else {
        Err(Refused {
            problems: diagnostic::render(&shown, &text, &reader.problems),
            watched: reader.watched,
        })
    }
}

struct Reader<'a> {
    text: &'a str,
    name: &'a str,
    base: PathBuf,
    options: &'a LoadOptions,
    problems: Vec<Diagnostic>,
    /// Every file it named or read so far, for the pipeline's `watched`.
    watched: Vec<PathBuf>,
}

fn unknown(kind: &str, word: &Word, known: &[&str]) -> Diagnostic {
    let mut diagnostic = Diagnostic::new(
        Code::UnknownSetting,
        format!("unknown {kind} `{}`", word.text),
        word.span,
    )
    .with_label(format!("no {kind} of this name"));
    let closest = known
        .iter()
        .map(|k| (strsim::jaro_winkler(k, &word.text), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    diagnostic = match closest {
        Some((_, name)) => diagnostic.with_note(format!("did you mean `{name}`?")),
        None => diagnostic.with_note(format!("{kind}s here: {}", known.join(", "))),
    };
    diagnostic
}

impl Reader<'_> {
    fn problem(&mut self, code: Code, message: impl Into<String>, span: Span, label: &str) {
        self.problems
            .push(Diagnostic::new(code, message, span).with_label(label));
    }

    fn read(&mut self, declarations: &[Declaration]) -> Loaded {
        let mut settings = ServerSettings::default();
        let mut sources: Vec<Source> = Vec::new();
        let mut source_names: Vec<Word> = Vec::new();
        let mut destinations: Vec<(Destination, Option<Vec<Word>>)> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for declaration in declarations {
            match declaration {
                Declaration::Setting(setting) => {
                    let name = setting.name.text.as_str();
                    if !TOP_SETTINGS.contains(&name) {
                        let problem = if SECTIONS.contains(&name) {
                            Diagnostic::new(
                                Code::Syntax,
                                format!("a {name} is a block: `{name} NAME {{ … }}`"),
                                setting.span,
                            )
                            .with_label("no block follows")
                        } else {
                            unknown("setting", &setting.name, TOP_SETTINGS)
                        };
                        self.problems.push(problem);
                        continue;
                    }
                    if seen.contains(&name) {
                        self.problem(
                            Code::Duplicate,
                            format!("`{name}` is set twice"),
                            setting.name.span,
                            "set again here",
                        );
                        continue;
                    }
                    seen.push(name);
                    match name {
                        "listen" => {
                            if let Some(text) = self.one_text(setting) {
                                match text.0.parse::<SocketAddr>() {
                                    Ok(address) => settings.listen = Some(address),
                                    Err(_) => self.problem(
                                        Code::SettingValue,
                                        format!("`{}` is not an address and port", text.0),
                                        text.1,
                                        "such as \"127.0.0.1:8080\" or \"[::]:443\"",
                                    ),
                                }
                            }
                        }
                        "spool" => {
                            if let Some(text) = self.one_text(setting) {
                                settings.spool = Some(self.base.join(text.0));
                            }
                        }
                        "spool_max_bytes" => {
                            settings.spool_max_bytes = self.one_number(setting);
                        }
                        "spool_max_records" => {
                            settings.spool_max_records = self.one_number(setting);
                        }
                        "max_body" => settings.max_body = self.one_number(setting),
                        "max_body_records" => {
                            settings.max_body_records = self.one_number(setting);
                        }
                        "max_connections" => {
                            settings.max_connections = self.one_number(setting);
                        }
                        "smtp" => {
                            if let Some((text, span)) = self.one_text(setting) {
                                match text
                                    .rsplit_once(':')
                                    .and_then(|(h, p)| Some((h.to_string(), p.parse().ok()?)))
                                {
                                    Some(relay) => settings.smtp = Some(relay),
                                    None => self.problem(
                                        Code::SettingValue,
                                        format!("`{text}` is not HOST:PORT"),
                                        span,
                                        "an SMTP relay, such as \"localhost:25\"",
                                    ),
                                }
                            }
                        }
                        "mail_from" => {
                            settings.mail_from = self.one_text(setting).map(|(text, _)| text);
                        }
                        "error_webhook" => {
                            if let Some((text, span)) = self.one_text(setting) {
                                match config::parse_uri(&text) {
                                    Ok(uri) => settings.error_webhook = Some(uri),
                                    Err(error) => self.problem(
                                        Code::SettingValue,
                                        error,
                                        span,
                                        "not an http(s) URL",
                                    ),
                                }
                            }
                        }
                        "notice_interval" => {
                            settings.notice_interval = self.one_number(setting);
                        }
                        "reload_poll" => settings.reload_poll = self.one_number(setting),
                        _ => {}
                    }
                }
                Declaration::Section(section) => match section.kind.text.as_str() {
                    "source" => {
                        if let Some(earlier) =
                            source_names.iter().find(|w| w.text == section.name.text)
                        {
                            let _ = earlier;
                            self.problem(
                                Code::Duplicate,
                                format!("two sources are named `{}`", section.name.text),
                                section.name.span,
                                "named again here",
                            );
                        }
                        if let Some(source) = self.source(section) {
                            if sources.iter().any(|s| s.path == source.path) {
                                let span = section.at.as_ref().map_or(section.span, |a| a.span);
                                self.problem(
                                    Code::Duplicate,
                                    format!("two sources receive at `{}`", source.path),
                                    span,
                                    "the same path again",
                                );
                            }
                            sources.push(source);
                        }
                        source_names.push(section.name.clone());
                    }
                    "destination" => {
                        if destinations
                            .iter()
                            .any(|(d, _)| *d.name == *section.name.text)
                        {
                            self.problem(
                                Code::Duplicate,
                                format!("two destinations are named `{}`", section.name.text),
                                section.name.span,
                                "each destination's name is its queue in the spool",
                            );
                        }
                        if let Some(destination) = self.destination(section) {
                            destinations.push(destination);
                        }
                    }
                    _ => self
                        .problems
                        .push(unknown("section", &section.kind, SECTIONS)),
                },
            }
        }
        let end = Span::new(self.text.len(), self.text.len());
        if sources.is_empty() && self.problems.is_empty() {
            self.problem(
                Code::MissingSetting,
                "the pipeline has no source",
                end,
                "add `source NAME at \"/path\" { transform \"….xf\" }`",
            );
        }
        if destinations.is_empty() && self.problems.is_empty() {
            self.problem(
                Code::MissingSetting,
                "the pipeline has no destination",
                end,
                "add `destination NAME { uri \"https://…\" }`",
            );
        }
        // `from` names sources; checked once all are known.
        let mut finished = Vec::new();
        for (mut destination, from) in destinations {
            if let Some(from) = from {
                for word in &from {
                    if !source_names.iter().any(|s| s.text == word.text) {
                        let known: Vec<&str> =
                            source_names.iter().map(|s| s.text.as_str()).collect();
                        self.problems.push(unknown("source", word, &known));
                    }
                }
                destination.sources =
                    Some(from.iter().map(|w| Arc::from(w.text.as_str())).collect());
            }
            finished.push(Arc::new(destination));
        }
        Loaded {
            pipeline: Pipeline {
                sources,
                destinations: finished,
                watched: Vec::new(),
            },
            settings,
        }
    }

    fn source(&mut self, section: &Section) -> Option<Source> {
        let Some(at) = &section.at else {
            self.problem(
                Code::MissingSetting,
                format!("source `{}` has no path", section.name.text),
                section.name.span,
                "write `source NAME at \"/path\" { … }`",
            );
            return None;
        };
        if !at.text.starts_with('/')
            || matches!(at.text.as_str(), "/healthz" | "/readyz" | "/metrics")
        {
            self.problem(
                Code::SettingValue,
                format!("`{}` cannot be a source's path", at.text),
                at.span,
                "a path starts with `/`; /healthz, /readyz and /metrics are the server's own",
            );
            return None;
        }
        let mut transform: Option<(String, Span)> = None;
        let mut armor = crate::import::ArmorOptions::default();
        let mut auth = None;
        for setting in &section.settings {
            match setting.name.text.as_str() {
                "transform" => transform = self.one_text(setting),
                "tags" => {
                    armor.tags = self
                        .one_text(setting)
                        .map(|t| self.base.join(t.0).display().to_string())
                }
                "kibana" => armor.kibana = self.one_text(setting).map(|t| t.0),
                "auth" => match self.one_word(setting) {
                    Some((word, _)) if word == "none" => auth = Some(SourceAuth::None),
                    Some((word, span)) => self.problem(
                        Code::SettingValue,
                        format!("auth `{word}` is not built yet"),
                        span,
                        "only `auth none` is, for now",
                    ),
                    None => {}
                },
                _ => self
                    .problems
                    .push(unknown("source setting", &setting.name, SOURCE_SETTINGS)),
            }
        }
        let Some((file, span)) = transform else {
            self.problem(
                Code::MissingSetting,
                format!("source `{}` has no transform", section.name.text),
                section.name.span,
                "add `transform \"….xf\"` to its block",
            );
            return None;
        };
        let path = self.base.join(&file);
        self.watched.push(path.clone());
        // Named, so watched even when the config that would read it fails.
        self.watched.extend(armor.tags.as_ref().map(PathBuf::from));
        if (armor.tags.is_some() || armor.kibana.is_some()) && !Transform::is_armor_config(&path) {
            self.problem(
                Code::SettingValue,
                "`tags` and `kibana` are for Armor JSON configs",
                section.name.span,
                "a .xf names its own lookup and search",
            );
        }
        match Transform::from_path_or_armor(&path, &armor, self.options) {
            Ok(transform) => {
                self.watched.extend_from_slice(transform.files());
                Some(Source {
                    name: section.name.text.clone(),
                    path: at.text.clone(),
                    transform: Arc::new(transform),
                    auth: auth.unwrap_or_default(),
                })
            }
            Err(error) => {
                self.problems.push(load_problem(&file, span, &error));
                None
            }
        }
    }

    fn destination(&mut self, section: &Section) -> Option<(Destination, Option<Vec<Word>>)> {
        if let Some(at) = &section.at {
            self.problem(
                Code::SettingValue,
                "a destination has no `at`",
                at.span,
                "its address is its `uri`",
            );
        }
        // An Armor notification gives the URI, headers, events and email; settings add to it.
        let mut destination: Option<Destination> = None;
        for setting in section
            .settings
            .iter()
            .filter(|s| s.name.text == "armor_notification")
        {
            if let Some((file, span)) = self.one_text(setting) {
                let path = self.base.join(&file);
                self.watched.push(path.clone());
                match config::armor_notification(&path) {
                    Ok(mut from_armor) => {
                        from_armor.name = Arc::from(section.name.text.as_str());
                        destination = Some(from_armor);
                    }
                    Err(error) => self.problems.push(
                        Diagnostic::new(
                            Code::PipelineFile,
                            format!("`{file}` is not a usable Armor notification config"),
                            span,
                        )
                        .with_label("this file")
                        .with_note(error),
                    ),
                }
            }
        }
        let mut uri = None;
        for setting in section.settings.iter().filter(|s| s.name.text == "uri") {
            if let Some((text, span)) = self.one_text(setting) {
                match config::parse_uri(&text) {
                    Ok(parsed) => uri = Some(parsed),
                    Err(error) => {
                        self.problem(Code::SettingValue, error, span, "not an http(s) URL")
                    }
                }
            }
        }
        let mut destination = match (destination, uri) {
            (Some(mut d), Some(uri)) => {
                d.uri = uri;
                d
            }
            (Some(d), None) => d,
            (None, Some(uri)) => Destination::new(&section.name.text, uri),
            (None, None) => {
                let has_uri = section
                    .settings
                    .iter()
                    .any(|s| s.name.text == "uri" || s.name.text == "armor_notification");
                if !has_uri {
                    self.problem(
                        Code::MissingSetting,
                        format!("destination `{}` has no uri", section.name.text),
                        section.name.span,
                        "add `uri \"https://…\"` (or `armor_notification \"….json\"`) to its block",
                    );
                }
                return None;
            }
        };
        let mut from = None;
        for setting in &section.settings {
            match setting.name.text.as_str() {
                "uri" | "armor_notification" => {}
                "header" => {
                    let (Some(name), Some(value)) = (setting.values.first(), &setting.assigned)
                    else {
                        self.problem(
                            Code::SettingValue,
                            "a header is `header \"Name\" = VALUE`",
                            setting.span,
                            "VALUE: \"text\", env \"VARIABLE\" or file \"PATH\"",
                        );
                        continue;
                    };
                    let ValueKind::Text(name_text) = &name.kind else {
                        self.problem(
                            Code::SettingValue,
                            "a header's name is a string",
                            name.span,
                            "write it in quotes",
                        );
                        continue;
                    };
                    if let Some(value_text) = self.secret(value) {
                        match config::header(name_text, &value_text) {
                            Ok(header) => destination.headers.push(header),
                            Err(error) => self.problem(
                                Code::SettingValue,
                                error,
                                value.span,
                                "not valid in a header",
                            ),
                        }
                    }
                }
                "events" => {
                    let mut types = Vec::new();
                    for value in &setting.values {
                        match &value.kind {
                            ValueKind::Word(word) => match EventType::from_name(word) {
                                Some(t) => types.push(t),
                                None => self.problems.push(unknown(
                                    "event type",
                                    &Word {
                                        text: word.clone(),
                                        span: value.span,
                                    },
                                    EventType::NAMES,
                                )),
                            },
                            _ => self.problem(
                                Code::SettingValue,
                                "an event type is a word",
                                value.span,
                                EventType::NAMES.join(", ").as_str(),
                            ),
                        }
                    }
                    destination.events = Some(types);
                }
                "when" => {
                    if let Some(span) = setting.condition {
                        destination.filter = self.filter(&section.name.text, span).map(Arc::new);
                    }
                }
                "from" => {
                    let mut names = Vec::new();
                    for value in &setting.values {
                        match &value.kind {
                            ValueKind::Word(word) => names.push(Word {
                                text: word.clone(),
                                span: value.span,
                            }),
                            _ => self.problem(
                                Code::SettingValue,
                                "`from` names sources by their names",
                                value.span,
                                "a source's name, not a string",
                            ),
                        }
                    }
                    from = Some(names);
                }
                "format" => {
                    if let Some((word, span)) = self.one_word(setting) {
                        match BodyFormat::parse(&word) {
                            Some(format) => destination.format = format,
                            None => self.problem(
                                Code::SettingValue,
                                format!("`{word}` is not a body format"),
                                span,
                                "json, array, ndjson or hec",
                            ),
                        }
                    }
                }
                "timeout" => {
                    if let Some(n) = self.one_number(setting) {
                        let timeout = Duration::from_secs(n);
                        if n == 0 || timeout > MAX_TIMEOUT {
                            self.problem(
                                Code::SettingValue,
                                format!("a timeout of {n} s"),
                                setting.span,
                                "1 to 300 seconds",
                            );
                        } else {
                            destination.timeout = timeout;
                        }
                    }
                }
                "concurrency" => {
                    if let Some(n) = self.one_number(setting) {
                        destination.concurrency = (n as usize).clamp(1, 1024);
                    }
                }
                "max_attempts" => {
                    if let Some(n) = self.one_number(setting) {
                        destination.retry.max_attempts = n.clamp(1, 1_000_000) as u32;
                    }
                }
                "max_age" => {
                    if let Some(n) = self.one_number(setting) {
                        destination.retry.max_age = Duration::from_secs(n.clamp(1, MAX_AGE_LIMIT));
                    }
                }
                "batch_records" => {
                    if let Some(n) = self.one_number(setting) {
                        destination.batch.max_records = (n as usize).clamp(1, BATCH_RECORDS_LIMIT);
                    }
                }
                "batch_bytes" => {
                    if let Some(n) = self.one_number(setting) {
                        destination.batch.max_bytes = (n as usize).clamp(1, BATCH_BYTES_LIMIT);
                    }
                }
                "batch_linger" => {
                    if let Some(n) = self.one_number(setting) {
                        destination.batch.linger = Duration::from_millis(n.min(LINGER_LIMIT_MS));
                    }
                }
                "email_for_error" => {
                    if let Some((text, span)) = self.one_text(setting) {
                        if text.contains('@') {
                            destination.email_for_error = Some(text);
                        } else {
                            self.problem(
                                Code::SettingValue,
                                format!("`{text}` is not an email address"),
                                span,
                                "an address such as \"soc@example.com\"",
                            );
                        }
                    }
                }
                _ => self.problems.push(unknown(
                    "destination setting",
                    &setting.name,
                    DESTINATION_SETTINGS,
                )),
            }
        }
        Some((destination, from))
    }

    /// A destination's `when`: the condition, compiled as the transform
    /// `drop when not (CONDITION)`; its problems are shown where the condition is.
    fn filter(&mut self, destination: &str, span: Span) -> Option<Transform> {
        const PREFIX: &str = "drop when not (";
        let condition = &self.text[span.start..span.end];
        let source = format!("{PREFIX}{condition})\n");
        let name = format!("{} (destination {destination})", self.name);
        match Transform::from_source_with(&name, &source, Some(&self.base), self.options) {
            Ok(transform) => {
                self.watched.extend_from_slice(transform.files());
                Some(transform)
            }
            Err(LoadError::Invalid { diagnostics, .. }) => {
                for mut diagnostic in diagnostics {
                    let shift =
                        |at: usize| (span.start + at.saturating_sub(PREFIX.len())).min(span.end);
                    diagnostic.span =
                        Span::new(shift(diagnostic.span.start), shift(diagnostic.span.end));
                    self.problems.push(diagnostic);
                }
                None
            }
            Err(error) => {
                self.problems.push(
                    Diagnostic::new(Code::PipelineFile, "this condition does not load", span)
                        .with_note(error.render()),
                );
                None
            }
        }
    }

    /// A header value: text as written, or read from the environment or a file.
    fn secret(&mut self, value: &Value) -> Option<String> {
        match &value.kind {
            ValueKind::Text(text) => Some(text.clone()),
            ValueKind::Env(variable) => match std::env::var(variable) {
                Ok(text) => Some(text),
                Err(_) => {
                    self.problem(
                        Code::SettingValue,
                        format!("the environment has no variable `{variable}`"),
                        value.span,
                        "set it before xf starts",
                    );
                    None
                }
            },
            ValueKind::File(file) => {
                let path = self.base.join(file);
                self.watched.push(path.clone());
                match config::read_config_file(&path) {
                    Ok(text) => Some(text.lines().next().unwrap_or("").trim().to_string()),
                    Err(error) => {
                        self.problem(Code::PipelineFile, error, value.span, "the secret's file");
                        None
                    }
                }
            }
            _ => {
                self.problem(
                    Code::SettingValue,
                    "a header's value is \"text\", env \"VARIABLE\" or file \"PATH\"",
                    value.span,
                    "not one of those",
                );
                None
            }
        }
    }

    fn only(&mut self, setting: &Setting) -> Option<Value> {
        if setting.values.len() != 1 || setting.assigned.is_some() {
            self.problem(
                Code::SettingValue,
                format!("`{}` takes one value", setting.name.text),
                setting.span,
                "one value here",
            );
            return None;
        }
        setting.values.first().cloned()
    }

    fn one_text(&mut self, setting: &Setting) -> Option<(String, Span)> {
        let value = self.only(setting)?;
        match value.kind {
            ValueKind::Text(text) => Some((text, value.span)),
            _ => {
                self.problem(
                    Code::SettingValue,
                    format!("`{}` takes a string", setting.name.text),
                    value.span,
                    "write it in quotes",
                );
                None
            }
        }
    }

    fn one_word(&mut self, setting: &Setting) -> Option<(String, Span)> {
        let value = self.only(setting)?;
        match value.kind {
            ValueKind::Word(word) => Some((word, value.span)),
            _ => {
                self.problem(
                    Code::SettingValue,
                    format!("`{}` takes a word", setting.name.text),
                    value.span,
                    "without quotes",
                );
                None
            }
        }
    }

    fn one_number(&mut self, setting: &Setting) -> Option<u64> {
        let value = self.only(setting)?;
        match &value.kind {
            ValueKind::Number(text) => match text.parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    self.problem(
                        Code::SettingValue,
                        format!("`{}` takes a whole number", setting.name.text),
                        value.span,
                        "not a whole number of 0 or more",
                    );
                    None
                }
            },
            _ => {
                self.problem(
                    Code::SettingValue,
                    format!("`{}` takes a number", setting.name.text),
                    value.span,
                    "a number, without quotes",
                );
                None
            }
        }
    }
}

/// A transform named by the pipeline that does not load: its report as a note.
fn load_problem(file: &str, span: Span, error: &LoadError) -> Diagnostic {
    Diagnostic::new(
        Code::PipelineFile,
        format!("the transform `{file}` does not load"),
        span,
    )
    .with_label("this transform")
    .with_note(error.render().trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `files` (name, text) into a fresh folder.
    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    const TRANSFORM: &str = "include \"inc.xf\"\nlookup hosts from \"hosts.csv\" key host\n\
        message m = template \"m.j2\"\nvalidate \"s.json\"\n";
    const NOTIFICATION: &str = r#"{"name": "n", "properties": [{"type": "uri", "key": "endpoint", "value": "http://127.0.0.1:1/"}]}"#;
    const PIPELINE: &str = "source s at \"/in\" {\n    transform \"t.xf\"\n}\n\
        destination d {\n    armor_notification \"n.json\"\n    header \"X-Key\" = file \"key.txt\"\n}\n";

    #[test]
    fn a_pipeline_watches_every_file_it_was_read_from() {
        let dir = folder(&[
            ("p.xfp", PIPELINE),
            ("t.xf", TRANSFORM),
            ("inc.xf", "label a = 1\n"),
            ("hosts.csv", "host,site\nh1,s1\n"),
            ("m.j2", "{{ host }}"),
            ("s.json", r#"{"type": "object"}"#),
            ("n.json", NOTIFICATION),
            ("key.txt", "secret\n"),
        ]);
        let pipeline = dir.path().join("p.xfp");
        let loaded = load_watched(&pipeline, &LoadOptions::default()).unwrap();
        let mut watched: Vec<String> = loaded
            .pipeline
            .watched
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        watched.sort();
        let mut all = vec![
            "hosts.csv",
            "inc.xf",
            "key.txt",
            "m.j2",
            "n.json",
            "p.xfp",
            "s.json",
            "t.xf",
        ];
        all.sort();
        assert_eq!(watched, all);
    }

    #[test]
    fn a_refused_pipeline_watches_the_files_it_named() {
        let dir = folder(&[("p.xfp", PIPELINE), ("n.json", NOTIFICATION)]);
        let pipeline = dir.path().join("p.xfp");
        let refused = load_watched(&pipeline, &LoadOptions::default())
            .err()
            .unwrap();
        assert!(refused.problems.contains("t.xf"), "{}", refused.problems);
        let named = ["p.xfp", "t.xf", "n.json", "key.txt"].map(|name| dir.path().join(name));
        assert_eq!(refused.watched, named);
    }
}
