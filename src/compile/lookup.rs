//! Lookup tables: a CSV or JSON file beside the `.xf`, read once at load time
//! and joined to each record on a key field (Armor's tags service, offline).

use std::collections::{BTreeMap, HashMap};
use std::path::Path as FsPath;

use minijinja::value::Value as Mj;
use serde_json::Value as Json;

use super::files::{Disk, Kind, Loader};
use crate::syntax::ast::{Path, Segment};

/// Why a table could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file cannot be read or parsed.
    File(String),
    /// The key column is not in the table.
    Column(String),
}

/// A table keyed by the text of one column.
#[derive(Debug)]
pub struct Lookup {
    /// The name templates use for the matched row (`{{ tags.index }}`).
    pub name: String,
    /// The record field whose value selects a row.
    pub key: Path,
    rows: HashMap<String, Mj>,
}

impl Lookup {
    /// Reads `file` (`.csv`, or `.json`: an array of objects, or an object of
    /// rows by key) and indexes it by `column` (default: the key path's last name).
    /// Messages name the file as `shown` (as the author wrote it). The file is
    /// read as [`Lookup::load_with`] reads it, confined to its own folder.
    pub fn load(
        name: &str,
        file: &FsPath,
        shown: &str,
        key: Path,
        column: Option<&str>,
    ) -> Result<Lookup, LoadError> {
        let dir = file.parent().filter(|dir| !dir.as_os_str().is_empty());
        let files = Disk::beside(dir);
        Lookup::load_with(&*files, name, file, shown, key, column)
    }

    /// [`Lookup::load`], reading the file through `files`.
    pub fn load_with(
        files: &dyn Loader,
        name: &str,
        file: &FsPath,
        shown: &str,
        key: Path,
        column: Option<&str>,
    ) -> Result<Lookup, LoadError> {
        let column = match column {
            Some(column) => column.to_string(),
            None => match key.0.last() {
                Some(Segment::Key(last)) => last.clone(),
                _ => {
                    return Err(LoadError::Column(
                        "the key path must end in a name, or give `column \"…\"`".into(),
                    ))
                }
            },
        };
        let text = files
            .read(file, Kind::Lookup)
            .map_err(|e| LoadError::File(format!("cannot read {shown}: {e}")))?
            .text;
        let is_json = file
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("json"));
        let rows = if is_json {
            json_rows(&text, &column)
        } else {
            csv_rows(&text, &column)
        }
        .map_err(|reason| {
            if reason.starts_with("no column") {
                LoadError::Column(reason)
            } else {
                LoadError::File(format!("{shown}: {reason}"))
            }
        })?;
        Ok(Lookup {
            name: name.to_string(),
            key,
            rows,
        })
    }

    /// The row matching this record's key, compared as text (`1000` matches `"1000"`).
    pub fn row_for(&self, record: &Json) -> Option<&Mj> {
        self.rows.get(key_str(self.key.get(record)?)?)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

fn csv_rows(text: &str, column: &str) -> Result<HashMap<String, Mj>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let key_index = headers
        .iter()
        .position(|h| h == column)
        .ok_or_else(|| missing_column(column, headers.iter()))?;
    let mut rows = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| e.to_string())?;
        let key = record.get(key_index).unwrap_or_default().to_string();
        let row: BTreeMap<String, Mj> = headers
            .iter()
            .zip(record.iter())
            .map(|(h, v)| (h.to_string(), Mj::from(v)))
            .collect();
        rows.insert(key, Mj::from(row));
    }
    Ok(rows)
}

fn json_rows(text: &str, column: &str) -> Result<HashMap<String, Mj>, String> {
    let table: Json = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut rows = HashMap::new();
    match table {
        Json::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                let key = item
                    .get(column)
                    .and_then(key_text)
                    .ok_or_else(|| format!("row {i} has no text or number `{column}`"))?;
                rows.insert(key, to_minijinja(&item));
            }
        }
        Json::Object(map) => {
            for (key, row) in map {
                rows.insert(key, to_minijinja(&row));
            }
        }
        _ => return Err("a JSON table is an array of objects, or an object of rows by key".into()),
    }
    Ok(rows)
}

/// A scalar as the text a table is keyed by: a string as it is, a number as
/// written in the input (arbitrary_precision keeps it: borrowed, not formatted
/// per record), a boolean as `true`/`false`. Lookups and `map` both use it.
pub fn key_str(value: &Json) -> Option<&str> {
    match value {
        Json::String(text) => Some(text),
        Json::Number(n) => Some(n.as_str()),
        Json::Bool(b) => Some(if *b { "true" } else { "false" }),
        _ => None,
    }
}

fn key_text(value: &Json) -> Option<String> {
    match value {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn missing_column<'a>(column: &str, headers: impl Iterator<Item = &'a str>) -> String {
    let headers: Vec<&str> = headers.collect();
    format!(
        "no column `{column}`; the columns are: {}",
        headers.join(", ")
    )
}

/// Table rows are converted once, at load time.
fn to_minijinja(value: &Json) -> Mj {
    match value {
        Json::Null => Mj::from(()),
        Json::Bool(b) => Mj::from(*b),
        Json::Number(n) => n
            .as_i64()
            .map(Mj::from)
            .or_else(|| n.as_u64().map(Mj::from))
            .unwrap_or_else(|| Mj::from(n.as_f64().unwrap_or(f64::NAN))),
        Json::String(s) => Mj::from(s.as_str()),
        Json::Array(items) => Mj::from(items.iter().map(to_minijinja).collect::<Vec<_>>()),
        Json::Object(map) => Mj::from(
            map.iter()
                .map(|(k, v)| (k.clone(), to_minijinja(v)))
                .collect::<BTreeMap<String, Mj>>(),
        ),
    }
}
