//! `xf test [PATH…]`: runs the cases beside transforms ([`xf::testing`]) and
//! prints each failure with its diff, then a summary line.
//!
//! Exit statuses: 0 when every case passed (or was blessed), 1 when a case
//! failed (a wrong outcome, a broken case, a transform without tests under
//! `--require-tests`), 2 on a usage error or a transform that does not load.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use xf::testing::{self, Case, Suite};
use xf::Transform;

#[derive(clap::Args)]
pub(crate) struct TestArgs {
    /// .xf files, .tests folders, or directories searched for .xf files with a .tests folder [default: .]
    paths: Vec<PathBuf>,
    /// Only the cases whose name (`transform/case`) contains TEXT
    #[arg(long, value_name = "TEXT")]
    filter: Option<String>,
    /// Write the current outcome of each failing case (and the warnings) as what it expects
    #[arg(long)]
    bless: bool,
    /// Print only failures and the summary
    #[arg(short, long)]
    quiet: bool,
    /// A .xf without a .tests folder is a failure (for CI: every transform carries tests)
    #[arg(long)]
    require_tests: bool,
}

/// What the cases came to, across transforms.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    blessed: usize,
    transforms: usize,
    /// A transform did not load: status 2.
    load_failed: bool,
}

pub(crate) fn test(args: TestArgs) -> ExitCode {
    let started = Instant::now();
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let suites = match testing::discover(&paths) {
        Ok(suites) => suites,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let colour = std::io::stdout().is_terminal();
    let mut tally = Tally::default();
    let mut out = std::io::stdout().lock();
    for suite in &suites {
        test_suite(suite, &args, colour, &mut tally, &mut out);
    }
    let cases = tally.passed + tally.failed + tally.blessed;
    let mut summary = format!("{} passed, {} failed", tally.passed, tally.failed);
    if args.bless {
        summary.push_str(&format!(", {} blessed", tally.blessed));
    }
    let _ = writeln!(
        out,
        "{summary} ({} in {}) in {:.2}s",
        plural(cases, "case"),
        plural(tally.transforms, "transform"),
        started.elapsed().as_secs_f64()
    );
    if tally.load_failed {
        ExitCode::from(2)
    } else if tally.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// How one case (or a transform's warnings) went.
enum Verdict {
    Passed,
    Failed(String),
    Blessed(String),
}

fn test_suite(
    suite: &Suite,
    args: &TestArgs,
    colour: bool,
    tally: &mut Tally,
    out: &mut impl Write,
) {
    let name = suite.name();
    if !suite.has_tests() {
        if args.require_tests {
            let _ = writeln!(
                out,
                "  FAILED  {}: no tests (no folder {})",
                suite.transform.display(),
                suite.folder.display()
            );
            tally.failed += 1;
            tally.transforms += 1;
        } else if !args.quiet {
            let _ = writeln!(out, "{}: no tests", suite.transform.display());
        }
        return;
    }
    tally.transforms += 1;
    let transform = match Transform::from_path(&suite.transform) {
        Ok(transform) => transform,
        Err(error) => {
            let _ = out.flush();
            eprint!("{}", error.render());
            eprintln!(
                "error: {} does not load: its tests were not run",
                suite.transform.display()
            );
            tally.load_failed = true;
            return;
        }
    };
    let folder = match testing::read_folder(&suite.folder) {
        Ok(folder) => folder,
        Err(error) => {
            let _ = writeln!(
                out,
                "  FAILED  {name}: cannot read {}: {error}",
                suite.folder.display()
            );
            tally.failed += 1;
            return;
        }
    };
    if !args.quiet {
        let _ = writeln!(out, "{}", suite.transform.display());
    }
    let selected = |case: &str| {
        args.filter
            .as_deref()
            .is_none_or(|filter| format!("{name}/{case}").contains(filter))
    };
    for stray in &folder.strays {
        let _ = writeln!(
            out,
            "  FAILED  {name}: {} is no case's file (CASE.input.json, CASE.input.ndjson, CASE.output.ndjson, CASE.error.txt, CASE.dropped) nor {}",
            stray.display(),
            testing::WARNINGS_FILE
        );
        tally.failed += 1;
    }
    let warnings = testing::warning_lines(&transform);
    if (folder.warnings.is_some() || !warnings.is_empty()) && selected("warnings") {
        let verdict = judge_warnings(suite, folder.warnings.as_deref(), &warnings, args.bless);
        record(
            &format!("{name}/warnings"),
            None,
            verdict,
            args.quiet,
            tally,
            out,
        );
    }
    for case in folder.cases.iter().filter(|case| selected(&case.name)) {
        let verdict = judge_case(&transform, &suite.folder, case, args.bless, colour);
        let input = case.inputs.first().map(PathBuf::as_path);
        record(
            &format!("{name}/{}", case.name),
            input,
            verdict,
            args.quiet,
            tally,
            out,
        );
    }
}

fn judge_warnings(
    suite: &Suite,
    expected: Option<&Path>,
    actual: &[String],
    bless: bool,
) -> Verdict {
    let text = match expected.map(std::fs::read_to_string).transpose() {
        Ok(text) => text,
        Err(error) => {
            return Verdict::Failed(format!("cannot read {}: {error}\n", testing::WARNINGS_FILE))
        }
    };
    let Some(report) = testing::judge_warnings(text.as_deref(), actual) else {
        return Verdict::Passed;
    };
    if !bless {
        return Verdict::Failed(report);
    }
    match testing::bless_warnings(&suite.folder, actual) {
        Ok(()) if actual.is_empty() => {
            Verdict::Blessed(format!("removed {}", testing::WARNINGS_FILE))
        }
        Ok(()) => Verdict::Blessed(format!(
            "wrote {}",
            suite.folder.join(testing::WARNINGS_FILE).display()
        )),
        Err(error) => Verdict::Failed(format!(
            "cannot bless {}: {error}\n",
            testing::WARNINGS_FILE
        )),
    }
}

fn judge_case(
    transform: &Transform,
    folder: &Path,
    case: &Case,
    bless: bool,
    colour: bool,
) -> Verdict {
    let actual = match testing::run_case(transform, case) {
        Ok(actual) => actual,
        Err(broken) => return Verdict::Failed(format!("{broken}\n")),
    };
    let unexpected = match testing::judge(case, &actual, colour) {
        Ok(None) => return Verdict::Passed,
        Ok(Some(report)) => report,
        // Only an expectation not yet written can be blessed; other mistakes are the author's.
        Err(missing) if case.output.is_none() && case.error.is_none() && case.dropped.is_none() => {
            format!("{missing}\n")
        }
        Err(broken) => return Verdict::Failed(format!("{broken}\n")),
    };
    if !bless {
        return Verdict::Failed(unexpected);
    }
    match testing::bless(folder, case, &actual) {
        Ok(written) => {
            let names: Vec<String> = written
                .iter()
                .map(|path| path.display().to_string())
                .collect();
            Verdict::Blessed(format!("wrote {}", names.join(", ")))
        }
        Err(error) => Verdict::Failed(format!("cannot bless: {error}\n")),
    }
}

fn record(
    name: &str,
    input: Option<&Path>,
    verdict: Verdict,
    quiet: bool,
    tally: &mut Tally,
    out: &mut impl Write,
) {
    match verdict {
        Verdict::Passed => {
            tally.passed += 1;
            if !quiet {
                let _ = writeln!(out, "  ok      {name}");
            }
        }
        Verdict::Blessed(what) => {
            tally.blessed += 1;
            let _ = writeln!(out, "  blessed {name}: {what}");
        }
        Verdict::Failed(report) => {
            tally.failed += 1;
            match input {
                Some(input) => {
                    let _ = writeln!(out, "  FAILED  {name} (input {})", input.display());
                }
                None => {
                    let _ = writeln!(out, "  FAILED  {name}");
                }
            }
            for line in report.lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
}
