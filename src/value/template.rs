//! Record values in templates, both ways, and xf's own template filters.
//!
//! A template sees the record through [`RecordView`], a minijinja object that
//! reads the record in place: nothing is converted up front, and only what a
//! template touches is turned into minijinja values; what a template prints
//! or hands back is turned into JSON by the rules here ([`format_value`]).
//! The environment takes these rules and filters when it is built, at load
//! ([`install`]), and renderings run them per record: so they live in this
//! leaf, which both the compile stage and the apply stage use, rather than in
//! either stage. Record values only ever flow *into* a template's output:
//! they are never compiled or evaluated.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value as Mj};
use minijinja::Environment;
use serde_json::Value as Json;

use super::{Path, Segment, TimeFormat};

/// The name under which a rendering's fixed time is found: no record field can
/// stand in for it, since the top level answers it before the record's fields.
pub(crate) const NOW_NAME: &str = "\u{0}now";

/// The filter the compile stage puts on every sum and product a template
/// writes (`(a + b)|__xf_sequence`): see [`sequence_filter`].
pub(crate) const SEQUENCE_GUARD: &str = "__xf_sequence";

/// Installs xf's printing rule, filters and `now()` in a template environment.
pub(crate) fn install(env: &mut Environment<'static>) {
    // Values print as JSON writes them (see `format_value`).
    env.set_formatter(format_value);
    // `default` stands in for null too: a null field is as absent as a missing one.
    env.add_filter("default", default_filter);
    env.add_filter("d", default_filter);
    env.add_filter("string", string_filter);
    env.add_filter("tojson", tojson_filter);
    env.add_filter("join", join_filter);
    env.add_filter("truncate", truncate_filter);
    env.add_filter("format_time", format_time_filter);
    env.add_function("now", now_function);
    env.add_filter(SEQUENCE_GUARD, sequence_filter);
}

/// What a sum or product (`a + b`, `a * n`) gave, with a list made whole.
///
/// minijinja 3.1 joins lists lazily and charges no fuel for it, so a list
/// added to itself 30 times would hold 2^30 items for a few instructions,
/// and reading it (a filter, printing, minijinja's own copy past 32 joins)
/// would run without bound. Here a list an operator made is refused when
/// its slots (half a unit of fuel each, minijinja's price of a list slot)
/// are more than the fuel left, and is otherwise built at once; minijinja
/// then charges the built list as it charges any value a filter returns. So
/// every list a template holds has been paid for. Text, numbers and tuples
/// (which minijinja builds and charges itself) pass as they are.
fn sequence_filter(state: &minijinja::State, value: Mj) -> Result<Mj, minijinja::Error> {
    use minijinja::value::ValueKind;
    if !matches!(value.kind(), ValueKind::Seq | ValueKind::Iterable) || value.is_tuple() {
        return Ok(value);
    }
    let left = state.fuel_levels().map(|(_, remaining)| remaining);
    let too_many = |items: usize| left.is_some_and(|left| items as u64 / 2 > left);
    let refused = |items: String| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!(
                "a list made with `+` or `*` would hold {items} items, more than the \
                 template's fuel allows (--template-fuel)"
            ),
        )
    };
    if let Some(length) = value.len().filter(|&length| too_many(length)) {
        return Err(refused(length.to_string()));
    }
    let mut items = Vec::with_capacity(value.len().unwrap_or(0).min(1 << 16));
    for item in value.try_iter()? {
        items.push(item);
        // A list of unknown length is counted as it is read.
        if items.len() % 4096 == 0 && too_many(items.len()) {
            return Err(refused(format!("over {}", items.len())));
        }
    }
    Ok(Mj::from(items))
}

/// What the top of a rendering's context answers before the record's own
/// fields: the names a rendering adds (variables, lookups, functions, the
/// fixed time). The apply stage gives it; this leaf knows no lookup.
pub(crate) trait TopNames: Send + Sync {
    /// `Some(answer)` when `name` is the top's to answer (`Some(None)`: it is
    /// not there, as a function's name is no value); `None` to read the
    /// record's field of that name.
    fn answer(&self, root: &Json, name: &str) -> Option<Option<Mj>>;
}

/// A view of a record (or a part of it) that minijinja reads in place.
pub(crate) struct RecordView {
    root: Arc<Json>,
    path: Vec<Segment>,
    /// Only the top-level view resolves lookup names, and gives way to functions.
    top: Option<Box<dyn TopNames>>,
}

impl fmt::Debug for RecordView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.node(), f)
    }
}

impl RecordView {
    /// A view of the whole of `root`; `top` answers names before its fields.
    pub(crate) fn new(root: Arc<Json>, top: Option<Box<dyn TopNames>>) -> Self {
        RecordView {
            root,
            path: Vec::new(),
            top,
        }
    }

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
}

/// A JSON value held apart from the record (a `let` variable) as a minijinja value.
pub(crate) fn json_value(value: &Arc<Json>) -> Mj {
    match &**value {
        Json::Array(_) | Json::Object(_) => {
            Mj::from_object(RecordView::new(Arc::clone(value), None))
        }
        Json::Null => Mj::from(()),
        Json::Bool(b) => Mj::from(*b),
        Json::Number(n) => number(n),
        Json::String(s) => Mj::from(s.as_str()),
    }
}

/// The template function `now()`: the rendering's fixed time, or the clock.
fn now_function(state: &minijinja::State) -> Mj {
    match state
        .lookup(NOW_NAME)
        .and_then(|now| i64::try_from(now).ok())
    {
        Some(now) => Mj::from(now),
        None => Mj::from(super::clock_millis()),
    }
}

/// The filter `tojson`: compact JSON, a string quoted and null as `null`.
fn tojson_filter(value: &Mj) -> Result<Mj, minijinja::Error> {
    let json = if value.is_undefined() {
        Json::Null
    } else {
        to_json(value)?
    };
    Ok(Mj::from(json.to_string()))
}

/// The filter `truncate(N)`: at most N characters, as the function.
fn truncate_filter(value: &Mj, length: usize) -> Result<Mj, minijinja::Error> {
    let text = template_text(value)?;
    Ok(Mj::from(super::truncate(&text, length)))
}

/// The filter `format_time("FORMAT")`, as the function (the format is parsed
/// per rendering here, where it is the template's own text).
fn format_time_filter(value: &Mj, format: &str) -> Result<Mj, minijinja::Error> {
    let invalid =
        |reason: String| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, reason);
    let format = TimeFormat::parse(format)
        .map_err(|reason| invalid(format!("format_time: invalid format: {reason}")))?;
    let json = to_json(value)?;
    super::format_time(&json, &format)
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
            if let Some(answer) = self
                .top
                .as_ref()
                .and_then(|top| top.answer(&self.root, name))
            {
                return answer;
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
fn format_value(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &Mj,
) -> Result<(), minijinja::Error> {
    let text = template_text(value)?;
    if matches!(state.auto_escape(), minijinja::AutoEscape::Custom(_)) {
        out.write_str(&super::url::encode_component(&text))?;
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
fn string_filter(value: &Mj) -> Result<Mj, minijinja::Error> {
    Ok(Mj::from(template_text(value)?.into_owned()))
}

/// The `join` filter, with each item's text as a template writes it
/// (`true`, empty for null, JSON for a list), not minijinja's Python words.
/// A string joins its characters; null and undefined join to empty text.
fn join_filter(value: &Mj, joiner: Option<&str>) -> Result<Mj, minijinja::Error> {
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
fn default_filter(
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
