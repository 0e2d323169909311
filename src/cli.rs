//! Command-line interface: `xf run`, `xf validate`, `xf check`, `xf test` and `xf import`.
//!
//! Exit statuses: 0 when every record went through (or was dropped by the
//! transform), 1 when some record failed, 2 when the transform did not load,
//! an input or output could not be opened, or something was lost (also after
//! a signal), 128+N when signal N stopped `xf run` and nothing was lost.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use clap::{Parser, Subcommand};
use xf::stream::{Flow, Interrupt, Interruptible, Options, Stream, StreamError};
use xf::write::DeadLetterFile;
use xf::{Limits, LoadOptions, Transform};

use crate::shared_cli::{load_transform, print_stdout, ArmorArgs, FileArgs, LimitArgs};

#[derive(Parser)]
#[command(
    name = "xf",
    version,
    about = "Reshape security webhook payloads with .xf transforms"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Transform JSON records: NDJSON or pretty-printed JSON in, NDJSON out
    Run(RunArgs),
    /// Check JSON records against a JSON Schema: valid ones are written out as
    /// they are, each invalid one is a record error listing its violations
    Validate(ValidateArgs),
    /// Load transforms (and `xf serve` pipeline files, .xfp) and report problems, without running them
    Check {
        /// The .xf (and .xfp) files to check, or Armor transform configs (.json)
        #[arg(required_unless_present = "program")]
        transforms: Vec<PathBuf>,
        /// Check this transform text, given here instead of in a file (named `<-e>` in messages)
        #[arg(short = 'e', long, value_name = "PROGRAM")]
        program: Option<String>,
        #[command(flatten)]
        armor: ArmorArgs,
        #[command(flatten)]
        files: FileArgs,
        #[command(flatten)]
        warnings: WarningArgs,
        /// Pipelines: a network destinations may reach although it is not public, as `xf serve --private-destination` (repeatable) [default: the pipeline's `private_destinations`]
        #[arg(long = "private-destination", value_name = "NETWORK")]
        private_destinations: Vec<String>,
    },
    #[cfg(feature = "serve")]
    Serve(Box<crate::serve_cli::ServeArgs>),
    /// Look into and repair a spool of `xf serve`
    #[cfg(feature = "serve")]
    #[command(subcommand)]
    Spool(crate::serve_cli::SpoolCommand),
    /// Run the test cases beside transforms (NAME.tests/ beside NAME.xf) and show what differs
    Test(crate::test_cli::TestArgs),
    /// Lay out .xf files in xf's one canonical layout (in place; `--check` only reports)
    Fmt(crate::fmt_cli::FmtArgs),
    #[cfg(feature = "serve")]
    Playground(crate::playground::PlaygroundArgs),
    /// Serve the Language Server Protocol on stdin and stdout, for editors: diagnostics as you
    /// type, completion, hover, go to definition, symbols and formatting of .xf and .xfp files
    Lsp(crate::lsp::LspArgs),
    /// Print the .xf equivalent of another tool's config
    Import {
        /// Whose config it is
        #[arg(value_enum)]
        kind: ImportKind,
        /// The config file (Armor: a Detections Transform Config, JSON)
        config: PathBuf,
        #[command(flatten)]
        armor: ArmorArgs,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ImportKind {
    /// Armor's Detections Transform Config
    Armor,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The .xf transform, or an Armor transform config (a .json file); with -e, the first input
    #[arg(required_unless_present = "program")]
    transform: Option<PathBuf>,
    /// The transform's text, given here instead of in a file, as jq takes one: then every
    /// positional argument is an input. Its files (includes, lookups) are found from the current directory
    #[arg(short = 'e', long, value_name = "PROGRAM")]
    program: Option<String>,
    #[command(flatten)]
    armor: ArmorArgs,
    #[command(flatten)]
    files: FileArgs,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    warnings: WarningArgs,
    #[command(flatten)]
    stream: StreamArgs,
    #[command(flatten)]
    trace: TraceArgs,
}

/// `--trace`: what each record's run did, statement by statement.
#[derive(clap::Args, Default)]
pub(crate) struct TraceArgs {
    /// For each record: which statements ran, what each changed, what decided a drop or a
    /// branch, errors, and µs per statement; on stderr, or to FILE. Implies -j 1
    #[arg(long, value_name = "FILE", num_args = 0..=1, require_equals = true, default_missing_value = "-")]
    trace: Option<PathBuf>,
    /// How --trace writes: text for people, json for programs (one object per record per line)
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        default_value = "text",
        requires = "trace"
    )]
    trace_format: TraceFormat,
}

