//! Which of a record's top-level fields a plan can see: read, write, remove,
//! test or print. The others pass through a run untouched, so a reader may
//! keep them as the bytes they came in and a writer copy those bytes back
//! ([`crate::value::untouched`]) instead of parsing and writing them again.
//!
//! The answer must never leave out a field the run could see: every statement,
//! condition, expression and template is walked, every match below is
//! exhaustive (a new statement or expression does not compile until it is
//! counted here), and anything that sees the record as a whole (`validate`,
//! `nest`, `fan_out`, a template that reaches another template or calls
//! `debug()`, a path that starts with an index, a `rename` of a top-level
//! field) answers "all of them".

use super::{Call, Cond, EventType, Expr, Format, Operand, Plan, Step};
use crate::value::untouched::FieldSet;
use crate::value::{Path, Segment};

/// The top-level fields `plan` can see, or `None` when it can see them all.
pub fn fields_seen(plan: &Plan) -> Option<FieldSet> {
    let mut seen = Seen::default();
    seen.plan(plan);
    (!seen.everything).then_some(seen.fields)
}

#[derive(Default)]
struct Seen {
    fields: FieldSet,
    everything: bool,
}

impl Seen {
    fn plan(&mut self, plan: &Plan) {
        if plan.events.is_some() {
            EventType::FIELDS.iter().for_each(|name| self.field(name));
        }
        if plan.format == Format::Splunk {
            // The HEC time when no `hec time` is given (`HecParts::wrap`).
            self.field("startTime");
        }
        for path in &plan.removals {
            self.path(path);
        }
        self.steps(plan, &plan.steps);
    }

    fn field(&mut self, name: &str) {
        if !self.fields.contains(name) {
            self.fields.insert(name.to_string());
        }
    }

    fn path(&mut self, path: &Path) {
        match path.0.first() {
            Some(Segment::Key(key)) => self.field(key),
            Some(Segment::Index(_)) | None => self.everything = true,
        }
    }

    fn steps(&mut self, plan: &Plan, steps: &[Step]) {
        for step in steps {
            self.step(plan, step);
        }
    }

    fn step(&mut self, plan: &Plan, step: &Step) {
        match step {
            Step::Set { target, value, .. } | Step::Append { target, value, .. } => {
                self.path(target);
                self.expr(plan, value);
            }
            // Its paths are in `plan.removals`.
            Step::Remove { .. } => {}
            Step::Url { target, from, .. } => {
                self.path(target);
                self.path(from);
            }
            Step::Drop { condition, .. } => {
                if let Some(condition) = condition {
                    self.cond(plan, condition);
                }
            }
            Step::Let { value, .. } | Step::Hec { value, .. } => self.expr(plan, value),
            Step::Fail { message, .. } => self.expr(plan, message),
            Step::When {
                condition,
                then,
                otherwise,
                ..
            } => {
                self.cond(plan, condition);
                self.steps(plan, then);
                self.steps(plan, otherwise);
            }
            Step::Rename { from, to, .. } => {
                // A top-level field renamed away could be added back later,
                // at the end instead of its place: the writer could not
                // tell where it goes (see `crate::value::untouched`).
                self.everything |= from.0.len() == 1;
                self.path(from);
                self.path(to);
            }
            Step::For {
                name, over, body, ..
            } => {
                // The item is bound as a field of the record while the body runs.
                self.field(name);
                self.path(over);
                self.steps(plan, body);
            }
            Step::Validate { .. } | Step::Nest { .. } | Step::FanOut { .. } => {
                self.everything = true
            }
            Step::Include { plan, .. } => self.plan(plan),
        }
    }

    fn cond(&mut self, plan: &Plan, cond: &Cond) {
        match cond {
            Cond::Or(conds) | Cond::And(conds) => {
                conds.iter().for_each(|cond| self.cond(plan, cond));
            }
            Cond::Not(cond) => self.cond(plan, cond),
            Cond::Exists(operand)
            | Cond::In(operand, _, _)
            | Cond::Matches(operand, _)
            | Cond::IsNull(operand, _) => self.operand(plan, operand),
            Cond::Compare(left, _, right) | Cond::Text(left, _, right) => {
                self.operand(plan, left);
                self.operand(plan, right);
            }
            Cond::Quantified {
                over, condition, ..
            } => {
                self.operand(plan, over);
                self.cond(plan, condition);
            }
        }
    }

    fn operand(&mut self, plan: &Plan, operand: &Operand) {
        self.expr(plan, &operand.expr);
    }

    fn expr(&mut self, plan: &Plan, expr: &Expr) {
        match expr {
            Expr::Literal(_) | Expr::Request(_) | Expr::Local { .. } => {}
            Expr::Path(path) => self.path(path),
            Expr::Lookup { lookup, .. } => {
                let key = plan.templates.lookups()[*lookup].key.clone();
                self.path(&key);
            }
            Expr::Template { id, .. } => {
                match plan.templates.names_read(*id) {
                    Some(names) => names.iter().for_each(|name| self.field(name)),
                    None => self.everything = true,
                }
                // A name no field answers falls to the lookups' matched rows,
                // which are found by their key fields.
                for lookup in plan.templates.lookups() {
                    self.path(&lookup.key);
                }
            }
            Expr::Object(members) => members.iter().for_each(|(_, e)| self.expr(plan, e)),
            Expr::Array(items) => items.iter().for_each(|e| self.expr(plan, e)),
            Expr::Call(call) => self.call(plan, call),
        }
    }

    fn call(&mut self, plan: &Plan, call: &Call) {
        match call {
            Call::Now => {}
            Call::EpochMs(e)
            | Call::Number(e)
            | Call::String(e)
            | Call::ParseTime(e, _)
            | Call::FormatTime(e, _) => self.expr(plan, e),
            Call::Map { subject, .. }
            | Call::RegexCapture { subject, .. }
            | Call::RegexReplace { subject, .. } => self.expr(plan, subject),
            Call::Coalesce(args) | Call::Text(_, args) => {
                args.iter().for_each(|e| self.expr(plan, e))
            }
        }
    }
}
