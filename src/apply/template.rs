//! Rendering templates per record: the run-time half of
//! [`crate::compile::Templates`].
//!
//! A template sees the record through [`RecordView`], a minijinja object that
//! reads the record in place: nothing is converted up front, and only what a
//! template touches is turned into minijinja values. A bare name is the
//! record's field first, then a column of a matched lookup row; a lookup's own
//! name (`{{ tags.index }}`) is its matched row. Record values only ever flow
//! *into* a template's output: they are never compiled or evaluated.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value as Mj};
use serde_json::Value as Json;

use crate::compile::{Lookup, TemplateId, Templates};
use crate::value::{Path, Segment};

/// What a template sees besides the record: the local variables it can
/// see (by name), and what `now()` gives when the clock is fixed.
#[derive(Default)]
pub(crate) struct Bindings<'b> {
    pub locals: Vec<(&'b str, Arc<Json>)>,
    pub now: Option<i64>,
}

/// The name under which a rendering's fixed time is found: no record field can
/// stand in for it, since the top level answers it before the record's fields.
const NOW_NAME: &str = "\u{0}now";

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
            .and_then(|name| self.string_named(name, record))
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
        let scope = RecordView {
            root: Arc::clone(&shared),
            path: Vec::new(),
            top: Some(TopLevel {
                lookups: Arc::clone(&self.lookups),
                functions: Arc::clone(&self.functions),
                locals: bindings
                    .locals
                    .iter()
                    .map(|(name, value)| (name.to_string(), Arc::clone(value)))
                    .collect(),
                now: bindings.now,
            }),
        };
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
    /// the way [`RecordView`] finds it; `None` leaves every other case to minijinja.
    fn string_named(&self, name: &str, record: &Json) -> Option<String> {
        match resolve_name(&self.lookups, record, name) {
            Named::Field(value) => value.as_str().map(str::to_string),
            Named::Column(value) => value.as_str().map(str::to_string),
            // A lookup's row is never a string; a missing name may be a global.
            Named::Lookup(_) | Named::Missing => None,
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
        let range = error.range()?;
        let template = self.env.get_template(error.name()?).ok()?;
        let text = template.source().get(range)?.trim();
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

/// A view of a record (or a part of it) that minijinja reads in place.
struct RecordView {
    root: Arc<Json>,
    path: Vec<Segment>,
    /// Only the top-level view resolves lookup names, and gives way to functions.
    top: Option<TopLevel>,
}

struct TopLevel {
    lookups: Arc<[Lookup]>,
    functions: Arc<Vec<String>>,
    /// The `let` variables the template sees: each hides a field of its name.
    locals: Vec<(String, Arc<Json>)>,
    now: Option<i64>,
}

impl fmt::Debug for RecordView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.node(), f)
    }
}

impl RecordView {
    fn node(&self) -> &Json {
        Path::get_segments(&self.path, &self.root).unwrap_or(&Json::Null)
    }

    fn child(&self, segment: Segment) -> Mj {
        let mut path = self.path.clone();
        path.push(segment);
        let node = Path::get_segments(&path, &self.root);
        match node {
            None => Mj::UNDEFINED,
            Some(Json::Null) => Mj::from(()),
            Some(Json::Bool(b)) => Mj::from(*b),
            Some(Json::Number(n)) => number(n),
            Some(Json::String(s)) => Mj::from(s.as_str()),
            Some(Json::Array(_) | Json::Object(_)) => Mj::from_object(RecordView {
                root: Arc::clone(&self.root),
                path,
                top: None,
            }),
        }
    }

