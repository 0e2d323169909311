//! Command-line interface: `xf run`, `xf validate`, `xf check` and `xf import`.
//!
//! Exit statuses: 0 when every record went through (or was dropped by the
//! transform), 1 when some record failed, 2 when the transform did not load
//! or an input or output could not be opened.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use clap::{Parser, Subcommand};
use xf::stream::{Flow, Interrupt, Options, Stream};
use xf::Transform;

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
    /// Load transforms and report problems, without running them
    Check {
        /// The .xf files to check
        #[arg(required = true)]
        transforms: Vec<PathBuf>,
    },
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
    /// The .xf transform, or an Armor transform config (a .json file)
    transform: PathBuf,
    #[command(flatten)]
    armor: ArmorArgs,
    #[command(flatten)]
    stream: StreamArgs,
}

/// What an Armor config leaves to Armor's platform: its tags and its Kibana.
#[derive(clap::Args)]
struct ArmorArgs {
    /// Armor configs: the tags table (CSV or JSON, a row per accountId) standing in for Armor's tags service
    #[arg(long, value_name = "FILE")]
    tags: Option<String>,
    /// Armor configs: the Kibana that add_log_search_url links point into [default: https://kibana.example.com]
    #[arg(long, value_name = "URL")]
    kibana: Option<String>,
}

impl ArmorArgs {
    fn options(&self) -> xf::import::ArmorOptions {
        xf::import::ArmorOptions {
            tags: self.tags.clone(),
            kibana: self.kibana.clone(),
        }
    }

    fn given(&self) -> bool {
        self.tags.is_some() || self.kibana.is_some()
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
    /// Print counts of records read, written, dropped and failed to stderr at the end
    #[arg(long)]
    stats: bool,
    /// Worker threads (default: the number of cores); output order is the same for any number
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
    /// The largest record kept, in MiB; a larger one is a record error
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    max_record_size: usize,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            let transform = if is_armor_config(&args.transform) {
                load_armor(&args.transform, &args.armor)
            } else if args.armor.given() {
                eprintln!("error: --tags and --kibana are for Armor JSON configs; a .xf names its own lookup and search");
                None
            } else {
                load(&args.transform)
            };
            match transform {
                Some(transform) => run(&transform, args.stream),
                None => ExitCode::from(2),
            }
        }
        Command::Validate(args) => validate(args),
        Command::Check { transforms } => check(&transforms),
        Command::Import {
            kind: ImportKind::Armor,
            config,
            armor,
        } => import_armor(&config, &armor),
    }
}

/// A `.json` file given to `run` is an Armor transform config.
fn is_armor_config(path: &std::path::Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

fn load_armor(path: &PathBuf, armor: &ArmorArgs) -> Option<Transform> {
    match Transform::from_armor_config(path, &armor.options()) {
        Ok(transform) => Some(transform),
        Err(error) => {
            eprint!("{}", error.render());
            None
        }
    }
}

/// `xf import armor CONFIG`: the `.xf` on stdout, or each problem on stderr (status 2).
fn import_armor(path: &std::path::Path, armor: &ArmorArgs) -> ExitCode {
    match xf::import::armor_file(path, &armor.options()) {
        Ok(xf) => {
            print!("{xf}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprint!("{}", error.render());
            ExitCode::from(2)
        }
    }
}

fn load(path: &PathBuf) -> Option<Transform> {
    match Transform::from_path(path) {
        Ok(transform) => Some(transform),
        Err(error) => {
            eprint!("{}", error.render());
            None
        }
    }
}

/// SIGINT and SIGTERM end `xf run` cleanly: while it waits for input (all
/// output written) at once; otherwise after the record in hand, with its
/// output flushed, so that no reader ever sees half a line. Exit status 128+N.
fn on_signals() -> io::Result<(Interrupt, Arc<AtomicUsize>)> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let interrupt = Interrupt::default();
    let which = Arc::new(AtomicUsize::new(0));
    for signal in [SIGINT, SIGTERM] {
        // The shutdown goes first: it only fires while xf waits with nothing unwritten.
        signal_hook::flag::register_conditional_shutdown(
            signal,
            128 + signal,
            Arc::clone(&interrupt.waiting),
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

fn check(paths: &[PathBuf]) -> ExitCode {
    let mut ok = true;
    for path in paths {
        match load(path) {
            Some(transform) => {
                let mut summary = format!(
                    "{}: ok, format {}",
                    path.display(),
                    transform.format().name()
                );
                for (name, rows) in transform.lookups() {
                    summary.push_str(&format!(", lookup {name} ({rows} rows)"));
                }
                println!("{summary}");
            }
            None => ok = false,
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// `xf validate SCHEMA`: a one-statement transform, `validate "SCHEMA"`,
/// run like any other, with the schema checked first for a plain message.
fn validate(args: ValidateArgs) -> ExitCode {
    if let Err(error) = xf::schema::Schema::load(&args.schema, None) {
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
    let quoted = serde_json::Value::String(args.schema.clone()).to_string();
    match Transform::from_source("validate", &format!("validate {quoted}\n"), None) {
        Ok(transform) => run(&transform, args.stream),
        Err(error) => {
            eprint!("{}", error.render());
            ExitCode::from(2)
        }
    }
}

fn run(transform: &Transform, args: StreamArgs) -> ExitCode {
    let dead_letter = match &args.dead_letter {
        Some(path) => match File::options().create(true).append(true).open(path) {
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
    let options = Options {
        keep_batches: args.keep_batches,
        strict: args.strict,
        max_record: Some(args.max_record_size.saturating_mul(1024 * 1024)),
        threads: args.threads.map_or_else(default_threads, usize::from),
    };
    let stderr = io::stderr();
    let report = |message: &str| {
        let _ = writeln!(stderr.lock(), "error: {message}");
    };
    let mut stream = Stream::new(transform, io::stdout().lock(), dead_letter, report, options);
    let signal = match on_signals() {
        Ok((interrupt, signal)) => {
            stream.set_interrupt(interrupt);
            signal
        }
        Err(error) => {
            eprintln!("error: cannot handle signals: {error}");
            return ExitCode::from(2);
        }
    };
    let inputs = if args.inputs.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.inputs
    };
    let mut unreadable = false;
    for input in &inputs {
        let result = if input.as_os_str() == "-" {
            stream.run("stdin", io::stdin())
        } else {
            match File::open(input) {
                Ok(file) => stream.run(&input.display().to_string(), file),
                Err(error) => {
                    eprintln!("error: cannot open {}: {error}", input.display());
                    unreadable = true;
                    continue;
                }
            }
        };
        match result {
            Ok(Flow::Continue) => {}
            Ok(Flow::Stop) => break,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(2);
            }
        }
    }
    let stats = stream.stats;
    if args.stats {
        eprintln!(
            "xf: {} read, {} written, {} dropped, {} failed",
            stats.read, stats.written, stats.dropped, stats.failed
        );
    }
    if stream.interrupted() {
        let number = signal.load(Ordering::SeqCst);
        eprintln!("xf: stopped by signal {number} after {} records; every record read was written whole or dead-lettered", stats.read);
        ExitCode::from(128 + number as u8)
    } else if stream.output_closed() {
        ExitCode::SUCCESS
    } else if unreadable {
        ExitCode::from(2)
    } else if stats.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
