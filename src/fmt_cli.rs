//! `xf fmt [--check] [PATH…]`: the canonical layout of `.xf` transforms and
//! `.xfp` pipeline files ([`xf::syntax::format`]), written in place, to
//! stdout for `-`, or, with `--check`, only reported as a diff.
//!
//! Exit statuses: 0 every file is (now) formatted; 1 with `--check`, some
//! file would change; 2 some file could not be read, parsed, formatted or
//! written (each is reported; the others are still formatted).

use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use xf::syntax::format::{format, format_pipeline, FormatError};

/// The arguments of `xf fmt`.
#[derive(clap::Args)]
pub(crate) struct FmtArgs {
    /// Write nothing: list each file whose layout would change, with a diff, and exit 1 if any would
    #[arg(long)]
    check: bool,
    /// Read standard input (`-`) as a pipeline file (.xfp) rather than a transform
    #[arg(long)]
    pipeline: bool,
    /// .xf and .xfp files, or directories to format every *.xf and *.xfp under; `-` reads standard
    /// input and writes standard output [default: the current directory]
    paths: Vec<PathBuf>,
}

/// Which grammar a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Transform,
    Pipeline,
}

impl Kind {
    /// A `.xfp` is a pipeline file; any other file named is a transform.
    fn of(path: &Path) -> Kind {
        if path.extension().is_some_and(|e| e == "xfp") {
            Kind::Pipeline
        } else {
            Kind::Transform
        }
    }
}

/// What became of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Unchanged,
    /// Rewritten, or with `--check`, would be.
    Changed,
    /// Reported on stderr and left as it was.
    Failed,
}

pub(crate) fn fmt(args: FmtArgs) -> ExitCode {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let mut worst = Outcome::Unchanged;
    for path in &paths {
        let outcome = if path.as_os_str() == "-" {
            let kind = if args.pipeline {
                Kind::Pipeline
            } else {
                Kind::Transform
            };
            format_stdin(kind, args.check)
        } else if path.is_dir() {
            format_dir(path, args.check)
        } else {
            format_file(path, args.check)
        };
        worst = worst.max(outcome);
    }
    match worst {
        Outcome::Failed => ExitCode::from(2),
        Outcome::Changed if args.check => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    }
}

/// Every `*.xf` and `*.xfp` under `dir`, in name order; hidden directories
/// (`.git`) and symbolic links to directories are not entered.
fn format_dir(dir: &Path, check: bool) -> Outcome {
    let mut files = Vec::new();
    let mut failed = false;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) => {
                eprintln!("error: {}: {error}", dir.display());
                failed = true;
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    eprintln!("error: {}: {error}", dir.display());
                    failed = true;
                    continue;
                }
            };
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            match entry.file_type() {
                Ok(kind) if kind.is_dir() && !hidden => pending.push(path),
                Ok(kind)
                    if !kind.is_dir()
                        && path.extension().is_some_and(|e| e == "xf" || e == "xfp") =>
                {
                    if kind.is_file() || path.is_file() {
                        files.push(path);
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    eprintln!("error: {}: {error}", path.display());
                    failed = true;
                }
            }
        }
    }
    files.sort();
    let start = if failed {
        Outcome::Failed
    } else {
        Outcome::Unchanged
    };
    files
        .iter()
        .map(|file| format_file(file, check))
        .fold(start, Outcome::max)
}

fn format_file(path: &Path, check: bool) -> Outcome {
    let source = match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => {
                eprintln!("error: {}: not UTF-8 text", path.display());
                return Outcome::Failed;
            }
        },
        Err(error) => {
            eprintln!("error: {}: {error}", path.display());
            return Outcome::Failed;
        }
    };
    let name = path.display().to_string();
    let Some(formatted) = formatted(Kind::of(path), &name, &source) else {
        return Outcome::Failed;
    };
    if formatted == source {
        return Outcome::Unchanged;
    }
    if check {
        print_diff(&name, &source, &formatted);
        return Outcome::Changed;
    }
    match xf::files::write_atomically(path, &formatted) {
        Ok(()) => Outcome::Changed,
        Err(error) => {
            eprintln!("error: {name}: not rewritten: {error}");
            Outcome::Failed
        }
    }
}

/// `xf fmt -`: standard input formatted to standard output (with `--check`,
/// only the diff).
fn format_stdin(kind: Kind, check: bool) -> Outcome {
    let mut source = String::new();
    if io::stdin().is_terminal() {
        eprintln!("xf fmt: reading a transform from the terminal; end it with Ctrl-D");
    }
    if let Err(error) = io::stdin().read_to_string(&mut source) {
        eprintln!("error: standard input: {error}");
        return Outcome::Failed;
    }
    let Some(formatted) = formatted(kind, "<stdin>", &source) else {
        return Outcome::Failed;
    };
    if check {
        if formatted == source {
            return Outcome::Unchanged;
        }
        print_diff("<stdin>", &source, &formatted);
        return Outcome::Changed;
    }
    // A reader that went away (`xf fmt - | head`) ends it quietly, as it ends `xf run`.
    match crate::shared_cli::print_stdout(&formatted) {
        Ok(_) if formatted == source => Outcome::Unchanged,
        Ok(_) => Outcome::Changed,
        Err(error) => {
            eprintln!("error: {error}");
            Outcome::Failed
        }
    }
}

/// The formatted text, or `None` after reporting why there is none.
fn formatted(kind: Kind, name: &str, source: &str) -> Option<String> {
    let result = match kind {
        Kind::Transform => format(source),
        Kind::Pipeline => format_pipeline(source),
    };
    match result {
        Ok(text) => Some(text),
        Err(FormatError::Syntax(diagnostics)) => {
            eprint!("{}", xf::diagnostic::render(name, source, &diagnostics));
            eprintln!("error: {name}: not formatted, it does not parse");
            None
        }
        Err(error @ FormatError::Internal(_)) => {
            eprintln!(
                "error: {name}: {error}; the file is left as it was (please report this with the file)"
            );
            None
        }
    }
}

/// A unified diff of the file as it is and as it would be, on stdout.
fn print_diff(name: &str, before: &str, after: &str) {
    let diff = similar::TextDiff::from_lines(before, after);
    let mut out = io::stdout().lock();
    let text = diff
        .unified_diff()
        .context_radius(2)
        .header(name, &format!("{name} (formatted)"))
        .to_string();
    // A closed stdout only loses the listing: the exit status still says it.
    let _ = writeln!(out, "{name}: not formatted").and_then(|()| write!(out, "{text}"));
}