#[derive(Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TraceFormat {
    #[default]
    Text,
    Json,
}

/// Where `--trace` writes, and whether that has failed (it is then given up,
/// once said, while the run goes on).
struct TraceOut {
    to: Box<dyn Write>,
    name: String,
    format: TraceFormat,
    failed: bool,
}

impl TraceOut {
    fn open(args: &TraceArgs) -> Result<Option<TraceOut>, String> {
        let Some(path) = &args.trace else {
            return Ok(None);
        };
        let (to, name): (Box<dyn Write>, String) = if path.as_os_str() == "-" {
            (Box::new(io::stderr()), "standard error".into())
        } else {
            let file = File::create(path)
                .map_err(|error| format!("cannot open trace file {}: {error}", path.display()))?;
            (
                Box::new(io::BufWriter::new(file)),
                path.display().to_string(),
            )
        };
        Ok(Some(TraceOut {
            to,
            name,
            format: args.trace_format,
            failed: false,
        }))
    }

    /// Writes one record's trace.
    fn write(&mut self, position: &xf::write::Position<'_>, trace: &xf::apply::Trace) {
        if self.failed {
            return;
        }
        let text = match self.format {
            TraceFormat::Text => format!("record {position}\n{}\n", indent(&trace.render())),
            TraceFormat::Json => {
                let mut object = serde_json::Map::new();
                object.insert("input".into(), position.input.into());
                object.insert("line".into(), position.line.into());
                if let Some(index) = position.index {
                    object.insert("index".into(), index.into());
                }
                if let serde_json::Value::Object(fields) = trace.to_json() {
                    object.extend(fields);
                }
                format!("{}\n", serde_json::Value::Object(object))
            }
        };
        if let Err(error) = self.to.write_all(text.as_bytes()) {
            self.give_up(&error);
        }
    }

    fn finish(&mut self) {
        if let (false, Err(error)) = (self.failed, self.to.flush()) {
            self.give_up(&error);
        }
    }

    fn give_up(&mut self, error: &io::Error) {
        self.failed = true;
        eprintln!(
            "error: cannot write the trace to {}: {error}; tracing stops, the run goes on",
            self.name
        );
    }
}

/// Each line two spaces in: a record's trace under its `record …` line.
fn indent(text: &str) -> String {
    text.lines().map(|line| format!("  {line}\n")).collect()
}

/// What a transform's warnings (W00xx) do: printed to stderr, and a load
/// error only when asked, so that a CI check can refuse them while a run in
/// production goes on.
#[derive(clap::Args)]
pub(crate) struct WarningArgs {
    /// Treat the transform's warnings (W0001…) as errors: it does not load (exit status 2)
    #[arg(long)]
    deny_warnings: bool,
}

impl WarningArgs {
    /// Prints the transform's warnings to stderr; with `--deny-warnings`, a
    /// transform with any is refused, its problems as the text to print.
    fn judge(&self, transform: Transform) -> Result<Transform, String> {
        if !self.deny_warnings {
            eprint!("{}", transform.render_warnings());
            return Ok(transform);
        }
        let count = transform.warnings().len();
        transform.deny_warnings().map_err(|denied| {
            format!(
                "{}error: {count} warning{} denied by --deny-warnings\n",
                denied.render(),
                if count == 1 { "" } else { "s" }
            )
        })
    }
}