    /// A name that is no field of the record: a lookup's row, or one of its columns.
    fn lookup_name(&self, name: &str) -> Option<Mj> {
        match resolve_name(&self.top.as_ref()?.lookups, &self.root, name) {
            // No row renders as an empty table would: `{{ tags.index }}` is empty.
            Named::Lookup(lookup) => Some(lookup.row_for(&self.root).unwrap_or_else(empty_row)),
            Named::Column(value) => Some(value),
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

fn empty_row() -> Mj {
    Mj::from(std::collections::BTreeMap::<String, Mj>::new())
}

/// A JSON value held apart from the record (a `let` variable) as a minijinja value.
fn json_value(value: &Arc<Json>) -> Mj {
    match &**value {
        Json::Array(_) | Json::Object(_) => Mj::from_object(RecordView {
            root: Arc::clone(value),
            path: Vec::new(),
            top: None,
        }),
        Json::Null => Mj::from(()),
        Json::Bool(b) => Mj::from(*b),
        Json::Number(n) => number(n),
        Json::String(s) => Mj::from(s.as_str()),
    }
}

/// The template function `now()`: the rendering's fixed time, or the clock.
pub(crate) fn now_function(state: &minijinja::State) -> Mj {
    match state
        .lookup(NOW_NAME)
        .and_then(|now| i64::try_from(now).ok())
    {
        Some(now) => Mj::from(now),
        None => Mj::from(super::expr::clock_millis()),
    }
}

/// The filter `tojson`: compact JSON, a string quoted and null as `null`.
pub(crate) fn tojson_filter(value: &Mj) -> Result<Mj, minijinja::Error> {
    let json = if value.is_undefined() {
        Json::Null
    } else {
        to_json(value)?
    };
    Ok(Mj::from(json.to_string()))
}

/// The filter `truncate(N)`: at most N characters, as the function.
pub(crate) fn truncate_filter(value: &Mj, length: usize) -> Result<Mj, minijinja::Error> {
    let text = template_text(value)?;
    Ok(Mj::from(super::functions::truncate(&text, length)))
}

/// The filter `format_time("FORMAT")`, as the function (the format is parsed
/// per rendering here, where it is the template's own text).
pub(crate) fn format_time_filter(value: &Mj, format: &str) -> Result<Mj, minijinja::Error> {
    let invalid =
        |reason: String| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, reason);
    let format = crate::compile::TimeFormat::parse(format)
        .map_err(|reason| invalid(format!("format_time: invalid format: {reason}")))?;
    let json = to_json(value)?;
    super::functions::format_time(&json, &format)
        .map(Mj::from)
        .map_err(|reason| invalid(format!("format_time: {reason}")))
}

/// A JSON number as a minijinja value of the same value: an integer that fits
/// i128 or u128 as that integer; another number as an f64 only when the f64 is
/// exactly it (its shortest decimal is the same value: `0.5`, `1e300`);
/// otherwise the text as written (`18446744073709551617.5`, `1E-400`), since
/// any float would print another number.
pub(crate) fn number(n: &serde_json::Number) -> Mj {
    if let Some(i) = n.as_i64() {
        Mj::from(i)
    } else if let Some(u) = n.as_u64() {
        Mj::from(u)
    } else if let Some(i) = n.as_i128() {
        Mj::from(i)
    } else if let Some(u) = n.as_u128() {
        Mj::from(u)
    } else {
        match n.as_f64() {
            Some(f) if crate::number::is_exact_f64(n.as_str(), f) => Mj::from(f),
            _ => Mj::from(n.as_str()),
        }
    }
}

impl Object for RecordView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.node() {
            Json::Array(_) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &Mj) -> Option<Mj> {
        if let Some(name) = key.as_str() {
            if let Some(top) = &self.top {
                // A bare name that is a function is the function, whatever the record holds.
                if top.functions.iter().any(|function| function == name) {
                    return None;
                }
                if name == NOW_NAME {
                    return top.now.map(Mj::from);
                }
                if let Some((_, value)) = top.locals.iter().rev().find(|(local, _)| local == name) {
                    return Some(json_value(value));
                }
            }
            if let Some(found) = self.lookup_name(name) {
                return Some(found);
            }
            let value = self.child(Segment::Key(name.to_string()));
            return (!value.is_undefined()).then_some(value);
        }
        let index = i64::try_from(key.clone()).ok()?;
        let value = self.child(Segment::Index(index));
        (!value.is_undefined()).then_some(value)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.node() {
            Json::Array(items) => Enumerator::Seq(items.len()),
            Json::Object(map) => {
                Enumerator::Values(map.keys().map(|k| Mj::from(k.as_str())).collect())
            }
            _ => Enumerator::Empty,
        }
    }

    fn is_true(self: &Arc<Self>) -> bool {
        match self.node() {
            Json::Array(items) => !items.is_empty(),
            Json::Object(map) => !map.is_empty(),
            _ => false,
        }
    }

    /// `{{ some_object }}` prints compact JSON, the form a reader expects in a message.
    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&serde_json::to_string(self.node()).map_err(|_| fmt::Error)?)
    }
}

/// How a value prints in a template: as JSON writes it. Null and undefined
/// print nothing, booleans `true`/`false`, strings as they are, numbers as
/// their value ([`number`]), arrays and objects as compact JSON. In a link
/// template the text is then one percent-encoded URL component.
pub(crate) fn format_value(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &Mj,
) -> Result<(), minijinja::Error> {
    let text = template_text(value)?;
    if matches!(state.auto_escape(), minijinja::AutoEscape::Custom(_)) {
        out.write_str(&crate::value::url::encode_component(&text))?;
    } else {
        out.write_str(&text)?;
    }
    Ok(())
}

