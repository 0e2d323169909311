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

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{self as config, Pipeline, Refused};
use crate::compile::EventType;
use crate::diagnostic::{self, Code, Diagnostic, Span};
use crate::serve::deliver::destination::{
    BodyFormat, Destination, BATCH_BYTES_LIMIT, BATCH_RECORDS_LIMIT, LINGER_LIMIT_MS,
    MAX_AGE_LIMIT, MAX_TIMEOUT,
};
use crate::serve::deliver::token::{ClientAuth, TokenSource};
use crate::serve::queue::NatsOptions;
use crate::serve::receive::auth::{self, Auth, IssuerSlot, KeyPlace, Scheme};
use crate::serve::receive::digest::Digest;
use crate::serve::receive::oauth;
use crate::serve::receive::rate::Rates;
use crate::serve::receive::source::Source;
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
    /// Networks destinations may reach although they are not public.
    pub private_destinations: Option<Vec<ipnet::IpNet>>,
    /// TLS: the certificate chain and its key (PEM), joined to the file's folder.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The key xf signs OAuth tokens with (else one made per process).
    pub oauth_key: Option<String>,
    /// Seconds a token xf issues is valid.
    pub oauth_token_lifetime: Option<u64>,
    /// `queue nats "URL"` (or `queue embedded`, the default): the URL.
    pub queue_nats: Option<String>,
    pub queue_user: Option<String>,
    pub queue_password: Option<String>,
    pub queue_token: Option<String>,
    /// A NATS `.creds` file, joined to the file's folder.
    pub queue_creds: Option<PathBuf>,
    /// The CA certificate of the NATS server's TLS, joined to the file's folder.
    pub queue_ca_file: Option<PathBuf>,
    pub queue_prefix: Option<String>,
    pub queue_replicas: Option<u64>,
    /// Seconds.
    pub queue_ack_wait: Option<u64>,
    /// Seconds.
    pub queue_duplicate_window: Option<u64>,
}

/// An address (`192.0.2.7`, a network of one) or a network (`10.0.0.0/8`).
/// The URL of an issuer's key set: https, or http to this machine alone (a
/// key set sent in the clear elsewhere could be replaced on its way, and
/// with it who may send).
pub fn jwks_url(text: &str) -> Result<reqwest::Url, String> {
    let url =
        reqwest::Url::parse(text).map_err(|error| format!("`{text}` is not a URL: {error}"))?;
    // An IPv6 address is written in brackets in a URL.
    let host = url.host_str().unwrap_or("");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback());
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err(format!(
            "`{text}`: a key set is fetched over https (http only from this machine's loopback): sent in the clear, it could be replaced on its way"
        )),
        other => Err(format!("`{text}`: a key set is fetched over https, not {other}")),
    }
}

