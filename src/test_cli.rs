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

use crate::shared_cli::ArmorArgs;

#[derive(clap::Args)]
pub(crate) struct TestArgs {
    /// .xf files, Armor configs (.json), .tests folders, or directories searched for them [default: .]
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
    /// What now() gives in every case without its own CASE.now: RFC 3339 or epoch ms [default: 2025-11-24T16:00:00Z]
    #[arg(long, value_name = "TIME", value_parser = crate::cli::fixed_now)]
    now: Option<i64>,
    #[command(flatten)]
    armor: ArmorArgs,
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
    // As `xf run` refuses them for a .xf: options nothing would read are a mistake.
    if args.armor.given() && !suites.iter().any(Suite::is_armor_config) {
        eprintln!("error: --tags and --kibana are for Armor JSON configs, and none was found among the transforms to test");
        return ExitCode::from(2);
    }
    let mut runner = Runner {
        colour: std::io::stdout().is_terminal(),
        args: &args,
        tally: Tally::default(),
        out: std::io::stdout().lock(),
    };
    for suite in &suites {
        runner.suite(suite);
    }
    let tally = &runner.tally;
    let cases = tally.passed + tally.failed + tally.blessed;
    let mut summary = format!("{} passed, {} failed", tally.passed, tally.failed);
    if args.bless {
        summary.push_str(&format!(", {} blessed", tally.blessed));
    }
    let _ = writeln!(
        runner.out,
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
    /// What went wrong, a line or more.
    Failed(String),
    /// What was written.
    Blessed(String),
}

/// Runs suites one after the other, printing as it goes (a write error, such
/// as a closed pipe, is ignored: the exit status still tells).
struct Runner<'a, W: Write> {
    args: &'a TestArgs,
    colour: bool,
    tally: Tally,
    out: W,
}

impl<W: Write> Runner<'_, W> {
    fn suite(&mut self, suite: &Suite) {
        if !suite.has_tests() {
            return self.untested(suite);
        }
        self.tally.transforms += 1;
        let Some(transform) = self.load(suite) else {
            return;
        };
        let name = suite.name();
        let folder = match testing::read_folder(&suite.folder) {
            Ok(folder) => folder,
            Err(error) => {
                let why = format!("cannot read {}: {error}", suite.folder.display());
                return self.record(&name, None, Verdict::Failed(why));
            }
        };
        if !self.args.quiet {
            let _ = writeln!(self.out, "{}", suite.transform.display());
        }
        for stray in &folder.strays {
            if self.selected(&name, &testing::stem(stray)) {
                let file = stray.file_name().unwrap_or_default().to_string_lossy();
                let why = format!("{} is no case's file: a case has CASE.input.json or CASE.input.ndjson, and CASE.output.ndjson, CASE.error.txt or CASE.dropped, and may have CASE.now and CASE.request.json; beside them only {}, README*, NOTICE* and LICENSE*", stray.display(), testing::WARNINGS_FILE);
                self.record(&format!("{name}/{file}"), None, Verdict::Failed(why));
            }
        }
        let warnings = testing::warning_lines(&transform);
        if (folder.warnings.is_some() || !warnings.is_empty()) && self.selected(&name, "warnings") {
            let verdict = self.judge_warnings(suite, folder.warnings.as_deref(), &warnings);
            self.record(&format!("{name}/warnings"), None, verdict);
        }
        for case in &folder.cases {
            if self.selected(&name, &case.name) {
                let verdict = self.judge_case(&transform, &suite.folder, case);
                let input = case.inputs.first().map(PathBuf::as_path);
                self.record(&format!("{name}/{}", case.name), input, verdict);
            }
        }
    }

    /// Whether `--filter` selects the case `transform/case`.
    fn selected(&self, transform: &str, case: &str) -> bool {
        self.args
            .filter
            .as_deref()
            .is_none_or(|filter| format!("{transform}/{case}").contains(filter))
    }

    /// A transform without a tests folder: a note, or with `--require-tests` a failure.
    fn untested(&mut self, suite: &Suite) {
        if self.args.require_tests {
            self.tally.transforms += 1;
            let why = format!("no tests (no folder {})", suite.folder.display());
            self.record(
                &suite.transform.display().to_string(),
                None,
                Verdict::Failed(why),
            );
        } else if !self.args.quiet {
            let _ = writeln!(self.out, "{}: no tests", suite.transform.display());
        }
    }

    /// The transform as `xf run` loads it (an Armor config with `--tags` and
    /// `--kibana`), or its problems on stderr (status 2).
    fn load(&mut self, suite: &Suite) -> Option<Transform> {
        let loaded = Transform::from_path_or_armor(
            &suite.transform,
            &self.args.armor.options(),
            &xf::LoadOptions::default(),
        );
        match loaded {
            Ok(transform) => Some(transform),
            Err(error) => {
                let _ = self.out.flush();
                eprint!("{}", error.render());
                eprintln!(
                    "error: {} does not load: its tests were not run",
                    suite.transform.display()
                );
                self.tally.load_failed = true;
                None
            }
        }
    }

    fn judge_warnings(&self, suite: &Suite, expected: Option<&Path>, actual: &[String]) -> Verdict {
        let text = match expected.map(std::fs::read_to_string).transpose() {
            Ok(text) => text,
            Err(error) => {
                return Verdict::Failed(format!("cannot read {}: {error}", testing::WARNINGS_FILE))
            }
        };
        let Some(report) = testing::judge_warnings(text.as_deref(), actual) else {
            return Verdict::Passed;
        };
        if !self.args.bless {
            return Verdict::Failed(report);
        }
        let path = suite.folder.join(testing::WARNINGS_FILE);
        match testing::bless_warnings(&suite.folder, actual) {
            Ok(()) if actual.is_empty() => Verdict::Blessed(format!("removed {}", path.display())),
            Ok(()) => Verdict::Blessed(format!("wrote {}", path.display())),
            Err(error) => Verdict::Failed(format!("cannot write {}: {error}", path.display())),
        }
    }

    fn judge_case(&self, transform: &Transform, folder: &Path, case: &Case) -> Verdict {
        let now = self.args.now.unwrap_or(testing::TEST_NOW);
        let actual = match testing::run_case(transform, case, now) {
            Ok(actual) => actual,
            Err(broken) => return Verdict::Failed(broken),
        };
        let unexpected = match testing::judge(case, &actual, self.colour) {
            Ok(None) => return Verdict::Passed,
            Ok(Some(report)) => report,
            // Only an expectation not yet written can be blessed; other mistakes are the author's.
            Err(missing) if !case.expects_anything() => missing,
            Err(broken) => return Verdict::Failed(broken),
        };
        if !self.args.bless {
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
            Err(error) => Verdict::Failed(format!("cannot bless it: {error}")),
        }
    }

    /// Counts a verdict and prints it: a failure with its report indented.
    fn record(&mut self, name: &str, input: Option<&Path>, verdict: Verdict) {
        let out = &mut self.out;
        match verdict {
            Verdict::Passed => {
                self.tally.passed += 1;
                if !self.args.quiet {
                    let _ = writeln!(out, "  ok      {name}");
                }
            }
            Verdict::Blessed(what) => {
                self.tally.blessed += 1;
                let _ = writeln!(out, "  blessed {name}: {what}");
            }
            Verdict::Failed(report) => {
                self.tally.failed += 1;
                let _ = match input {
                    Some(input) => writeln!(out, "  FAILED  {name} (input {})", input.display()),
                    None => writeln!(out, "  FAILED  {name}"),
                };
                for line in report.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
    }
}