#[derive(clap::Args)]
struct ValidateArgs {
    /// A shipped schema's name (e.g. queryai-detection), or a schema file ending in .json
    schema: String,
    #[command(flatten)]
    stream: StreamArgs,
}

/// What `run` and `validate` share: inputs, outputs and how the stream goes.
#[derive(clap::Args)]
struct StreamArgs {
    /// Input files (default, or `-`: standard input)
    inputs: Vec<PathBuf>,
    /// Append each failed record, verbatim, with its position and error, as a JSON line
    #[arg(long, value_name = "FILE")]
    dead_letter: Option<PathBuf>,
    /// Stop at the first record that fails
    #[arg(long)]
    strict: bool,
    /// Write one JSON array per input array, instead of one line per record
    #[arg(long)]
    keep_batches: bool,
    /// What now() gives, in expressions and templates: epoch ms or RFC 3339 (reproducible output)
    #[arg(long, value_name = "TIME", value_parser = fixed_now)]
    now: Option<i64>,
    /// A header the transform reads as request.headers.NAME (lower case), as `xf serve` gives it
    /// (repeatable; Authorization, Proxy-Authorization and Cookie are withheld, as there)
    #[arg(long, value_name = "NAME: VALUE", value_parser = crate::shared_cli::request_header)]
    request_header: Vec<(String, String)>,
    /// The source name the transform reads as request.source, as `xf serve` gives it
    #[arg(long, value_name = "NAME")]
    request_source: Option<String>,
    /// Print counts of records read, written, dropped and failed (and lost, if any) to stderr at the end
    #[arg(long)]
    stats: bool,
    /// Worker threads (default: the number of cores); output order is the same for any number
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
    /// The largest record kept, in MiB; a larger one is a record error
    #[arg(long, value_name = "MIB", default_value_t = xf::read::DEFAULT_MAX_RECORD / (1024 * 1024))]
    max_record_size: usize,
    #[command(flatten)]
    progress: crate::progress_cli::ProgressArgs,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    quiet_panics_in_records();
    match cli.command {
        Command::Run(mut args) => {
            let options = args.files.options(args.limits.limits());
            let loaded = match (&args.program, &args.transform) {
                (Some(program), transform) => {
                    // `xf run -e PROGRAM A B`: A is an input, as for jq.
                    if let Some(first) = transform {
                        args.stream.inputs.insert(0, first.clone());
                    }
                    load_program(program, &args.armor, &options)
                }
                (None, Some(path)) => load_transform(path, &args.armor, &options),
                (None, None) => {
                    Err("error: no transform: name a .xf file, or give one with -e\n".into())
                }
            }
            .and_then(|transform| args.warnings.judge(transform));
            match loaded {
                Ok(transform) => run(&transform, args.stream, &args.trace),
                Err(problems) => {
                    eprint!("{problems}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Validate(args) => validate(args),
        Command::Check {
            transforms,
            program,
            armor,
            files,
            warnings,
            private_destinations,
        } => check(
            &transforms,
            program.as_deref(),
            (&armor, &files, &warnings),
            &private_destinations,
        ),
        Command::Test(args) => crate::test_cli::test(args),
        Command::Fmt(args) => crate::fmt_cli::fmt(args),
        Command::Lsp(args) => crate::lsp::lsp(args),
        Command::Import {
            kind: ImportKind::Armor,
            config,
            armor,
        } => import_armor(&config, &armor),
        #[cfg(feature = "serve")]
        Command::Serve(args) => crate::serve_cli::serve(*args),
        #[cfg(feature = "serve")]
        Command::Spool(command) => crate::serve_cli::spool_command(command),
        #[cfg(feature = "serve")]
        Command::Playground(args) => crate::playground::playground(args),
    }
}

/// A panic inside one record's work is caught and becomes that record's
/// error (`internal error …`, dead-lettered): the default hook's message and
/// backtrace would only repeat it, so it stays quiet there, and only there.
fn quiet_panics_in_records() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !xf::stream::in_record_work() {
            default(info);
        }
    }));
}

