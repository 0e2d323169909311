//! Rendering templates per record: the run-time half of
//! [`crate::compile::Templates`].
//!
//! A template sees the record through [`RecordView`] (the leaf
//! [`crate::value::template`]), a minijinja object that reads the record in
//! place; this module gives it the names a rendering adds. A bare name is the
//! record's field first, then a column of a matched lookup row; a lookup's own
//! name (`{{ tags.index }}`) is its matched row. Record values only ever flow
//! *into* a template's output: they are never compiled or evaluated.

use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value as Mj};
use serde_json::Value as Json;

use super::Request;
use crate::compile::{Lookup, TemplateId, Templates};
use crate::value::template::{json_value, RecordView, TopNames, NOW_NAME};
use crate::value::REQUEST_NAME;

/// What a template sees besides the record: the local variables it can
/// see (by name), and what `now()` gives when the clock is fixed.
#[derive(Default)]
pub(crate) struct Bindings<'b> {
    pub locals: Vec<(&'b str, Arc<Json>)>,
    pub now: Option<i64>,
    /// What `request` reads; `None`: it is null.
    pub request: Option<&'b Request>,
}

impl Templates {
    /// Renders a template against `record`. The record is lent to the template
    /// without being copied and is back in place when this returns.
    pub(crate) fn render(
        &self,
        id: TemplateId,
        record: &mut Json,
        bindings: &Bindings<'_>,
    ) -> Result<String, String> {
        if let Some(text) = self.sole_name[id.0]
            .as_deref()
            .filter(|name| !bindings.locals.iter().any(|(local, _)| local == name))
            // `request` is never the record's field (TopLevel answers it).
            .filter(|name| *name != REQUEST_NAME)
            .and_then(|name| self.string_named(name, record, self.missing_renders_empty[id.0]))
        {
            return Ok(text);
        }
        self.render_in_minijinja(id, record, bindings)
    }

    fn render_in_minijinja(
        &self,
        id: TemplateId,
        record: &mut Json,
        bindings: &Bindings<'_>,
    ) -> Result<String, String> {
        let shared = Arc::new(std::mem::take(record));
        let top = TopLevel {
            lookups: Arc::clone(&self.lookups),
            functions: Arc::clone(&self.functions),
            locals: bindings
                .locals
                .iter()
                .map(|(name, value)| (name.to_string(), Arc::clone(value)))
                .collect(),
            now: bindings.now,
            request: bindings.request.cloned(),
        };
        let scope = RecordView::new(Arc::clone(&shared), Some(Box::new(top)));
        let result = self.render_bounded(id, Mj::from_object(scope));
        // Rendering is over, so every other handle to the record has been dropped.
        *record = Arc::try_unwrap(shared).unwrap_or_else(|still_shared| (*still_shared).clone());
        result
    }

    /// Renders with the output bounded by [`Limits::template_output`].
    fn render_bounded(&self, id: TemplateId, context: Mj) -> Result<String, String> {
        let mut out = BoundedText {
            text: Vec::new(),
            limit: self.output_limit,
            over: false,
        };
        let result = self
            .env
            .get_template(&self.names[id.0])
            .and_then(|template| template.render_captured_to(context, &mut out).map(drop));
        if out.over {
            return Err(format!(
                "template error: the output is over the limit of {} bytes (--template-output)",
                self.output_limit
            ));
        }
        result.map_err(|error| self.render_error(id, &error))?;
        // minijinja writes whole `str`s, and a write past the limit is refused whole.
        String::from_utf8(out.text).map_err(|_| "template error: output is not UTF-8".to_string())
    }

    /// What `{{ name }}` renders to when the name resolves to a string, found
    /// the way [`RecordView`] finds it, or is missing where minijinja was found
    /// to render a missing name as nothing; `None` leaves every other case to
    /// minijinja.
    fn string_named(
        &self,
        name: &str,
        record: &Json,
        missing_renders_empty: bool,
    ) -> Option<String> {
        match resolve_name(&self.lookups, record, name) {
            Named::Field(value) => value.as_str().map(str::to_string),
            Named::Column(value) => value.as_str().map(str::to_string),
            // A missing name is neither the record's, nor a row's, nor a
            // variable (those are ruled out before), nor `request`: minijinja
            // then looks among its globals, which is what was asked at load.
            Named::Missing => missing_renders_empty.then(String::new),
            // A lookup's row is never a string.
            Named::Lookup(_) => None,
        }
    }

