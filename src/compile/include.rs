//! `include "FILE.xf"`: another transform, compiled on its own and run in place.
//!
//! An included file is a whole transform: its lookups, searches, templates
//! and schemas are its own, found beside it, and its `events` filter holds
//! where it is included. Its `name` is not the including transform's. Its
//! format must be the including one's, since one record gets one envelope.
//!
//! Each file is compiled once per load, however often it is included: its
//! plan is shared ([`Arc`]), keyed by the file's identity (its canonical path).
//! Since a record runs every included plan, including is bounded
//! ([`MAX_INCLUDE_DEPTH`], [`MAX_INCLUDED_PLANS`], [`MAX_INCLUDE_BYTES`]):
//! a file including the next twice, 18 deep, would run 2^18 plans per record.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{compile, Compiler, Origin, Plan, Step};
use crate::diagnostic::{Code, Diagnostic, FileProblems};
use crate::files::{FileError, Kind};
use crate::syntax::{self, ast::Spanned};

/// How deep includes nest: the transform's includes are level 1, theirs 2, …
/// The shipped transforms use 2. Eight levels leave room for layered
/// transforms while keeping a fan-out of two to 2^8 = 256 plans per record.
pub const MAX_INCLUDE_DEPTH: usize = 8;
/// How many plans one record can run through includes, counting a file each
/// time it is included (its plan is shared, but runs each time).
pub const MAX_INCLUDED_PLANS: usize = 1024;
/// The total size of the distinct files included by one load: 64 MiB.
pub const MAX_INCLUDE_BYTES: u64 = 64 << 20;

/// Included files compiled so far in one load, by identity.
#[derive(Default)]
pub(super) struct Included {
    plans: HashMap<PathBuf, Compiled>,
    /// Bytes of the files read so far.
    bytes: u64,
    /// How deep the file being compiled is (the loaded transform: 0).
    depth: usize,
}

/// One included file's compiled result, shared by every `include` of it.
#[derive(Clone)]
enum Compiled {
    Plan(Arc<Plan>),
    /// Its problems, rendered under each `include` of it.
    Invalid {
        text: Arc<str>,
        problems: Arc<[Diagnostic]>,
    },
}

/// Include levels below a plan (0 when it includes nothing) and the plans a
/// record runs through it (itself included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nesting {
    pub depth: usize,
    pub plans: usize,
}

impl Default for Nesting {
    fn default() -> Self {
        Nesting { depth: 0, plans: 1 }
    }
}

impl Included {
    /// Whether the file being compiled is an included one (not the loaded transform).
    pub(super) fn compiling_included(&self) -> bool {
        self.depth > 0
    }
}