/// The addresses a pipeline's destinations, token endpoints and error
/// webhook may not reach (the request forgery guard, with the pipeline's
/// `private_destinations`), as `xf serve` says them when it refuses to start.
#[cfg(feature = "serve")]
pub(crate) fn refused_addresses(
    loaded: &xf::serve::config::pipeline::Loaded,
    flags: &[String],
) -> Vec<String> {
    use xf::serve::deliver::guard;
    let pipeline = loaded.settings.private_destinations.clone();
    let allowed = match crate::shared_cli::private_networks(flags, pipeline) {
        Ok(allowed) => allowed,
        Err(problem) => return vec![format!("error: {problem}")],
    };
    let guard = guard::Guard::new(allowed);
    let mut problems = guard::refused_destinations(&guard, &loaded.pipeline.destinations);
    problems.extend(guard::refused_key_sets(&guard, &loaded.pipeline.sources));
    if let Some(webhook) = &loaded.settings.error_webhook {
        if let Err(refused) = guard::check_error_webhook(&guard, webhook) {
            problems.push(format!("error: {refused}"));
        }
    }
    problems
}

/// How messages name a transform given with `-e`.
pub(crate) const PROGRAM_NAME: &str = "<-e>";

/// The transform of `xf run -e PROGRAM` and `xf check -e PROGRAM`: its files
/// (includes, lookup tables, template and schema files) are found relative to
/// the current directory, and only there and below (and in `--allow-dir`s),
/// as for a `.xf` file in the current directory.
pub(crate) fn load_program(
    program: &str,
    armor: &ArmorArgs,
    options: &LoadOptions,
) -> Result<Transform, String> {
    if armor.given() {
        return Err("error: --tags and --kibana are for Armor JSON configs; a transform given with -e names its own lookup and search\n".to_string());
    }
    Transform::from_source_with(
        PROGRAM_NAME,
        program,
        Some(std::path::Path::new(".")),
        options,
    )
    .map_err(|error| error.render())
}

/// `xf import armor CONFIG`: the `.xf` on stdout, or each problem on stderr (status 2).
/// Whether the `.xf` imported from an Armor config loads, templates
/// compiled: the config's schema says nothing of its templates, and a `.xf`
/// that does not load is no import. The tags table is left out, since
/// `--tags` names it as seen from where the `.xf` will be saved, not from here.
fn imported_loads(path: &std::path::Path, armor: &ArmorArgs) -> Result<(), String> {
    let options = armor.without_tags();
    Transform::from_armor_config(path, &options, &LoadOptions::default())
        .map(drop)
        .map_err(|error| error.render())
}

fn import_armor(path: &std::path::Path, armor: &ArmorArgs) -> ExitCode {
    match xf::import::armor_file(path, &armor.options()) {
        Ok(xf) => {
            if let Err(problems) = imported_loads(path, armor) {
                eprint!("{problems}");
                eprintln!(
                    "error: {} is not imported: the .xf it imports to does not load (reported above, at its lines in that .xf)",
                    path.display()
                );
                return ExitCode::from(2);
            }
            match print_stdout(&xf) {
                Ok(_) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::from(2)
                }
            }
        }
        Err(error) => {
            eprint!("{}", error.render());
            ExitCode::from(2)
        }
    }
}