    /// Renders a link template, where `field` and `value` are the search's terms.
    pub fn render_link(&self, id: TemplateId, field: &str, value: &str) -> Result<String, String> {
        let context = minijinja::context! { field => field, value => value };
        self.render_bounded(id, context)
    }

    /// A render error in words: which template file and line, when that helps.
    fn render_error(&self, id: TemplateId, error: &minijinja::Error) -> String {
        let detail = match error.kind() {
            minijinja::ErrorKind::OutOfFuel => {
                "the template ran out of fuel: it does more work than the limit allows \
                 (--template-fuel)"
                    .to_string()
            }
            _ => error
                .detail()
                .map_or_else(|| error.kind().to_string(), str::to_string),
        };
        let mut text = format!("template error: {detail}");
        let own = error.name() == Some(self.names[id.0].as_str());
        let mut place = Vec::new();
        if let Some(expression) = self.failing_expression(error) {
            place.push(format!("at `{expression}`"));
        }
        match (error.name(), error.line()) {
            (Some(_), Some(line)) if own && self.inline[id.0] && line > 1 => {
                place.push(format!("template line {line}"))
            }
            (Some(name), Some(line)) if !own || !self.inline[id.0] => {
                place.push(format!("in {name}, line {line}"))
            }
            _ => {}
        }
        if !place.is_empty() {
            text.push_str(&format!(" ({})", place.join(", ")));
        }
        text
    }

    /// The text of the expression a render error happened in (`x + 1`), so
    /// that the error names the template's variables; none when minijinja
    /// gives no place, or when the place is not one short line.
    fn failing_expression(&self, error: &minijinja::Error) -> Option<String> {
        let text = self.author_text(error.name()?, error.range()?)?;
        let text = text.trim();
        let short = !text.is_empty() && text.len() <= 80 && !text.contains('\n');
        short.then(|| text.to_string())
    }
}

/// Text that a rendering writes, refused past a limit.
struct BoundedText {
    text: Vec<u8>,
    limit: usize,
    over: bool,
}

impl std::io::Write for BoundedText {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.text.len() + bytes.len() > self.limit {
            self.over = true;
            return Err(std::io::Error::other("template output over its limit"));
        }
        self.text.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The names a rendering adds above the record's fields, in this order: a
/// function's name, the fixed time, the `let` variables, then (past the
/// record's own field) a lookup's name or a matched row's column.
struct TopLevel {
    lookups: Arc<[Lookup]>,
    functions: Arc<Vec<String>>,
    /// The `let` variables the template sees: each hides a field of its name.
    locals: Vec<(String, Arc<Json>)>,
    now: Option<i64>,
    /// `request`: null when there is none (outside a server).
    request: Option<Request>,
}

impl TopNames for TopLevel {
    fn answer(&self, root: &Json, name: &str) -> Option<Option<Mj>> {
        // A bare name that is a function is the function, whatever the record holds.
        if self.functions.iter().any(|function| function == name) {
            return Some(None);
        }
        if name == NOW_NAME {
            return Some(self.now.map(Mj::from));
        }
        if name == REQUEST_NAME {
            return Some(Some(match &self.request {
                Some(request) => Mj::from_object(RequestView(request.clone())),
                None => Mj::from(()),
            }));
        }
        if let Some((_, value)) = self.locals.iter().rev().find(|(local, _)| local == name) {
            return Some(Some(json_value(value)));
        }
        match resolve_name(&self.lookups, root, name) {
            // No row renders as an empty table would: `{{ tags.index }}` is empty.
            Named::Lookup(lookup) => Some(Some(lookup.row_for(root).unwrap_or_else(empty_row))),
            Named::Column(value) => Some(Some(value)),
            Named::Field(_) | Named::Missing => None,
        }
    }
}

/// What a bare name means at the top of a template.
enum Named<'l, 'r> {
    /// A lookup's own name: its matched row.
    Lookup(&'l Lookup),
    /// The record's field.
    Field(&'r Json),
    /// A column of a matched lookup row.
    Column(Mj),
    Missing,
}

/// Resolves a bare name, in this order: a lookup's name, the record's field,
/// a column of a matched row. The one place that order is written, for both
/// [`RecordView`] and the `{{ name }}` shortcut.
fn resolve_name<'l, 'r>(lookups: &'l [Lookup], record: &'r Json, name: &str) -> Named<'l, 'r> {
    if let Some(lookup) = lookups.iter().find(|lookup| lookup.name == name) {
        return Named::Lookup(lookup);
    }
    if let Some(value) = record.get(name) {
        return Named::Field(value);
    }
    lookups
        .iter()
        .filter_map(|lookup| lookup.row_for(record))
        .filter_map(|row| row.get_attr(name).ok())
        .find(|value| !value.is_undefined())
        .map_or(Named::Missing, Named::Column)
}

/// `request` as a template reads it: the fields its records share, read in
/// place, and the record's own `index`.
#[derive(Debug)]
struct RequestView(Request);

impl Object for RequestView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Mj) -> Option<Mj> {
        let name = key.as_str()?;
        if name == "index" {
            return self.0.index().map(Mj::from);
        }
        json_value(self.0.shared())
            .get_attr(name)
            .ok()
            .filter(|value| !value.is_undefined())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut names: Vec<Mj> = match &**self.0.shared() {
            Json::Object(map) => map.keys().map(|key| Mj::from(key.as_str())).collect(),
            _ => Vec::new(),
        };
        if self.0.index().is_some() {
            names.push(Mj::from("index"));
        }
        Enumerator::Values(names)
    }

