//! `include "FILE.xf"`: another transform, compiled on its own and run in place.
//!
//! An included file is a whole transform: its lookups, searches, templates
//! and schemas are its own, found beside it, and its `events` filter holds
//! where it is included. Its `name` is not the including transform's. Its
//! format must be the including one's, since one record gets one envelope.

use std::path::PathBuf;

use super::{compile, Compiler, Origin, Step};
use crate::diagnostic::{self, Code, Diagnostic};
use crate::syntax::{self, ast::Spanned};

impl Compiler<'_> {
    pub(super) fn include(&mut self, file: &Spanned<String>, line: usize) -> Option<Step> {
        let path = match self.base_dir {
            Some(dir) => dir.join(&file.node),
            None => PathBuf::from(&file.node),
        };
        let read = std::fs::canonicalize(&path)
            .and_then(|canonical| Ok((std::fs::read_to_string(&path)?, canonical)));
        let (text, canonical) = match read {
            Ok(read) => read,
            Err(error) => {
                self.errors.push(
                    Diagnostic::new(Code::IncludeFile, "included file cannot be read", file.span)
                        .with_label(format!("{}: {error}", path.display())),
                );
                return None;
            }
        };
        if let Some(at) = self.including.iter().position(|p| *p == canonical) {
            let chain: Vec<String> = self.including[at..]
                .iter()
                .chain([&canonical])
                .map(|p| {
                    p.file_name()
                        .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
                })
                .collect();
            self.errors.push(
                Diagnostic::new(Code::IncludeCycle, "include cycle", file.span)
                    .with_label("this file is already being included")
                    .with_note(format!("the chain: {}", chain.join(" → "))),
            );
            return None;
        }
        let name = path.display().to_string();
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| PathBuf::from("."));
        let mut including = self.including.to_vec();
        including.push(canonical);
        let plan = syntax::parse(&text).and_then(|statements| {
            compile(
                &statements,
                &text,
                &name,
                Some(&dir),
                &including,
                self.limits,
            )
        });
        let plan = match plan {
            Ok(plan) => plan,
            Err(problems) => {
                self.errors.push(
                    Diagnostic::new(
                        Code::IncludeInvalid,
                        "included transform does not load",
                        file.span,
                    )
                    .with_label(match problems.len() {
                        1 => format!("1 problem in {name}"),
                        n => format!("{n} problems in {name}"),
                    })
                    .with_note(diagnostic::render(&name, &text, &problems).trim_end()),
                );
                return None;
            }
        };
        if plan.format != self.plan.format {
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
                .with_note("a record is written in one format: give both files the same `format`"),
            );
            return None;
        }
        Some(Step::Include {
            plan: Box::new(plan),
            file: file.node.clone(),
            origin: Origin {
                statement: "include",
                line,
            },
        })
    }
}