/// SIGINT and SIGTERM end `xf run` cleanly, after the record in hand (every
/// record's work is bounded by [`Limits`]): what was read whole is written or
/// dead-lettered, a record cut short is dead-lettered, the output is flushed
/// (no reader ever sees half a line), and the stats are printed. Inputs are
/// read through [`Interruptible`], so this happens at once while xf waits
/// for input too. A second signal ends xf at once. Exit status 128+N.
fn on_signals() -> io::Result<(Interrupt, Arc<AtomicUsize>)> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let interrupt = Interrupt::default();
    let which = Arc::new(AtomicUsize::new(0));
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so it fires only once an earlier signal set `stop`.
        signal_hook::flag::register_conditional_shutdown(
            signal,
            128 + signal,
            Arc::clone(&interrupt.stop),
        )?;
        signal_hook::flag::register_usize(signal, Arc::clone(&which), signal as usize)?;
        signal_hook::flag::register(signal, Arc::clone(&interrupt.stop))?;
    }
    Ok((interrupt, which))
}

/// One worker per core: on a machine with one core, everything stays on one thread.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `xf check`: each file loaded as `xf run` (or `xf serve`, for `.xfp`)
/// would load it, an Armor config (`.json`) with `--tags` and `--kibana`.
fn check(
    paths: &[PathBuf],
    program: Option<&str>,
    (armor, files, warnings): (&ArmorArgs, &FileArgs, &WarningArgs),
    private_destinations: &[String],
) -> ExitCode {
    let options = &files.options(Limits::DEFAULT);
    let mut ok = true;
    // Each file is checked whatever becomes of standard output: the exit
    // status is the verdict, also when the reader of the lines went away.
    let mut out = Lines::default();
    if let Some(program) = program {
        match load_program(program, armor, options).and_then(|t| warnings.judge(t)) {
            Ok(transform) => out.print(&summary(std::path::Path::new(PROGRAM_NAME), &transform)),
            Err(problems) => {
                eprint!("{problems}");
                ok = false;
            }
        }
    }
    for path in paths {
        #[cfg(feature = "serve")]
        if path.extension().is_some_and(|e| e == "xfp") {
            match xf::serve::config::pipeline::load(path, options) {
                Ok(loaded) => {
                    // What `xf serve` refuses at start, refused here too, in its words.
                    let problems = refused_addresses(&loaded, private_destinations);
                    if problems.is_empty() {
                        out.print(&format!(
                            "{}: ok, pipeline with {} source(s) and {} destination(s)",
                            path.display(),
                            loaded.pipeline.sources.len(),
                            loaded.pipeline.destinations.len()
                        ));
                    } else {
                        eprintln!("{}", problems.join("\n"));
                        ok = false;
                    }
                }
                Err(problems) => {
                    eprint!("{problems}");
                    ok = false;
                }
            }
            continue;
        }
        let loaded = Transform::from_path_or_armor(path, &armor.options(), options)
            .map_err(|error| error.render())
            .and_then(|transform| warnings.judge(transform));
        match loaded {
            Ok(transform) => out.print(&summary(path, &transform)),
            Err(problems) => {
                eprint!("{problems}");
                ok = false;
            }
        }
    }
    if ok && !out.failed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// Lines of a command that goes on after its reader has gone (`xf check`):
/// printed while standard output takes them, then no more ([`print_stdout`]).
#[derive(Default)]
struct Lines {
    stopped: bool,
    /// A write error other than a closed pipe (said on stderr).
    failed: bool,
}

impl Lines {
    fn print(&mut self, line: &str) {
        if self.stopped {
            return;
        }
        match print_stdout(&format!("{line}\n")) {
            Ok(true) => {}
            Ok(false) => self.stopped = true,
            Err(error) => {
                eprintln!("error: {error}");
                self.stopped = true;
                self.failed = true;
            }
        }
    }
}

/// `t.xf: ok, name "…", format splunk, lookup tags (3 rows), 1 warning`.
fn summary(path: &std::path::Path, transform: &Transform) -> String {
    let mut summary = format!("{}: ok", path.display());
    if let Some(name) = transform.name() {
        summary.push_str(&format!(", name {}", serde_json::Value::from(name)));
    }
    summary.push_str(&format!(", format {}", transform.format().name()));
    for (name, rows) in transform.lookups() {
        summary.push_str(&format!(", lookup {name} ({rows} rows)"));
    }
    match transform.warnings().len() {
        0 => {}
        1 => summary.push_str(", 1 warning"),
        count => summary.push_str(&format!(", {count} warnings")),
    }
    summary
}

/// `xf validate SCHEMA`: a one-statement transform, `validate "SCHEMA"`,
/// run like any other, with the schema checked first for a plain message.
fn validate(args: ValidateArgs) -> ExitCode {
    // A schema file named here is the user's choice, wherever it is: it is
    // read from its own folder (a transform's files are confined to its folder).
    let (name, folder) = match std::path::Path::new(&args.schema) {
        path if args.schema.ends_with(".json") => (
            path.file_name().map_or(args.schema.clone(), |name| {
                name.to_string_lossy().into_owned()
            }),
            Some(
                path.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."))
                    .to_path_buf(),
            ),
        ),
        _ => (args.schema.clone(), None),
    };
    if let Err(error) = xf::schema::Schema::load(&name, folder.as_deref()) {
        let reason = match error {
            xf::schema::LoadError::UnknownName => format!(
                "no shipped schema is named `{}` (shipped: {}); a schema file's name ends in .json",
                args.schema,
                xf::schema::shipped_names().join(", ")
            ),
            xf::schema::LoadError::File(reason) => reason,
            xf::schema::LoadError::Invalid(reason) => {
                format!("{} is not a valid JSON Schema: {reason}", args.schema)
            }
        };
        eprintln!("error: {reason}");
        return ExitCode::from(2);
    }
    let quoted = serde_json::Value::String(name).to_string();
    match Transform::from_source(
        "validate",
        &format!("validate {quoted}\n"),
        folder.as_deref(),
    ) {
        Ok(transform) => run(
            &transform.without_statement_names(),
            args.stream,
            &TraceArgs::default(),
        ),
        Err(error) => {
            eprint!("{}", error.render());
            ExitCode::from(2)
        }
    }
}

fn run(transform: &Transform, args: StreamArgs, trace: &TraceArgs) -> ExitCode {
    if args.keep_batches && transform.format() == xf::compile::Format::Splunk {
        eprintln!("error: --keep-batches writes JSON arrays, which Splunk's HTTP Event Collector does not take; format splunk writes stacked events, which are a HEC batch");
        return ExitCode::from(2);
    }
    // Standard output as a file of its own: Rust's `Stdout` takes writes to a
    // closed descriptor (`xf run … >&-`) as done, which would count records
    // as written that went nowhere.
    let output = match io::stdout().as_fd().try_clone_to_owned() {
        Ok(_) if stdout_was_closed() => {
            eprintln!("error: standard output is closed: there is nowhere to write records");
            return ExitCode::from(2);
        }
        Ok(fd) => File::from(fd),
        Err(error) => {
            eprintln!("error: cannot write to standard output: {error}");
            return ExitCode::from(2);
        }
    };
    let dead_letter = match &args.dead_letter {
        Some(path) => match DeadLetterFile::open(path) {
            Ok(file) => Some(file),
            Err(error) => {
                eprintln!(
                    "error: cannot open dead-letter file {}: {error}",
                    path.display()
                );
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let inputs = if args.inputs.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.inputs.clone()
    };
    let trace_on_stderr = trace
        .trace
        .as_ref()
        .is_some_and(|path| path.as_os_str() == "-");
    let show_progress = match args.progress.wanted(&args.inputs, trace_on_stderr) {
        Ok(wanted) => wanted,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let trace_out = match TraceOut::open(trace) {
        Ok(out) => out.map(std::cell::RefCell::new),
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let options = Options {
        keep_batches: args.keep_batches,
        strict: args.strict,
        max_record: Some(args.max_record_size.saturating_mul(1024 * 1024)),
        threads: args.threads.map_or_else(default_threads, usize::from),
    };
    let progress = if show_progress {
        // Traced records run on the calling thread whatever -j says.
        let one_thread = options.threads == 1 || trace_out.is_some();
        crate::progress_cli::Progress::start(&inputs, one_thread)
    } else {
        crate::progress_cli::Progress::off()
    };
    let report = |failure: &xf::stream::Report<'_>| progress.eprintln(&format!("error: {failure}"));
    let mut stream = Stream::new(transform, output, dead_letter, report, options);
    if let Some(live) = progress.live() {
        stream.publish_to(live);
    }
    if let Some(out) = &trace_out {
        // Traced records run on one thread, so their traces come in input order.
        stream.trace_to(|position, trace| out.borrow_mut().write(position, trace));
    }
    if let Some(now) = args.now {
        stream.fix_now(now);
    }
    if let Some(request) =
        crate::shared_cli::request(&args.request_header, args.request_source.as_deref())
    {
        stream.set_request(request);
    }
    let (interrupt, signal) = match on_signals() {
        Ok(handlers) => handlers,
        Err(error) => {
            eprintln!("error: cannot handle signals: {error}");
            return ExitCode::from(2);
        }
    };
    stream.set_interrupt(interrupt.clone());
    // Anything that kept a record from being written or dead-lettered.
    let mut lost = false;
    for input in &inputs {
        let stop = Arc::clone(&interrupt.stop);
        let result = if input.as_os_str() == "-" {
            run_input(&mut stream, "stdin", io::stdin(), stop, &progress)
        } else {
            match open_input(input) {
                Ok(file) => run_input(
                    &mut stream,
                    &input.display().to_string(),
                    file,
                    stop,
                    &progress,
                ),
                Err(error) => {
                    progress.eprintln(&format!("error: cannot open {}: {error}", input.display()));
                    lost = true;
                    continue;
                }
            }
        };
        match result {
            Ok(Flow::Continue) => {}
            Ok(Flow::Stop) => break,
            // One unreadable input: the others still go through.
            Err(error @ StreamError::Input { .. }) => {
                progress.eprintln(&format!("error: {error}"));
                lost = true;
            }
            Err(StreamError::DeadLetters(error)) => {
                let path = args
                    .dead_letter
                    .as_deref()
                    .unwrap_or(std::path::Path::new("?"));
                let count = stream.stats.lost;
                let (plural, are) = if count == 1 { ("", "is") } else { ("s", "are") };
                let (from, after) = match stream.first_lost() {
                    Some(first) => (
                        format!(", from {} on", first.position),
                        if first.in_batch {
                            "that batch"
                        } else {
                            "that record"
                        },
                    ),
                    None => (String::new(), "it"),
                };
                progress.eprintln(&format!(
                    "error: cannot write dead-letter file {}: {error}; {count} failed record{plural} {are} not in it{from}, each reported above; every other record read was written, dropped or dead-lettered, and nothing after {after} was read",
                    path.display()
                ));
                lost = true;
                break;
            }
            Err(StreamError::Output(error)) => {
                progress.eprintln(&format!(
                    "error: cannot write standard output: {error}; nothing after it was read"
                ));
                lost = true;
                break;
            }
        }
    }
    // The bar off before the run's last lines (errors, --stats, a signal's).
    progress.finish();
    let stats = stream.stats;
    lost |= stats.lost > 0;
    if let Some(out) = &trace_out {
        out.borrow_mut().finish();
    }
    if args.stats {
        let mut line = format!(
            "xf: {} read, {} written, {} dropped, {} failed",
            stats.read, stats.written, stats.dropped, stats.failed
        );
        if stats.lost > 0 {
            line.push_str(&format!(", {} lost", stats.lost));
        }
        if stats.outputs != stats.written {
            line.push_str(&format!(" ({} records out, by fan_out)", stats.outputs));
        }
        eprintln!("{line}");
    }
    if stream.interrupted() {
        let number = signal.load(Ordering::SeqCst);
        if lost {
            // A loss outweighs the signal: status 2, as without one.
            eprintln!("xf: stopped by signal {number} after {} records; not everything was written or dead-lettered (see the errors above)", stats.read);
            return ExitCode::from(2);
        }
        eprintln!("xf: stopped by signal {number} after {} records; every record read was written whole or dead-lettered", stats.read);
        ExitCode::from(128 + number as u8)
    } else if lost {
        ExitCode::from(2)
    } else if stream.output_closed() {
        ExitCode::SUCCESS
    } else if stats.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Whether xf was started with standard output closed (`xf run … >&-`).
/// Before `main`, Rust's runtime puts /dev/null in place of a closed standard
/// descriptor, so records written would vanish unseen; and a /dev/null given
/// on purpose (`> /dev/null`, a program's `stdout=DEVNULL`) looks the same
/// afterwards. So the kernel is asked before Rust's runtime starts, from the
/// ELF `.init_array` (where C constructors run).
static STDOUT_CLOSED_AT_START: AtomicBool = AtomicBool::new(false);

#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static SEE_STDOUT_AT_START: extern "C" fn() = see_stdout_at_start;

#[cfg(target_os = "linux")]
extern "C" fn see_stdout_at_start() {
    // SAFETY: F_GETFD only reads a descriptor's flags; -1 (EBADF) means it is not open.
    let closed = unsafe { libc::fcntl(libc::STDOUT_FILENO, libc::F_GETFD) } == -1;
    STDOUT_CLOSED_AT_START.store(closed, Ordering::Relaxed);
}

fn stdout_was_closed() -> bool {
    STDOUT_CLOSED_AT_START.load(Ordering::Relaxed)
}

/// Streams one input. A regular file's reads never wait, and the stream
/// sees a stop between its records anyway: it is read directly (that saves a
/// copy), without writing out what was read before each read
/// ([`Stream::run_file`]). Any other input is read through [`Interruptible`]
/// (a thread that waits in `read`), so that a stop ends it at once; what was
/// read is written out before a read that would wait for it ([`Stream::run_ready`]).
fn run_input<R, W, D>(
    stream: &mut Stream<'_, W, D>,
    name: &str,
    input: R,
    stop: Arc<std::sync::atomic::AtomicBool>,
    progress: &crate::progress_cli::Progress,
) -> Result<Flow, StreamError>
where
    R: io::Read + AsFd + Send + 'static,
    W: io::Write,
    D: io::Write,
{
    let regular = input
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .and_then(|fd| File::from(fd).metadata().ok())
        .is_some_and(|metadata| metadata.is_file());
    if regular {
        stream.run_file(name, progress.count(Box::new(input)))
    } else {
        let input = Interruptible::new(input, stop);
        let ready = input.ready();
        stream.run_ready(name, progress.count(Box::new(input)), ready)
    }
}

/// Opens an input file; a directory is refused here, with its name.
fn open_input(path: &std::path::Path) -> io::Result<File> {
    let file = File::open(path)?;
    if file.metadata()?.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is a directory",
        ));
    }
    Ok(file)
}

/// `--now`: a time as `epoch_ms()` reads one (epoch s/ms/µs/ns, or RFC 3339), in epoch ms;
/// `xf test --now` and a test case's `CASE.now` read it the same way.
pub(crate) fn fixed_now(text: &str) -> Result<i64, String> {
    xf::testing::parse_now(text)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own checks of the whole command tree, in the features this is
    /// built with (CI builds all): two arguments of one subcommand with one
    /// name (`xf spool purge --queue`, issue 28) fail here, not at a user's prompt.
    #[test]
    fn the_command_tree_passes_clap_s_checks() {
        super::Cli::command().debug_assert();
    }
}