    /// `{{ request }}` prints compact JSON, as an object of the record does.
    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.to_value().to_string())
    }
}

fn empty_row() -> Mj {
    Mj::from(std::collections::BTreeMap::<String, Mj>::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;
    use crate::value::{Path, Segment};

    /// The shortcut for `{{ name }}` must give exactly what minijinja gives.
    #[test]
    fn sole_name_shortcut_renders_as_minijinja_does() {
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("t.csv");
        std::fs::write(&table, "id,tier,id_copy\n7,gold,7\n").unwrap();
        let lookup = |name: &str| {
            Lookup::load(
                name,
                &table,
                "t.csv",
                Path(vec![Segment::Key("id".into())]),
                None,
            )
            .ok()
            .unwrap()
        };
        let mut templates = Templates::new(&Limits::DEFAULT);
        templates.set_lookups(vec![lookup("row")]);
        let sources = [
            "{{ name }}",
            "{{name}}",
            "{{ tier }}",
            "{{ row }}",
            "{{ none }}",
            "{{ range }}",
            "{{ missing }}",
            "{{ id }}",
            "{{ nested }}",
            // Names minijinja may give a meaning of its own.
            "{{ loop }}",
            "{{ self }}",
            "{{ super }}",
            "{{ caller }}",
            "{{ varargs }}",
            "{{ kwargs }}",
            "{{ namespace }}",
            "{{ debug }}",
        ];
        let records = [
            r#"{"name": "a<b>&\"c", "id": "7"}"#,
            r#"{"name": null, "id": 7, "tier": "own"}"#,
            r#"{"name": 1.50, "id": "8", "nested": {"a": [1]}}"#,
            r#"{"name": true, "row": "shadowed", "range": "r"}"#,
            r#"{"name": ["x"], "id": "7", "tier": null}"#,
            r#"[1, 2]"#,
        ];
        for (i, source) in sources.iter().enumerate() {
            let id = templates
                .add(format!("t{i}"), source.to_string())
                .ok()
                .unwrap();
            let name = source.trim_matches(['{', '}', ' ']);
            let shortcut = name != "none" && !templates.functions.iter().any(|f| f == name);
            assert_eq!(templates.sole_name[id.0].is_some(), shortcut, "{source}");
            if name == "missing" {
                assert!(templates.missing_renders_empty[id.0]);
            }
            for record in records {
                let mut record: Json = serde_json::from_str(record).unwrap();
                let quick = templates.render(id, &mut record, &Bindings::default());
                let full = templates.render_in_minijinja(id, &mut record, &Bindings::default());
                assert_eq!(quick, full, "{source} on {record}");
            }
        }
    }
}