impl Compiler<'_> {
    pub(super) fn include(&mut self, file: &Spanned<String>, origin: Origin) -> Option<Step> {
        if self.over_limit {
            // One limit reported is enough; compiling on would only repeat it.
            return None;
        }
        let path = match self.base_dir {
            Some(dir) => dir.join(&file.node),
            None => PathBuf::from(&file.node),
        };
        let id = match self.load.files.id(&path) {
            Ok(id) => id,
            Err(error) => return self.unreadable(file, &path, &error),
        };
        if self.cycle(file, &id) {
            return None;
        }
        let depth = self.load.included.depth + 1;
        if depth > MAX_INCLUDE_DEPTH {
            let note = format!(
                "an include nests at most {MAX_INCLUDE_DEPTH} levels deep (MAX_INCLUDE_DEPTH); the chain: {}",
                chain(self.including, &id)
            );
            return self.limit(file, "includes nest too deep", "one level too many", note);
        }
        let compiled = match self.load.included.plans.get(&id) {
            Some(compiled) => compiled.clone(),
            None => self.compile_file(file, &path, id)?,
        };
        let plan = match compiled {
            Compiled::Plan(plan) => plan,
            Compiled::Invalid { text, problems } => {
                let name = path.display().to_string();
                self.errors.push(invalid(file, &name, &text, &problems));
                return None;
            }
        };
        self.account(file, &plan, depth)?;
        if plan.format_declared && plan.format != self.plan.format {
            self.errors.push(
                Diagnostic::new(
                    Code::IncludeFormat,
                    "included transform has another format",
                    file.span,
                )
                .with_label(format!(
                    "format {} there, {} here",
                    plan.format.name(),
                    self.plan.format.name()
                ))
                .with_note("a record is written in one format: give both files the same `format`, or none to the included one (a helper any format may include)"),
            );
            return None;
        }
        Some(Step::Include {
            plan,
            file: file.node.clone(),
            origin,
        })
    }

    /// Reads and compiles a file not included before, and keeps the result
    /// (unless an include limit stopped it: that depends on where it is included).
    fn compile_file(
        &mut self,
        file: &Spanned<String>,
        path: &Path,
        id: PathBuf,
    ) -> Option<Compiled> {
        let text = match self.load.files.read(path, Kind::Transform) {
            Ok(loaded) => loaded.text,
            Err(error) => return self.unreadable(file, path, &error),
        };
        self.load.included.bytes += text.len() as u64;
        if self.load.included.bytes > MAX_INCLUDE_BYTES {
            let note = format!(
                "the files one transform includes total at most {MAX_INCLUDE_BYTES} bytes (MAX_INCLUDE_BYTES)"
            );
            return self.limit(
                file,
                "included files are too large",
                "over the limit here",
                note,
            );
        }
        let name = path.display().to_string();
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| PathBuf::from("."));
        let mut including = self.including.to_vec();
        including.push(id.clone());
        self.load.included.depth += 1;
        let plan = syntax::parse(&text).and_then(|statements| {
            compile(
                &statements,
                &text,
                &name,
                Some(&dir),
                &including,
                self.limits,
                &mut *self.load,
            )
        });
        self.load.included.depth -= 1;
        let compiled = match plan {
            Ok(plan) => Compiled::Plan(Arc::new(plan)),
            Err(problems) => {
                if let Some(limit) = problems.iter().find(|p| p.code == Code::IncludeLimit) {
                    // Reported here, at this file's `include`, rather than nested.
                    let (message, notes) = (limit.message.clone(), limit.notes.clone());
                    self.over_limit = true;
                    let mut diagnostic = Diagnostic::new(Code::IncludeLimit, message, file.span)
                        .with_label(format!("through {name}"));
                    diagnostic.notes = notes;
                    self.errors.push(diagnostic);
                    return None;
                }
                Compiled::Invalid {
                    text: Arc::from(text),
                    problems: Arc::from(problems),
                }
            }
        };
        self.load.included.plans.insert(id, compiled.clone());
        Some(compiled)
    }

    /// Counts an included plan against the limits of depth and plans per record.
    fn account(&mut self, file: &Spanned<String>, plan: &Plan, depth: usize) -> Option<()> {
        if depth + plan.nesting.depth > MAX_INCLUDE_DEPTH {
            let note = format!(
                "an include nests at most {MAX_INCLUDE_DEPTH} levels deep (MAX_INCLUDE_DEPTH); \
                 {} nests {} more below it",
                file.node, plan.nesting.depth
            );
            return self.limit(
                file,
                "includes nest too deep",
                "too deep through here",
                note,
            );
        }
        let nesting = &mut self.plan.nesting;
        nesting.depth = nesting.depth.max(plan.nesting.depth + 1);
        nesting.plans = nesting.plans.saturating_add(plan.nesting.plans);
        // `plans` counts this plan too: the included ones are the rest.
        if nesting.plans - 1 > MAX_INCLUDED_PLANS {
            let note = format!(
                "a record runs at most {MAX_INCLUDED_PLANS} included plans (MAX_INCLUDED_PLANS), \
                 counting a file each time it is included"
            );
            return self.limit(file, "too many includes", "over the limit here", note);
        }
        Some(())
    }

    fn limit<T>(
        &mut self,
        file: &Spanned<String>,
        message: &str,
        label: &str,
        note: String,
    ) -> Option<T> {
        self.over_limit = true;
        self.errors.push(
            Diagnostic::new(Code::IncludeLimit, message, file.span)
                .with_label(label)
                .with_note(note),
        );
        None
    }

    fn unreadable<T>(
        &mut self,
        file: &Spanned<String>,
        path: &Path,
        error: &FileError,
    ) -> Option<T> {
        self.errors.push(
            Diagnostic::new(Code::IncludeFile, "included file cannot be read", file.span)
                .with_label(format!("{}: {error}", path.display())),
        );
        None
    }

    /// Whether `id` is being included around this file: a cycle, reported.
    fn cycle(&mut self, file: &Spanned<String>, id: &PathBuf) -> bool {
        let Some(at) = self.including.iter().position(|p| p == id) else {
            return false;
        };
        self.errors.push(
            Diagnostic::new(Code::IncludeCycle, "include cycle", file.span)
                .with_label("this file is already being included")
                .with_note(format!("the chain: {}", chain(&self.including[at..], id))),
        );
        true
    }
}

/// The E0702 report of an included file with problems of its own.
fn invalid(
    file: &Spanned<String>,
    name: &str,
    text: &Arc<str>,
    problems: &Arc<[Diagnostic]>,
) -> Diagnostic {
    Diagnostic::new(
        Code::IncludeInvalid,
        "included transform does not load",
        file.span,
    )
    .with_label(match problems.len() {
        1 => format!("1 problem in {name}"),
        n => format!("{n} problems in {name}"),
    })
    .with_within(FileProblems {
        name: name.to_string(),
        text: Arc::clone(text),
        diagnostics: Arc::clone(problems),
    })
}

/// `a.xf → b.xf → c.xf`: the files' names, then `last`'s.
fn chain(files: &[PathBuf], last: &Path) -> String {
    let name = |p: &Path| {
        p.file_name()
            .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
    };
    files
        .iter()
        .map(|p| name(p))
        .chain([name(last)])
        .collect::<Vec<_>>()
        .join(" → ")
}