pub fn parse_network(text: &str) -> Option<ipnet::IpNet> {
    text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

/// `queue embedded` or `queue nats "nats://host:4222"`.
fn queue(reader: &mut Reader<'_>, setting: &Setting, settings: &mut ServerSettings) {
    let kinds: Vec<&ValueKind> = setting.values.iter().map(|v| &v.kind).collect();
    match kinds.as_slice() {
        [ValueKind::Word(word)] if word == "embedded" => {}
        [ValueKind::Word(word), ValueKind::Text(url)] if word == "nats" => {
            if NatsOptions::is_url(url) {
                settings.queue_nats = Some(url.clone());
            } else {
                reader.problem(
                    Code::SettingValue,
                    "not a NATS server URL",
                    setting.values[1].span,
                    "such as \"nats://127.0.0.1:4222\" or \"tls://nats.example.com:4222\" (several: separated by commas)",
                );
            }
        }
        _ => reader.problem(
            Code::SettingValue,
            "`queue` is `embedded` (the spool folder) or `nats \"URL\"` (NATS JetStream)",
            setting.span,
            "such as queue nats \"nats://127.0.0.1:4222\"",
        ),
    }
}

/// Names on the JetStream server start with it: letters, digits, `_` and `-`.
fn queue_prefix(reader: &mut Reader<'_>, text: String, span: Span, settings: &mut ServerSettings) {
    if NatsOptions::is_prefix(&text) {
        settings.queue_prefix = Some(text);
    } else {
        reader.problem(
            Code::SettingValue,
            "a queue prefix is 1 to 32 letters, digits, `_` or `-`",
            span,
            "it starts every stream and subject name",
        );
    }
}

/// A loaded pipeline file.
pub struct Loaded {
    pub pipeline: Pipeline,
    pub settings: ServerSettings,
}

/// How a server setting's one value is read into [`ServerSettings`].
enum Server {
    /// A whole number, kept as written.
    Number(fn(&mut ServerSettings) -> &mut Option<u64>),
    /// A string, checked and kept by the function (which reports a bad one).
    Text(fn(&mut Reader<'_>, String, Span, &mut ServerSettings)),
    /// Addresses and networks, one or more.
    Networks(fn(&mut ServerSettings) -> &mut Option<Vec<ipnet::IpNet>>),
    /// A secret: env "…" or file "…".
    Secret(fn(&mut ServerSettings) -> &mut Option<String>),
    /// Read from the whole setting by the function.
    Whole(fn(&mut Reader<'_>, &Setting, &mut ServerSettings)),
}

/// The settings of a pipeline file's top level.
#[rustfmt::skip]
const SERVER_SETTINGS: &[(&str, Server)] = &[
    ("listen", Server::Text(listen)),
    ("spool", Server::Text(|reader, text, _, settings| settings.spool = Some(reader.base.join(text)))),
    ("spool_max_bytes", Server::Number(|s| &mut s.spool_max_bytes)),
    ("spool_max_records", Server::Number(|s| &mut s.spool_max_records)),
    ("max_body", Server::Number(|s| &mut s.max_body)),
    ("max_body_records", Server::Number(|s| &mut s.max_body_records)),
    ("max_connections", Server::Number(|s| &mut s.max_connections)),
    ("smtp", Server::Text(smtp)),
    ("mail_from", Server::Text(|_, text, _, settings| settings.mail_from = Some(text))),
    ("error_webhook", Server::Text(error_webhook)),
    ("notice_interval", Server::Number(|s| &mut s.notice_interval)),
    ("reload_poll", Server::Number(|s| &mut s.reload_poll)),
    ("private_destinations", Server::Networks(|s| &mut s.private_destinations)),
    ("tls_cert", Server::Text(|reader, text, _, settings| settings.tls_cert = Some(reader.base.join(text)))),
    ("tls_key", Server::Text(|reader, text, _, settings| settings.tls_key = Some(reader.base.join(text)))),
    ("oauth_key", Server::Secret(|s| &mut s.oauth_key)),
    ("oauth_token_lifetime", Server::Number(|s| &mut s.oauth_token_lifetime)),
    ("queue", Server::Whole(queue)),
    ("queue_user", Server::Text(|_, text, _, settings| settings.queue_user = Some(text))),
    ("queue_password", Server::Secret(|s| &mut s.queue_password)),
    ("queue_token", Server::Secret(|s| &mut s.queue_token)),
    ("queue_creds", Server::Text(|reader, text, _, settings| settings.queue_creds = Some(reader.base.join(text)))),
    ("queue_ca_file", Server::Text(|reader, text, _, settings| settings.queue_ca_file = Some(reader.base.join(text)))),
    ("queue_prefix", Server::Text(queue_prefix)),
    ("queue_replicas", Server::Number(|s| &mut s.queue_replicas)),
    ("queue_ack_wait", Server::Number(|s| &mut s.queue_ack_wait)),
    ("queue_duplicate_window", Server::Number(|s| &mut s.queue_duplicate_window)),
];
const SECTIONS: &[&str] = &["source", "destination"];
const SOURCE_SETTINGS: &[&str] = &[
    "transform",
    "tags",
    "kibana",
    "auth",
    "allow",
    "tolerance",
    "rate_limit",
    "client_rate_limit",
];

/// The ways a source's senders authenticate (`auth SCHEME …`).
const AUTH_SCHEMES: &[&str] = &[
    "none",
    "basic",
    "bearer",
    "api_key",
    "standard_webhooks",
    "github",
    "oauth",
    "jwt",
];
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
    "auth",
    "sign",
    "oauth_scope",
    "oauth_audience",
    "oauth_param",
    "oauth_body",
    "oauth_client_auth",
    "ca_file",
];

/// The settings a pipeline file may have at its top level (`None`: with its
/// section kinds, `source` and `destination`) or in a section of a kind, for
/// `xf lsp`'s completion.
pub fn known_settings(section: Option<&str>) -> Vec<&'static str> {
    match section {
        None => SERVER_SETTINGS
            .iter()
            .map(|(name, _)| *name)
            .chain(SECTIONS.iter().copied())
            .collect(),
        Some("source") => SOURCE_SETTINGS.to_vec(),
        Some("destination") => DESTINATION_SETTINGS.to_vec(),
        Some(_) => Vec::new(),
    }
}

/// Loads a pipeline file: every problem found, rendered rustc-style, or the pipeline.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Loaded, String> {
    load_watched(path, options).map_err(|refused| refused.problems)
}

/// [`load`], saying also which files were read (the pipeline's `watched`),
/// those of a pipeline that does not load too.
pub fn load_watched(path: &Path, options: &LoadOptions) -> Result<Loaded, Refused> {
    let shown = path.display().to_string();
    let text = config::read_config_file(path).map_err(|error| Refused {
        problems: format!("error: {error}\n"),
        watched: vec![path.to_path_buf()],
    })?;
    let (loaded, watched) = read_text(path, &text, options);
    match loaded {
        Ok(mut loaded) => {
            loaded.pipeline.watched = watched;
            Ok(loaded)
        }
        Err(problems) => Err(Refused {
            problems: diagnostic::render(&shown, &text, &problems),
            watched,
        }),
    }
}

/// A pipeline file's text, as an editor holds it (`xf lsp`), checked as
/// [`load`] checks the file at `path` (its files found beside `path`): the
/// pipeline, or every problem as a diagnostic.
pub fn load_text(
    path: &Path,
    text: &str,
    options: &LoadOptions,
) -> Result<Loaded, Vec<Diagnostic>> {
    read_text(path, text, options).0
}

/// The pipeline `text` (the file at `path`) says, or its problems; and the
/// files read as far as it got.
fn read_text(
    path: &Path,
    text: &str,
    options: &LoadOptions,
) -> (Result<Loaded, Vec<Diagnostic>>, Vec<PathBuf>) {
    let shown = path.display().to_string();
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut reader = Reader {
        text,
        name: &shown,
        base,
        options,
        problems: Vec::new(),
        watched: vec![path.to_path_buf()],
        issuer: IssuerSlot::default(),
        oauth_clients: HashMap::new(),
        oauth_allow: None,
        oauth_rate: None,
        oauth_client_sources: HashMap::new(),
        source_name: String::new(),
    };
    let declarations = match parse_pipeline(text) {
        Ok(declarations) => declarations,
        Err(problems) => return (Err(problems), reader.watched),
    };
    let loaded = reader.read(&declarations);
    if reader.problems.is_empty() {
        (Ok(loaded), reader.watched)
    } else {
        (Err(reader.problems), reader.watched)
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
    /// The token issuer its `auth oauth` sources will check with, made once
    /// every source's clients are known.
    issuer: IssuerSlot,
    oauth_clients: HashMap<String, Vec<Digest>>,
    /// Who may ask the token endpoint: the union of the OAuth sources'
    /// `allow` lists (`None`: anyone, once a source allows anyone), and the
    /// strictest of their `client_rate_limit`s.
    oauth_allow: Option<Option<Vec<ipnet::IpNet>>>,
    oauth_rate: Option<std::num::NonZeroU32>,
    /// The source each OAuth client id belongs to, and the source being read.
    oauth_client_sources: HashMap<String, String>,
    source_name: String,
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
                    self.server_setting(setting, &mut seen, &mut settings)
                }
                Declaration::Section(section) => match section.kind.text.as_str() {
                    "source" => {
                        if source_names.iter().any(|w| w.text == section.name.text) {
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
        let key = settings.oauth_key.as_ref().map(String::as_bytes);
        let lifetime = settings
            .oauth_token_lifetime
            .map_or(oauth::DEFAULT_TOKEN_LIFETIME, |s| {
                Duration::from_secs(s.clamp(1, 86_400))
            });
        let issuer = oauth::Issuer::new(key, lifetime, std::mem::take(&mut self.oauth_clients))
            .guarded_by(self.oauth_allow.take().flatten(), self.oauth_rate);
        let issuer = Arc::new(issuer);
        let _ = self.issuer.set(Arc::clone(&issuer));
        Loaded {
            pipeline: Pipeline {
                sources,
                destinations: finished,
                watched: Vec::new(),
                issuer,
            },
            settings,
        }
    }

    /// A setting at the top level: a server setting, set once.
    fn server_setting<'d>(
        &mut self,
        setting: &'d Setting,
        seen: &mut Vec<&'d str>,
        settings: &mut ServerSettings,
    ) {
        let name = setting.name.text.as_str();
        let Some((_, server)) = SERVER_SETTINGS.iter().find(|(known, _)| *known == name) else {
            let problem = if SECTIONS.contains(&name) {
                Diagnostic::new(
                    Code::Syntax,
                    format!("a {name} is a block: `{name} NAME {{ … }}`"),
                    setting.span,
                )
                .with_label("no block follows")
            } else {
                let known: Vec<&str> = SERVER_SETTINGS.iter().map(|(known, _)| *known).collect();
                unknown("setting", &setting.name, &known)
            };
            self.problems.push(problem);
            return;
        };
        if seen.contains(&name) {
            self.problem(
                Code::Duplicate,
                format!("`{name}` is set twice"),
                setting.name.span,
                "set again here",
            );
            return;
        }
        seen.push(name);
        match server {
            Server::Number(field) => {
                *field(settings) = self.one(setting, as_number).map(|(n, _)| n)
            }
            Server::Text(keep) => {
                if let Some((text, span)) = self.one(setting, as_text) {
                    keep(self, text, span, settings);
                }
            }
            Server::Networks(field) => *field(settings) = Some(self.networks(setting)),
            Server::Whole(read) => read(self, setting, settings),
            Server::Secret(field) => {
                if let Some(value) = self.only(setting) {
                    let secret = self.auth_secret(&value);
                    // An HS256 key guessed from one token would mint tokens for any client.
                    if secret.as_ref().is_some_and(|s| s.len() < 32) && name == "oauth_key" {
                        self.problem(
                            Code::SettingValue,
                            "`oauth_key` is at least 32 bytes",
                            value.span,
                            "too short to sign tokens with",
                        );
                    }
                    *field(settings) = secret;
                }
            }
        }
    }

    /// A setting's addresses and networks (`"10.0.0.0/8", "192.0.2.7"`).
    fn networks(&mut self, setting: &Setting) -> Vec<ipnet::IpNet> {
        let mut networks = Vec::new();
        if setting.values.is_empty() || setting.assigned.is_some() {
            self.problem(
                Code::SettingValue,
                format!("`{}` takes addresses or networks", setting.name.text),
                setting.span,
                "such as \"10.0.0.0/8\", \"192.0.2.7\"",
            );
        }
        for value in &setting.values {
            let parsed = match &value.kind {
                ValueKind::Text(text) => parse_network(text),
                _ => None,
            };
            match parsed {
                Some(network) => networks.push(network),
                None => self.problem(
                    Code::SettingValue,
                    "not an address or a network",
                    value.span,
                    "an address (\"192.0.2.7\", \"2001:db8::1\") or a network (\"10.0.0.0/8\")",
                ),
            }
        }
        networks
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
            || matches!(
                at.text.as_str(),
                "/healthz" | "/readyz" | "/metrics" | "/oauth/token"
            )
        {
            self.problem(
                Code::SettingValue,
                format!("`{}` cannot be a source's path", at.text),
                at.span,
                "a path starts with `/`; /healthz, /readyz, /metrics and /oauth/token are the server's own",
            );
            return None;
        }
        let mut transform: Option<(String, Span)> = None;
        let mut armor = crate::import::ArmorOptions::default();
        self.source_name = section.name.text.clone();
        let mut auth = Vec::new();
        let mut allow = Vec::new();
        let mut tolerance = None;
        let (mut source_rate, mut client_rate) = (None, None);
        for setting in &section.settings {
            match setting.name.text.as_str() {
                "transform" => transform = self.one(setting, as_text),
                "tags" => {
                    armor.tags = self
                        .one(setting, as_text)
                        .map(|t| self.base.join(t.0).display().to_string())
                }
                "kibana" => armor.kibana = self.one(setting, as_text).map(|t| t.0),
                "auth" => auth.push(setting),
                "allow" => allow.push(setting),
                "tolerance" => tolerance = self.one(setting, as_number),
                "rate_limit" => source_rate = self.rate(setting),
                "client_rate_limit" => client_rate = self.rate(setting),
                _ => self
                    .problems
                    .push(unknown("source setting", &setting.name, SOURCE_SETTINGS)),
            }
        }
        let auth = self.source_auth(section, &auth, &allow, tolerance);
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
                    auth: {
                        let auth = auth?;
                        if matches!(auth.scheme, Scheme::OAuth { .. }) {
                            self.oauth_guard(&auth.allow, client_rate);
                        }
                        Arc::new(auth.with_window_of(&at.text))
                    },
                    rates: Arc::new(Rates::new(source_rate, client_rate)),
                    counters: std::sync::OnceLock::new(),
                    fields_seen: std::sync::OnceLock::new(),
                })
            }
            Err(error) => {
                self.problems.push(load_problem(&file, span, &error));
                None
            }
        }
    }

    /// A source's `auth` lines (one scheme, each line one more valid secret),
    /// `allow` lines and `tolerance`. A source must say how its senders
    /// authenticate, if only `auth none`.
    fn source_auth(
        &mut self,
        section: &Section,
        lines: &[&Setting],
        allow: &[&Setting],
        tolerance: Option<(u64, Span)>,
    ) -> Option<Auth> {
        let mut networks = Vec::new();
        for setting in allow {
            networks.extend(self.networks(setting));
        }
        let Some(first) = lines.first() else {
            self.problem(
                Code::MissingSetting,
                format!("source `{}` does not say who may send", section.name.text),
                section.name.span,
                "add `auth …` to its block, or `auth none` to take webhooks from anyone who can reach it",
            );
            return None;
        };
        let scheme_of = |setting: &Setting| match setting.values.first().map(|v| &v.kind) {
            Some(ValueKind::Word(word)) => Some(word.clone()),
            _ => None,
        };
        let Some(scheme) = scheme_of(first) else {
            self.problem(
                Code::SettingValue,
                "`auth` begins with its scheme",
                first.span,
                "auth none, basic, bearer, api_key, standard_webhooks, github, oauth or jwt",
            );
            return None;
        };
        if !AUTH_SCHEMES.contains(&scheme.as_str()) {
            let word = Word {
                text: scheme,
                span: first.values[0].span,
            };
            self.problems
                .push(unknown("auth scheme", &word, AUTH_SCHEMES));
            return None;
        }
        let mut secrets = Vec::new();
        let mut place: Option<KeyPlace> = None;
        let mut ok = true;
        for line in lines {
            if scheme_of(line).as_deref() != Some(scheme.as_str()) {
                self.problem(
                    Code::SettingValue,
                    "a source authenticates its senders one way",
                    line.span,
                    &format!("this source's first `auth` is {scheme}"),
                );
                ok = false;
                continue;
            }
            match self.auth_line(&scheme, line, &mut place) {
                Some(Some(secret)) => secrets.push(secret),
                Some(None) => {}
                None => ok = false,
            }
        }
        if let Some((_, span)) = tolerance {
            if scheme != "standard_webhooks" {
                self.problem(
                    Code::SettingValue,
                    "`tolerance` is for `auth standard_webhooks`",
                    span,
                    "its messages carry a timestamp; others do not",
                );
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        let digests = || Digest::of_each(&secrets);
        let scheme = match scheme.as_str() {
            "none" => Scheme::None,
            "oauth" => Scheme::OAuth {
                clients: secrets.clone(),
                issuer: Arc::clone(&self.issuer),
            },
            "jwt" => {
                if lines.len() > 1 {
                    self.problem(
                        Code::SettingValue,
                        "a source checks tokens of one issuer",
                        lines[1].span,
                        "one `auth jwt` line",
                    );
                    return None;
                }
                Scheme::Jwt(Box::new(self.jwt_line(first)?))
            }
            "basic" => Scheme::Basic(digests()),
            "bearer" => Scheme::Bearer(digests()),
            "api_key" => Scheme::ApiKey {
                place: place?,
                keys: digests(),
            },
            "github" => Scheme::GitHub(auth::github_keys(&secrets)),
            _ => {
                let mut keys = Vec::new();
                for (secret, line) in secrets.iter().zip(lines) {
                    match auth::standard_webhooks_key(secret) {
                        Ok(key) => keys.push(key),
                        Err(reason) => {
                            let span = line.assigned.as_ref().map_or(line.span, |v| v.span);
                            self.problem(Code::SettingValue, reason, span, "this secret");
                            return None;
                        }
                    }
                }
                let tolerance = tolerance.map_or(auth::DEFAULT_TOLERANCE, |(seconds, _)| {
                    Duration::from_secs(seconds.clamp(1, 86_400))
                });
                Scheme::StandardWebhooks { keys, tolerance }
            }
        };
        Some(Auth::new(networks, scheme))
    }

    /// One `auth SCHEME …` line: its secret (`user:password` for Basic), or
    /// `Some(None)` for `auth none`; `None` after a problem.
    fn auth_line(
        &mut self,
        scheme: &str,
        line: &Setting,
        place: &mut Option<KeyPlace>,
    ) -> Option<Option<String>> {
        let values = &line.values[1..];
        let (words, usage): (usize, &str) = match scheme {
            "none" => (0, "auth none"),
            "basic" => (1, "auth basic \"USER\" = env \"VARIABLE\""),
            "api_key" => (
                2,
                "auth api_key header \"X-Api-Key\" = env \"VARIABLE\" (or query \"api_key\")",
            ),
            "oauth" => (2, "auth oauth client \"CLIENT_ID\" = env \"CLIENT_SECRET\""),
            "jwt" => (
                6,
                "auth jwt jwks \"keys.json\" issuer \"https://…\" audience \"…\" (or jwks_uri \"https://…\")",
            ),
            _ => (0, "auth SCHEME = env \"VARIABLE\" (or file \"PATH\")"),
        };
        let wants_secret = scheme != "none" && scheme != "jwt";
        if values.len() != words || line.assigned.is_some() != wants_secret {
            self.problem(
                Code::SettingValue,
                format!("`auth {scheme}` is written `{usage}`"),
                line.span,
                "not in this form",
            );
            return None;
        }
        if !wants_secret {
            return Some(None);
        }
        let secret = self.auth_secret(line.assigned.as_ref()?)?;
        match scheme {
            "basic" => {
                let ValueKind::Text(user) = &values[0].kind else {
                    self.problem(
                        Code::SettingValue,
                        "the user name is a string",
                        values[0].span,
                        "write it in quotes",
                    );
                    return None;
                };
                if user.contains(':') {
                    self.problem(
                        Code::SettingValue,
                        "a Basic user name has no `:`",
                        values[0].span,
                        "RFC 7617 splits at the first `:`",
                    );
                    return None;
                }
                Some(Some(format!("{user}:{secret}")))
            }
            "oauth" => {
                let client = match (&values[0].kind, &values[1].kind) {
                    (ValueKind::Word(word), ValueKind::Text(client))
                        if word == "client" && !client.is_empty() =>
                    {
                        client.clone()
                    }
                    _ => {
                        self.problem(
                            Code::SettingValue,
                            format!("`auth oauth` is written `{usage}`"),
                            line.span,
                            "client, then its id in quotes",
                        );
                        return None;
                    }
                };
                // A client's tokens are good on its source only: one source per client id.
                let source = self.source_name.clone();
                match self.oauth_client_sources.get(&client) {
                    Some(other) if *other != source => {
                        self.problem(
                            Code::Duplicate,
                            format!("client `{client}` already sends to source `{other}`"),
                            values[1].span,
                            "one source per client id: give this one its own",
                        );
                        return None;
                    }
                    _ => {
                        self.oauth_client_sources.insert(client.clone(), source);
                    }
                }
                self.oauth_clients
                    .entry(client.clone())
                    .or_default()
                    .push(Digest::of(secret.as_bytes()));
                // The source keeps the client's id; the secret is the issuer's.
                Some(Some(client))
            }
            "api_key" => {
                let here = match (&values[0].kind, &values[1].kind) {
                    (ValueKind::Word(word), ValueKind::Text(name)) if word == "header" => {
                        match reqwest::header::HeaderName::from_bytes(name.as_bytes()) {
                            Ok(header) => KeyPlace::Header(header),
                            Err(_) => {
                                self.problem(
                                    Code::SettingValue,
                                    format!("`{name}` is not a header name"),
                                    values[1].span,
                                    "a header name",
                                );
                                return None;
                            }
                        }
                    }
                    (ValueKind::Word(word), ValueKind::Text(name)) if word == "query" => {
                        KeyPlace::Query(name.clone())
                    }
                    _ => {
                        self.problem(
                            Code::SettingValue,
                            format!("`auth api_key` is written `{usage}`"),
                            line.span,
                            "header or query, then its name in quotes",
                        );
                        return None;
                    }
                };
                if place.as_ref().is_some_and(|known| *known != here) {
                    self.problem(
                        Code::SettingValue,
                        "every key of a source comes in one place",
                        values[1].span,
                        "the first `auth api_key` names another",
                    );
                    return None;
                }
                *place = Some(here);
                Some(Some(secret))
            }
            _ => Some(Some(secret)),
        }
    }

    /// Takes an OAuth source's `allow` and `client_rate_limit` into the token endpoint's.
    fn oauth_guard(&mut self, allow: &[ipnet::IpNet], rate: Option<std::num::NonZeroU32>) {
        self.oauth_allow = Some(match (self.oauth_allow.take(), allow.is_empty()) {
            (_, true) | (Some(None), _) => None,
            (None, false) => Some(allow.to_vec()),
            (Some(Some(mut known)), false) => {
                known.extend_from_slice(allow);
                Some(known)
            }
        });
        if let Some(rate) = rate {
            self.oauth_rate = Some(self.oauth_rate.map_or(rate, |known| known.min(rate)));
        }
    }

    /// A rate limit: requests per second, 1 to 1,000,000.
    fn rate(&mut self, setting: &Setting) -> Option<std::num::NonZeroU32> {
        let (n, span) = self.one(setting, as_number)?;
        let rate = u32::try_from(n).ok().and_then(std::num::NonZeroU32::new);
        match rate {
            Some(rate) if n <= 1_000_000 => Some(rate),
            _ => {
                self.problem(
                    Code::SettingValue,
                    format!(
                        "`{}` is requests per second, 1 to 1000000",
                        setting.name.text
                    ),
                    span,
                    "out of range",
                );
                None
            }
        }
    }

    /// A destination's `auth` line: the credential it sends, as a header
    /// (Basic, Bearer, an API key) or in the query (an API key).
    fn destination_auth(&mut self, setting: &Setting, destination: &mut Destination) {
        let scheme = match setting.values.first().map(|v| &v.kind) {
            Some(ValueKind::Word(word)) => word.clone(),
            _ => {
                self.problem(
                    Code::SettingValue,
                    "`auth` begins with its scheme",
                    setting.span,
                    "auth basic, bearer or api_key",
                );
                return;
            }
        };
        if !["basic", "bearer", "api_key"].contains(&scheme.as_str()) {
            let word = Word {
                text: scheme,
                span: setting.values[0].span,
            };
            self.problems.push(unknown(
                "destination auth scheme",
                &word,
                &["basic", "bearer", "api_key", "oauth"],
            ));
            return;
        }
        let mut place = None;
        let Some(Some(secret)) = self.auth_line(&scheme, setting, &mut place) else {
            return;
        };
        use base64::Engine as _;
        let (name, value) = match (scheme.as_str(), place) {
            ("basic", _) => (
                reqwest::header::AUTHORIZATION,
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(&secret)
                ),
            ),
            ("bearer", _) => (reqwest::header::AUTHORIZATION, format!("Bearer {secret}")),
            (_, Some(KeyPlace::Header(name))) => (name, secret),
            (_, Some(KeyPlace::Query(name))) => {
                destination
                    .uri
                    .query_pairs_mut()
                    .append_pair(&name, &secret);
                return;
            }
            _ => return,
        };
        match reqwest::header::HeaderValue::from_str(&value) {
            Ok(mut value) => {
                value.set_sensitive(true);
                destination.headers.push((name, value));
            }
            Err(_) => self.problem(
                Code::SettingValue,
                "this secret cannot be sent in a header",
                setting.span,
                "a header value is visible ASCII",
            ),
        }
    }

    /// `auth jwt jwks "FILE" issuer "ISSUER" audience "AUDIENCE"`: the JWKS
    /// file read (and watched) now; or `jwks_uri "URL"` for the issuer's key
    /// set fetched when a token needs it (see `receive::jwks`).
    fn jwt_line(&mut self, line: &Setting) -> Option<oauth::Jwks> {
        let words: Vec<(&str, &Value)> = line.values[1..]
            .chunks(2)
            .filter_map(|pair| match pair {
                [Value {
                    kind: ValueKind::Word(word),
                    ..
                }, value] => Some((word.as_str(), value)),
                _ => None,
            })
            .collect();
        let text = |name: &str| {
            words
                .iter()
                .find(|(word, _)| *word == name)
                .and_then(|(_, value)| match &value.kind {
                    ValueKind::Text(text) => Some((text.clone(), value.span)),
                    _ => None,
                })
        };
        let keys = match (text("jwks"), text("jwks_uri")) {
            (Some(file), None) => Some((file, false)),
            (None, Some(url)) => Some((url, true)),
            _ => None,
        };
        let (Some(((place, span), from_url)), Some((issuer, _)), Some((audience, _)), 3) =
            (keys, text("issuer"), text("audience"), words.len())
        else {
            self.problem(
                Code::SettingValue,
                "`auth jwt` is written `auth jwt jwks \"keys.json\" issuer \"https://…\" audience \"…\"`, or with `jwks_uri \"https://…/jwks.json\"` for the issuer's published key set",
                line.span,
                "not in this form",
            );
            return None;
        };
        if from_url {
            return match jwks_url(&place) {
                Ok(url) => Some(oauth::Jwks::remote(url, issuer, audience)),
                Err(reason) => {
                    self.problem(Code::SettingValue, reason, span, "this key set URL");
                    None
                }
            };
        }
        let file = place;
        let path = self.base.join(&file);
        self.watched.push(path.clone());
        let document = match config::read_config_file(&path) {
            Ok(document) => document,
            Err(error) => {
                self.problem(Code::PipelineFile, error, span, "the JWKS file");
                return None;
            }
        };
        match oauth::Jwks::new(&document, issuer, audience) {
            Ok(jwks) => Some(jwks),
            Err(reason) => {
                self.problem(Code::SettingValue, reason, span, "this JWKS file");
                None
            }
        }
    }

    /// A secret of a source's `auth`: from the environment or a file, never
    /// written in the pipeline file itself (which is read, copied and kept in
    /// version control).
    fn auth_secret(&mut self, value: &Value) -> Option<String> {
        if let ValueKind::Text(_) = value.kind {
            self.problem(
                Code::SettingValue,
                "a secret comes from the environment or a file, not the pipeline file",
                value.span,
                "write env \"VARIABLE\" or file \"PATH\"",
            );
            return None;
        }
        let secret = self.secret(value)?;
        if secret.is_empty() {
            self.problem(
                Code::SettingValue,
                "this secret is empty",
                value.span,
                "an empty secret would let anyone in",
            );
            return None;
        }
        Some(secret)
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
            if let Some((file, span)) = self.one(setting, as_text) {
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
            if let Some((text, span)) = self.one(setting, as_text) {
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
        let mut tokens: Option<TokenSource> = None;
        let mut oauth_settings = Vec::new();
        for setting in &section.settings {
            match setting.name.text.as_str() {
                "uri" | "armor_notification" => {}
                "auth" if matches!(setting.values.first().map(|v| &v.kind), Some(ValueKind::Word(w)) if w == "oauth") =>
                {
                    tokens = self.destination_oauth(setting);
                }
                "auth" => self.destination_auth(setting, &mut destination),
                "ca_file" => {
                    if let Some((file, span)) = self.one(setting, as_text) {
                        let path = self.base.join(&file);
                        self.watched.push(path.clone());
                        let certificates = config::read_config_file(&path).and_then(|pem| {
                            reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                                .map_err(|_| format!("{file} holds no PEM certificate xf can read"))
                        });
                        match certificates {
                            Ok(certificates) if !certificates.is_empty() => {
                                destination.ca_certificates = certificates;
                            }
                            Ok(_) => self.problem(
                                Code::SettingValue,
                                format!("{file} holds no certificate"),
                                span,
                                "a PEM file",
                            ),
                            Err(error) => {
                                self.problem(Code::PipelineFile, error, span, "the CA file")
                            }
                        }
                    }
                }
                name if name.starts_with("oauth_") => oauth_settings.push(setting),
                "sign" => {
                    let scheme = setting.values.first().map(|v| &v.kind);
                    let (Some(ValueKind::Word(word)), 1, Some(value)) =
                        (scheme, setting.values.len(), &setting.assigned)
                    else {
                        self.problem(
                            Code::SettingValue,
                            "`sign` is written `sign standard_webhooks = env \"VARIABLE\"`",
                            setting.span,
                            "not in this form",
                        );
                        continue;
                    };
                    if word != "standard_webhooks" {
                        self.problem(
                            Code::SettingValue,
                            format!("xf signs with standard_webhooks, not `{word}`"),
                            setting.values[0].span,
                            "standard_webhooks",
                        );
                        continue;
                    }
                    if let Some(secret) = self.auth_secret(value) {
                        match auth::standard_webhooks_key(&secret) {
                            Ok(key) => destination.signing.push(key),
                            Err(reason) => {
                                self.problem(Code::SettingValue, reason, value.span, "this secret")
                            }
                        }
                    }
                }
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
                    if let Some((word, span)) = self.one(setting, as_word) {
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
                    if let Some((n, _)) = self.one(setting, as_number) {
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
                    if let Some((n, _)) = self.one(setting, as_number) {
                        destination.concurrency = (n as usize).clamp(1, 1024);
                    }
                }
                "max_attempts" => {
                    if let Some((n, _)) = self.one(setting, as_number) {
                        destination.retry.max_attempts = n.clamp(1, 1_000_000) as u32;
                    }
                }
                "max_age" => {
                    if let Some((n, _)) = self.one(setting, as_number) {
                        destination.retry.max_age = Duration::from_secs(n.clamp(1, MAX_AGE_LIMIT));
                    }
                }
                "batch_records" => {
                    if let Some((n, _)) = self.one(setting, as_number) {
                        destination.batch.max_records = (n as usize).clamp(1, BATCH_RECORDS_LIMIT);
                    }
                }
                "batch_bytes" => {
                    if let Some((n, _)) = self.one(setting, as_number) {
                        destination.batch.max_bytes = (n as usize).clamp(1, BATCH_BYTES_LIMIT);
                    }
                }
                "batch_linger" => {
                    if let Some((n, _)) = self.one(setting, as_number) {
                        destination.batch.linger = Duration::from_millis(n.min(LINGER_LIMIT_MS));
                    }
                }
                "email_for_error" => {
                    if let Some((text, span)) = self.one(setting, as_text) {
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
        if let Some(mut tokens) = tokens {
            for setting in oauth_settings {
                self.oauth_setting(setting, &mut tokens);
            }
            destination.oauth = Some(Arc::new(tokens));
        } else if let Some(setting) = oauth_settings.first() {
            self.problem(
                Code::SettingValue,
                format!("`{}` is for `auth oauth`", setting.name.text),
                setting.span,
                "this destination has no `auth oauth token_url \"…\" client \"…\" = …`",
            );
        }
        Some((destination, from))
    }

    /// `auth oauth token_url "URL" client "ID" = env "SECRET"`: client
    /// credentials, the token fetched from URL.
    fn destination_oauth(&mut self, line: &Setting) -> Option<TokenSource> {
        const USAGE: &str =
            "auth oauth token_url \"https://…\" client \"CLIENT_ID\" = env \"CLIENT_SECRET\"";
        let form = match &line.values[1..] {
            [Value {
                kind: ValueKind::Word(a),
                ..
            }, url @ Value {
                kind: ValueKind::Text(_),
                ..
            }, Value {
                kind: ValueKind::Word(b),
                ..
            }, Value {
                kind: ValueKind::Text(client),
                ..
            }] if a == "token_url" && b == "client" => Some((url, client.clone())),
            _ => None,
        };
        let (Some((url, client)), Some(secret)) = (form, line.assigned.as_ref()) else {
            self.problem(
                Code::SettingValue,
                format!("`auth oauth` is written `{USAGE}`"),
                line.span,
                "not in this form",
            );
            return None;
        };
        let ValueKind::Text(url_text) = &url.kind else {
            return None;
        };
        let token_url = match config::parse_uri(url_text) {
            Ok(token_url) => token_url,
            Err(error) => {
                self.problem(Code::SettingValue, error, url.span, "the token endpoint");
                return None;
            }
        };
        let secret = self.auth_secret(secret)?;
        Some(TokenSource::new(token_url, client, secret))
    }

    /// `oauth_scope`, `oauth_audience`, `oauth_param "NAME" = "VALUE"`,
    /// `oauth_body form|json`, `oauth_client_auth basic|body`.
    fn oauth_setting(&mut self, setting: &Setting, tokens: &mut TokenSource) {
        match setting.name.text.as_str() {
            "oauth_scope" => {
                if let Some((scope, _)) = self.one(setting, as_text) {
                    tokens.params.push(("scope".into(), scope));
                }
            }
            "oauth_audience" => {
                if let Some((audience, _)) = self.one(setting, as_text) {
                    tokens.params.push(("audience".into(), audience));
                }
            }
            "oauth_param" => match (&setting.values[..], &setting.assigned) {
                (
                    [Value {
                        kind: ValueKind::Text(name),
                        ..
                    }],
                    Some(value),
                ) => {
                    if let Some(value) = self.secret(value) {
                        tokens.params.push((name.clone(), value));
                    }
                }
                _ => self.problem(
                    Code::SettingValue,
                    "`oauth_param` is written `oauth_param \"NAME\" = \"VALUE\"`",
                    setting.span,
                    "not in this form",
                ),
            },
            "oauth_body" => match self.one(setting, as_word) {
                Some((word, _)) if word == "json" => tokens.json = true,
                Some((word, _)) if word == "form" => tokens.json = false,
                Some((_, span)) => self.problem(
                    Code::SettingValue,
                    "`oauth_body` is form or json",
                    span,
                    "form or json",
                ),
                None => {}
            },
            "oauth_client_auth" => match self.one(setting, as_word) {
                Some((word, _)) if word == "basic" => tokens.client_auth = ClientAuth::Basic,
                Some((word, _)) if word == "body" => tokens.client_auth = ClientAuth::Body,
                Some((_, span)) => self.problem(
                    Code::SettingValue,
                    "`oauth_client_auth` is basic or body",
                    span,
                    "basic or body",
                ),
                None => {}
            },
            _ => self.problems.push(unknown(
                "destination setting",
                &setting.name,
                DESTINATION_SETTINGS,
            )),
        }
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

    /// A setting's one value, read by `read`; else a problem under it
    /// saying what the setting takes.
    fn one<T>(
        &mut self,
        setting: &Setting,
        read: fn(&ValueKind) -> Result<T, Takes>,
    ) -> Option<(T, Span)> {
        let value = self.only(setting)?;
        match read(&value.kind) {
            Ok(read) => Some((read, value.span)),
            Err(takes) => {
                self.problem(
                    Code::SettingValue,
                    format!("`{}` takes {}", setting.name.text, takes.what),
                    value.span,
                    takes.label,
                );
                None
            }
        }
    }
}

/// What a setting takes, for the problem with a value that is not that.
struct Takes {
    what: &'static str,
    /// Under the value.
    label: &'static str,
}

fn as_text(kind: &ValueKind) -> Result<String, Takes> {
    match kind {
        ValueKind::Text(text) => Ok(text.clone()),
        _ => Err(Takes {
            what: "a string",
            label: "write it in quotes",
        }),
    }
}

fn as_word(kind: &ValueKind) -> Result<String, Takes> {
    match kind {
        ValueKind::Word(word) => Ok(word.clone()),
        _ => Err(Takes {
            what: "a word",
            label: "without quotes",
        }),
    }
}

fn as_number(kind: &ValueKind) -> Result<u64, Takes> {
    match kind {
        ValueKind::Number(text) => text.parse::<u64>().map_err(|_| Takes {
            what: "a whole number",
            label: "not a whole number of 0 or more",
        }),
        _ => Err(Takes {
            what: "a number",
            label: "a number, without quotes",
        }),
    }
}

fn listen(reader: &mut Reader<'_>, text: String, span: Span, settings: &mut ServerSettings) {
    match text.parse::<SocketAddr>() {
        Ok(address) => settings.listen = Some(address),
        Err(_) => reader.problem(
            Code::SettingValue,
            format!("`{text}` is not an address and port"),
            span,
            "such as \"127.0.0.1:8080\" or \"[::]:443\"",
        ),
    }
}

fn smtp(reader: &mut Reader<'_>, text: String, span: Span, settings: &mut ServerSettings) {
    match text
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse().ok()?)))
    {
        Some(relay) => settings.smtp = Some(relay),
        None => reader.problem(
            Code::SettingValue,
            format!("`{text}` is not HOST:PORT"),
            span,
            "an SMTP relay, such as \"localhost:25\"",
        ),
    }
}

fn error_webhook(reader: &mut Reader<'_>, text: String, span: Span, settings: &mut ServerSettings) {
    match config::parse_uri(&text) {
        Ok(uri) => settings.error_webhook = Some(uri),
        Err(error) => reader.problem(Code::SettingValue, error, span, "not an http(s) URL"),
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

    /// A destination's `auth` becomes what it sends: a header (Basic, an API
    /// key), marked sensitive, or a query parameter.
    #[test]
    fn destination_credentials_become_headers_or_the_query() {
        let dir = folder(&[
            (
                "p.xfp",
                "source s at \"/in\" {\n    transform \"t.xf\"\n    auth none\n}\n\
                 destination a {\n    uri \"https://a.example/\"\n    auth basic \"xf\" = file \"pw\"\n}\n\
                 destination b {\n    uri \"https://b.example/in?x=1\"\n    auth api_key query \"api_key\" = file \"pw\"\n}\n\
                 destination c {\n    uri \"https://c.example/\"\n    auth api_key header \"X-Key\" = file \"pw\"\n}\n",
            ),
            ("t.xf", "label a = 1\n"),
            ("pw", "p4ss word\n"),
        ]);
        let loaded = load(&dir.path().join("p.xfp"), &LoadOptions::default()).unwrap();
        let [a, b, c] = &loaded.pipeline.destinations[..] else {
            panic!("three destinations");
        };
        use base64::Engine as _;
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("xf:p4ss word")
        );
        assert_eq!(a.headers[0].0, reqwest::header::AUTHORIZATION);
        assert_eq!(a.headers[0].1, basic.as_str());
        assert!(a.headers[0].1.is_sensitive());
        assert_eq!(b.uri.query(), Some("x=1&api_key=p4ss+word"));
        assert!(b.headers.is_empty());
        assert_eq!(c.headers[0].0.as_str(), "x-key");
        assert_eq!(c.headers[0].1, "p4ss word");
    }

    const TRANSFORM: &str = "include \"inc.xf\"\nlookup hosts from \"hosts.csv\" key host\n\
        message m = template \"m.j2\"\nvalidate \"s.json\"\n";
    const NOTIFICATION: &str = r#"{"name": "n", "properties": [{"type": "uri", "key": "endpoint", "value": "http://127.0.0.1:1/"}]}"#;
    const PIPELINE: &str = "source s at \"/in\" {\n    transform \"t.xf\"\n    auth none\n}\n\
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
    fn a_value_of_the_wrong_kind_says_what_the_setting_takes() {
        let dir = folder(&[
            (
                "p.xfp",
                "listen 8080\nmax_body 1.5\nspool \"a\", \"b\"\n\
                 source s at \"/in\" {\n    transform \"t.xf\"\n    auth \"none\"\n}\n",
            ),
            ("t.xf", "label a = 1\n"),
        ]);
        let problems = load(&dir.path().join("p.xfp"), &LoadOptions::default())
            .err()
            .unwrap();
        for (message, label) in [
            ("`listen` takes a string", "write it in quotes"),
            (
                "`max_body` takes a whole number",
                "not a whole number of 0 or more",
            ),
            ("`spool` takes one value", "one value here"),
            ("`auth` begins with its scheme", "auth none, basic, bearer"),
        ] {
            assert!(
                problems.contains(&format!("error[E0802]: {message}")),
                "{problems}"
            );
            assert!(problems.contains(label), "{problems}");
        }
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
