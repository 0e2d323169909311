//! What several subcommands share: where a transform's files may come
//! from, its per-record limits, Armor's options, loading a transform, the
//! `request` of a run outside a server, and printing an answer on standard
//! output. `cli`, `serve_cli` and `playground` use it, and it uses none of them.

use std::io::{self, Write};
use std::path::PathBuf;

use xf::{Limits, LoadOptions, Transform};

/// Where a transform's files (includes, lookups, templates, schemas) may come from.
#[derive(clap::Args)]
pub(crate) struct FileArgs {
    /// Also read a transform's files from DIR and below (repeatable); by default only its own folder and below
    #[arg(long = "allow-dir", value_name = "DIR")]
    allow_dirs: Vec<PathBuf>,
}

impl FileArgs {
    pub(crate) fn options(&self, limits: Limits) -> LoadOptions {
        LoadOptions {
            allowed_roots: self.allow_dirs.clone(),
            limits,
            files: None,
        }
    }
}

/// Per-record limits: a record that reaches one is a record error.
#[derive(clap::Args)]
pub(crate) struct LimitArgs {
    /// Work one template rendering may do (minijinja fuel: about one unit per instruction, plus bytes allocated)
    #[arg(long, value_name = "UNITS", default_value_t = Limits::DEFAULT.template_fuel)]
    template_fuel: u64,
    /// The most text one template rendering may write, in bytes
    #[arg(long, value_name = "BYTES", default_value_t = Limits::DEFAULT.template_output)]
    template_output: usize,
    /// The most statements run for one record (each pass of a `for` body counts)
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.statements)]
    max_statements: u64,
    /// The most time one record's work may take, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = Limits::DEFAULT.record_millis)]
    record_time: u64,
    /// The most memory the values one record's statements build may take (each copy counts), in MiB
    #[arg(long, value_name = "MIB", default_value_t = Limits::DEFAULT.built_bytes >> 20)]
    max_built_size: u64,
    /// The most records one record may become through `fan_out`
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.outputs)]
    max_outputs: u64,
}

impl LimitArgs {
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            template_fuel: self.template_fuel,
            template_output: self.template_output,
            statements: self.max_statements,
            record_millis: self.record_time,
            built_bytes: self.max_built_size.saturating_mul(1 << 20),
            outputs: self.max_outputs,
        }
    }
}

/// What an Armor config leaves to Armor's platform: its tags and its Kibana.
#[derive(clap::Args)]
pub(crate) struct ArmorArgs {
    /// Armor configs: the tags table (CSV or JSON, a row per accountId) standing in for Armor's tags service
    #[arg(long, value_name = "FILE")]
    tags: Option<String>,
    /// Armor configs: the Kibana that add_log_search_url links point into [default: https://kibana.example.com]
    #[arg(long, value_name = "URL")]
    kibana: Option<String>,
}

impl ArmorArgs {
    pub(crate) fn options(&self) -> xf::import::ArmorOptions {
        xf::import::ArmorOptions {
            tags: self.tags.clone(),
            kibana: self.kibana.clone(),
        }
    }

    /// The options without the tags table (`xf import` leaves it out).
    pub(crate) fn without_tags(&self) -> xf::import::ArmorOptions {
        xf::import::ArmorOptions {
            tags: None,
            kibana: self.kibana.clone(),
        }
    }

    pub(crate) fn given(&self) -> bool {
        self.tags.is_some() || self.kibana.is_some()
    }
}

/// The networks destinations may reach although they are not public, for
/// `xf serve` and `xf check`: the `--private-destination` flags if any are
/// given, else the pipeline's `private_destinations`.
#[cfg(feature = "serve")]
pub(crate) fn private_networks(
    flags: &[String],
    pipeline: Option<Vec<ipnet::IpNet>>,
) -> Result<Vec<ipnet::IpNet>, String> {
    if flags.is_empty() {
        return Ok(pipeline.unwrap_or_default());
    }
    flags
        .iter()
        .map(|text| {
            xf::serve::config::pipeline::parse_network(text)
                .ok_or_else(|| format!("--private-destination {text}: not an address or a network"))
        })
        .collect()
}

/// The transform of `xf run` and `xf serve --transform`: a `.xf`, or an
/// Armor transform config (`.json`) with `--tags` and `--kibana`. Its
/// problems as the text to print, each line ending in a newline.
pub(crate) fn load_transform(
    path: &std::path::Path,
    armor: &ArmorArgs,
    options: &LoadOptions,
) -> Result<Transform, String> {
    if armor.given() && !Transform::is_armor_config(path) {
        return Err("error: --tags and --kibana are for Armor JSON configs; a .xf names its own lookup and search\n".to_string());
    }
    Transform::from_path_or_armor(path, &armor.options(), options).map_err(|error| error.render())
}

/// A header given as `Name: value` (`xf run --request-header`, a line of the
/// playground's headers field): its name and value, trimmed, as HTTP writes one.
pub(crate) fn request_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not `Name: value`"))?;
    let name = name.trim();
    // A header name is an HTTP token: what `xf serve` could ever receive.
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!("{name:?} is not a header name"));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

/// The `request` a run outside a server gives its transform (`xf run
/// --request-header/--request-source`, the playground): these headers and
/// this source name, under the server's rules (names lower-cased, repeats
/// joined, each value bounded, credentials withheld). `None` when neither is
/// given: `request` is then null, as it is outside a server.
pub(crate) fn request(
    headers: &[(String, String)],
    source: Option<&str>,
) -> Option<xf::apply::Request> {
    if headers.is_empty() && source.is_none() {
        return None;
    }
    let headers = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()));
    let parts = xf::apply::RequestParts {
        source,
        ..xf::apply::RequestParts::default()
    };
    Some(xf::apply::Request::new(headers, &parts))
}

/// Prints what a command answers on standard output (`xf check`'s lines,
/// `xf spool list`'s records, `xf import`'s `.xf`, …), flushed at once.
/// `Ok(false)`: the reader has gone away (`xf spool list | head -1`), which
/// ends the printing quietly, as a closed output ends `xf run`
/// ([`Stream::output_closed`]): nothing more is worth printing, and it is
/// no error. `Err`: any other write error, as the message to print.
/// (`println!` would panic on either.)
pub(crate) fn print_stdout(text: &str) -> Result<bool, String> {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(error) => Err(format!("cannot write standard output: {error}")),
    }
}
