//! Lookup tables: a CSV or JSON file beside the `.xf`, read once at load time
//! and joined to each record on a key field (Armor's tags service, offline).
//!
//! A table is kept compact, a small multiple of its file's size: all cell text
//! in one string, the end of each cell, and the rows ordered by key for a
//! binary search. A JSON row is kept as its JSON text. The minijinja value of
//! a row is made only for a matched row, when a template reads it (the
//! apply stage's half: [`crate::apply`]'s `lookup` module).

use std::collections::HashMap;
use std::fmt;
use std::path::Path as FsPath;
use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::Value as Json;

use crate::files::{Disk, Kind, Loader};
use crate::value::{Path, Segment};

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
    pub(crate) table: Arc<Table>,
    /// Keys found on more than one row, each with where its rows are
    /// (`lines 2 and 5`): only the last row is used, which the author may
    /// not expect (a warning, W0004).
    pub duplicates: Vec<(String, String)>,
}

/// The rows of a table: `width` cells each, the first its key.
pub(crate) struct Table {
    /// A CSV table's columns by name (sorted), each with its cell in a row;
    /// for a JSON table, `None`: a row's second cell is its JSON text.
    pub(crate) columns: Option<Vec<(Box<str>, usize)>>,
    pub(crate) width: usize,
    /// Every cell's text, row after row.
    pub(crate) text: String,
    /// Where each cell ends in `text` (a cell starts where the one before ends).
    pub(crate) ends: Vec<u32>,
    /// Rows ordered by key; of rows with one key, only the last is kept.
    pub(crate) order: Vec<u32>,
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Table({} rows)", self.order.len())
    }
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
            .map_err(|e| LoadError::File(format!("cannot read {}: {e}", resolved(file, shown))))?
            .text;
        let is_json = file
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("json"));
        let table = if is_json {
            json_table(&text, &column)
        } else {
            csv_table(&text, &column)
        }
        .map_err(|reason| {
            if reason.starts_with("no column") {
                LoadError::Column(reason)
            } else {
                LoadError::File(format!("{shown}: {reason}"))
            }
        })?;
        let (table, duplicates) = table;
        Ok(Lookup {
            name: name.to_string(),
            key,
            table: Arc::new(table),
            duplicates,
        })
    }

    pub fn len(&self) -> usize {
        self.table.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.order.is_empty()
    }
}

impl Table {
    fn new(columns: Option<Vec<(Box<str>, usize)>>, width: usize) -> Table {
        Table {
            columns,
            width,
            text: String::new(),
            ends: Vec::new(),
            order: Vec::new(),
        }
    }

    /// Adds a row of `width` cells, its key first.
    fn push<'c>(&mut self, cells: impl IntoIterator<Item = &'c str>) -> Result<(), String> {
        for cell in cells {
            self.text.push_str(cell);
            let end = u32::try_from(self.text.len()).map_err(|_| "the table is over 4 GiB")?;
            self.ends.push(end);
        }
        let row = self.ends.len() / self.width - 1;
        self.order
            .push(u32::try_from(row).map_err(|_| "the table has too many rows")?);
        Ok(())
    }

    /// Orders the rows by key, keeping the last row of each key (as a map
    /// would). Also gives each key on several rows with those rows, in order.
    fn index(mut self) -> (Table, Vec<(String, Vec<u32>)>) {
        let mut order = std::mem::take(&mut self.order);
        // Stable: rows of one key stay in input order, so the last is the latest.
        order.sort_by(|&a, &b| self.cell(a, 0).cmp(self.cell(b, 0)));
        let mut kept: Vec<u32> = Vec::with_capacity(order.len());
        let mut duplicates: Vec<(String, Vec<u32>)> = Vec::new();
        for row in order {
            match kept.last_mut() {
                Some(last) if self.cell(*last, 0) == self.cell(row, 0) => {
                    let key = self.cell(row, 0);
                    match duplicates.last_mut() {
                        Some((seen, rows)) if seen == key => rows.push(row),
                        _ => duplicates.push((key.to_string(), vec![*last, row])),
                    }
                    *last = row;
                }
                _ => kept.push(row),
            }
        }
        kept.shrink_to_fit();
        self.order = kept;
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
        duplicates.sort_by_key(|(_, rows)| rows[0]);
        (self, duplicates)
    }

    pub(crate) fn cell(&self, row: u32, column: usize) -> &str {
        let at = row as usize * self.width + column;
        let start = if at == 0 {
            0
        } else {
            self.ends[at - 1] as usize
        };
        &self.text[start..self.ends[at] as usize]
    }

    pub(crate) fn find(&self, key: &str) -> Option<u32> {
        let at = self
            .order
            .binary_search_by(|&row| self.cell(row, 0).cmp(key))
            .ok()?;
        Some(self.order[at])
    }
}