/// A value's text in a template's output (see [`format_value`]).
fn template_text(value: &Mj) -> Result<std::borrow::Cow<'_, str>, minijinja::Error> {
    use minijinja::value::ValueKind;
    Ok(match value.kind() {
        ValueKind::Undefined | ValueKind::None => "".into(),
        // minijinja prints Python's `True`; JSON's is `true`.
        ValueKind::Bool if value.is_true() => "true".into(),
        ValueKind::Bool => "false".into(),
        ValueKind::String => value.as_str().unwrap_or_default().into(),
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => {
            serde_json::to_string(&to_json(value)?)
                .map_err(|error| {
                    minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, error.to_string())
                })?
                .into()
        }
        ValueKind::Plain => return Err(function_printed()),
        _ => value.to_string().into(),
    })
}

/// A function (`{{ range }}`) is no value: printing its Rust name would leak
/// internals into a message, so it is an error to print one.
fn function_printed() -> minijinja::Error {
    minijinja::Error::new(
        minijinja::ErrorKind::InvalidOperation,
        "a function cannot be printed; call it, with parentheses",
    )
}

/// A template value as JSON. A part of the record is taken as it is (its
/// numbers as written); what a template built (`[a, b]`, `x | list`) is
/// converted item by item, undefined becoming null.
fn to_json(value: &Mj) -> Result<Json, minijinja::Error> {
    use minijinja::value::ValueKind;
    if let Some(view) = value.downcast_object_ref::<RecordView>() {
        return Ok(view.node().clone());
    }
    Ok(match value.kind() {
        ValueKind::Undefined | ValueKind::None => Json::Null,
        ValueKind::Bool => Json::Bool(value.is_true()),
        ValueKind::String | ValueKind::Bytes => Json::String(value.to_string()),
        ValueKind::Number => {
            let text = value.to_string();
            // `inf` and `NaN` have no JSON spelling.
            match serde_json::from_str::<serde_json::Number>(&text) {
                Ok(_) => Json::Number(crate::number::as_written(&text)),
                Err(_) => Json::Null,
            }
        }
        ValueKind::Map => {
            let mut object = serde_json::Map::new();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                object.insert(template_text(&key)?.into_owned(), to_json(&item)?);
            }
            Json::Object(object)
        }
        ValueKind::Seq | ValueKind::Iterable => Json::Array(
            value
                .try_iter()?
                .map(|item| to_json(&item))
                .collect::<Result<_, _>>()?,
        ),
        ValueKind::Plain => return Err(function_printed()),
        _ => Json::String(value.to_string()),
    })
}

/// The `string` filter: a value's text as the template would print it
/// (`true`, not minijinja's `True`; an array as JSON).
pub(crate) fn string_filter(value: &Mj) -> Result<Mj, minijinja::Error> {
    Ok(Mj::from(template_text(value)?.into_owned()))
}

/// The `join` filter, with each item's text as a template writes it
/// (`true`, empty for null, JSON for a list), not minijinja's Python words.
/// A string joins its characters; null and undefined join to empty text.
pub(crate) fn join_filter(value: &Mj, joiner: Option<&str>) -> Result<Mj, minijinja::Error> {
    use minijinja::value::ValueKind;
    let parts: Vec<String> = match value.kind() {
        ValueKind::Undefined | ValueKind::None => Vec::new(),
        ValueKind::String => {
            let text = value.as_str().unwrap_or_default();
            text.chars().map(String::from).collect()
        }
        ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => value
            .try_iter()?
            .map(|item| template_text(&item).map(|text| text.into_owned()))
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("join takes a list, not {}", value.kind()),
            ))
        }
    };
    Ok(Mj::from(parts.join(joiner.unwrap_or(""))))
}

/// The `default` filter (and `d`), for which null is as absent as undefined:
/// `{{ description | default("none given") }}` covers a null description.
pub(crate) fn default_filter(
    state: &minijinja::State,
    value: &Mj,
    args: minijinja::value::Rest<Mj>,
) -> Result<Mj, minijinja::Error> {
    let value = if value.is_none() {
        &Mj::UNDEFINED
    } else {
        value
    };
    minijinja::filters::default(state, value, args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

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
            let shortcut = !matches!(*source, "{{ none }}" | "{{ range }}");
            assert_eq!(templates.sole_name[id.0].is_some(), shortcut);
            for record in records {
                let mut record: Json = serde_json::from_str(record).unwrap();
                let quick = templates.render(id, &mut record, &Bindings::default());
                let full = templates.render_in_minijinja(id, &mut record, &Bindings::default());
                assert_eq!(quick, full, "{source} on {record}");
            }
        }
    }
}