/// A table, and each key on several rows with where those rows are.
type Indexed = (Table, Vec<(String, String)>);

/// `lines 2 and 5`, `items 0, 3 and 4`: where rows of one key are.
fn places(word: &str, rows: &[u32], place: impl Fn(u32) -> u64) -> String {
    let mut numbers: Vec<String> = rows.iter().map(|&row| place(row).to_string()).collect();
    let last = numbers.pop().unwrap_or_default();
    format!("{word} {} and {last}", numbers.join(", "))
}

/// A CSV table: cell 0 is the key column's, then every column (cell i + 1).
fn csv_table(text: &str, column: &str) -> Result<Indexed, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let key_index = headers
        .iter()
        .position(|h| h == column)
        .ok_or_else(|| missing_column(column, headers.iter()))?;
    // By name, sorted; of two columns with one name, the last (as a map would keep).
    let mut by_name: Vec<(&str, usize)> = headers.iter().zip(1..).collect();
    by_name.sort_by(|a, b| a.0.cmp(b.0));
    let mut columns: Vec<(Box<str>, usize)> = Vec::new();
    for (name, cell) in by_name {
        match columns.last_mut() {
            Some(last) if &*last.0 == name => last.1 = cell,
            _ => columns.push((name.into(), cell)),
        }
    }
    let mut table = Table::new(Some(columns), headers.len() + 1);
    let mut record = csv::StringRecord::new();
    // Each row's line in the file, for warnings that name rows.
    let mut lines: Vec<u64> = Vec::new();
    while reader.read_record(&mut record).map_err(|e| e.to_string())? {
        let key = record.get(key_index).unwrap_or_default();
        table.push(std::iter::once(key).chain(record.iter()))?;
        lines.push(record.position().map_or(0, |p| p.line()));
    }
    let (table, duplicates) = table.index();
    let duplicates = duplicates
        .into_iter()
        .map(|(key, rows)| {
            let at = places("lines", &rows, |row| lines[row as usize]);
            (key, at)
        })
        .collect();
    Ok((table, duplicates))
}

/// A JSON table: each row's key, then its JSON text.
fn json_table(text: &str, column: &str) -> Result<Indexed, String> {
    let whole: &RawValue = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut table = Table::new(None, 2);
    match whole.get().as_bytes().first() {
        Some(b'[') => {
            let items: Vec<&RawValue> =
                serde_json::from_str(whole.get()).map_err(|e| e.to_string())?;
            for (i, item) in items.into_iter().enumerate() {
                let mut row: Json = serde_json::from_str(item.get()).map_err(|e| e.to_string())?;
                // Keyed as a record's number is: as written (`1E2`, not `1e+2`).
                if crate::number::has_exponent(&row) {
                    crate::number::restore_exponents(item.get(), &mut row);
                }
                let key = row
                    .get(column)
                    .and_then(key_text)
                    .ok_or_else(|| format!("row {i} has no text or number `{column}`"))?;
                table.push([key.as_str(), item.get()])?;
            }
        }
        Some(b'{') => {
            // foldhash: std's SipHash was 14 % of loading a table of 1,000,000 rows.
            let rows: HashMap<String, &RawValue, foldhash::fast::RandomState> =
                serde_json::from_str(whole.get()).map_err(|e| e.to_string())?;
            for (key, row) in rows {
                table.push([key.as_str(), row.get()])?;
            }
        }
        _ => return Err("a JSON table is an array of objects, or an object of rows by key".into()),
    }
    // An object of rows by key has one row per key (JSON's last one wins as it
    // is read); an array's items are counted from 0, as its error messages do.
    let (table, duplicates) = table.index();
    let duplicates = duplicates
        .into_iter()
        .map(|(key, rows)| (key.clone(), places("items", &rows, u64::from)))
        .collect();
    Ok((table, duplicates))
}

/// A file as the author wrote it and, when that differs, where it was
/// looked for: a relative name is found beside the `.xf` (or, for an Armor
/// config's `--tags`, in the current directory), which the name alone hides.
fn resolved(file: &FsPath, shown: &str) -> String {
    match std::path::absolute(file) {
        Ok(path) if path.as_os_str() != shown => {
            format!("{shown} (looked for at {})", path.display())
        }
        _ => shown.to_string(),
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
