//! Joining a record to a lookup table: the run-time half of
//! [`crate::compile::Lookup`]. A row becomes a minijinja value only when a
//! template reads it.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value as Mj};
use serde_json::Value as Json;

use crate::compile::lookup::Table;
use crate::compile::Lookup;
use crate::value::key_str;

impl Lookup {
    /// The row matching this record's key, compared as text (`1000` matches
    /// `"1000"`), as a minijinja value made now: a map of its columns.
    pub fn row_for(&self, record: &Json) -> Option<Mj> {
        let row = self.table.find(key_str(self.key.get(record)?)?)?;
        Some(match self.table.columns {
            Some(_) => Mj::from_object(Row {
                table: Arc::clone(&self.table),
                row,
            }),
            // The text was JSON when the table loaded.
            None => {
                let text = self.table.cell(row, 1);
                serde_json::from_str::<Json>(text).map_or(Mj::UNDEFINED, |mut row| {
                    if crate::number::has_exponent(&row) {
                        crate::number::restore_exponents(text, &mut row);
                    }
                    to_minijinja(&row)
                })
            }
        })
    }
}

impl Lookup {
    /// The row matching this record's key as JSON, for expressions and
    /// conditions (`tags.team`): a CSV row is an object of its columns' text,
    /// a JSON table's row is the value it holds (numbers as written).
    pub fn row_json(&self, record: &Json) -> Option<Json> {
        let row = self.table.find(key_str(self.key.get(record)?)?)?;
        match &self.table.columns {
            Some(columns) => Some(Json::Object(
                columns
                    .iter()
                    .map(|(name, at)| {
                        let cell = self.table.cell(row, *at);
                        (name.to_string(), Json::String(cell.to_string()))
                    })
                    .collect(),
            )),
            None => serde_json::from_str(self.table.cell(row, 1)).ok(),
        }
    }
}

/// A matched CSV row, as templates see it: a map of its columns to their text.
#[derive(Debug)]
struct Row {
    table: Arc<Table>,
    row: u32,
}

impl Row {
    fn columns(&self) -> &[(Box<str>, usize)] {
        self.table.columns.as_deref().unwrap_or_default()
    }
}

impl Object for Row {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Mj) -> Option<Mj> {
        let name = key.as_str()?;
        let columns = self.columns();
        let at = columns
            .binary_search_by(|(column, _)| (**column).cmp(name))
            .ok()?;
        Some(Mj::from(self.table.cell(self.row, columns[at].1)))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let names = self.columns().iter().map(|(name, _)| Mj::from(&**name));
        Enumerator::Values(names.collect())
    }
}

/// A JSON row as a minijinja value, made when a record matches it.
fn to_minijinja(value: &Json) -> Mj {
    match value {
        Json::Null => Mj::from(()),
        Json::Bool(b) => Mj::from(*b),
        // As templates print a record's numbers: exactly, as written.
        Json::Number(n) => crate::value::template::number(n),
        Json::String(s) => Mj::from(s.as_str()),
        Json::Array(items) => Mj::from(items.iter().map(to_minijinja).collect::<Vec<_>>()),
        Json::Object(map) => Mj::from(
            map.iter()
                .map(|(k, v)| (k.clone(), to_minijinja(v)))
                .collect::<BTreeMap<String, Mj>>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{Path, Segment};

    fn table(name: &str, text: &str) -> Lookup {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let key = Path(vec![Segment::Key("id".into())]);
        Lookup::load("t", &file, name, key, None).unwrap()
    }

    /// A row renders in templates exactly as the map of its columns would.
    #[test]
    fn a_row_reads_as_the_map_of_its_columns() {
        let lookup = table(
            "t.csv",
            "id , b,a,dup,dup\n 7 , x y ,1,first,last\n8,,2,3,4\n",
        );
        let mut env = minijinja::Environment::new();
        let templates = [
            "{{ t }}",
            "{{ t.b }}|{{ t.a }}|{{ t.id }}|{{ t.dup }}|{{ t.nope }}",
            "{{ t | length }}",
            "{% for k, v in t | items %}{{ k }}={{ v }};{% endfor %}",
            "{% for k in t %}{{ k }},{% endfor %}",
            "{{ t is mapping }} {{ t['b'] }} {{ t.a == '1' }} {{ t | list }}",
        ];
        for (i, source) in templates.iter().enumerate() {
            env.add_template_owned(format!("t{i}"), source.to_string())
                .unwrap();
        }
        let expected = BTreeMap::from([
            ("id".to_string(), Mj::from("7")),
            ("b".to_string(), Mj::from("x y")),
            ("a".to_string(), Mj::from("1")),
            ("dup".to_string(), Mj::from("last")),
        ]);
        let row = lookup.row_for(&serde_json::json!({"id": 7})).unwrap();
        for (i, source) in templates.iter().enumerate() {
            let template = env.get_template(&format!("t{i}")).unwrap();
            let got = template
                .render(minijinja::context! { t => row.clone() })
                .unwrap();
            let want = template
                .render(minijinja::context! { t => Mj::from(expected.clone()) })
                .unwrap();
            assert_eq!(got, want, "{source}");
        }
        assert!(lookup.row_for(&serde_json::json!({"id": "9"})).is_none());
        assert_eq!(lookup.len(), 2);
    }

    #[test]
    fn keys_match_as_text_and_the_last_row_of_a_key_wins() {
        let lookup = table("t.csv", "id,v\n1000,a\n2,b\n1000,c\ntrue,d\n");
        let value = |record: serde_json::Value| {
            let row = lookup.row_for(&record)?;
            Some(row.get_attr("v").ok()?.to_string())
        };
        assert_eq!(value(serde_json::json!({"id": 1000})).as_deref(), Some("c"));
        assert_eq!(value(serde_json::json!({"id": "2"})).as_deref(), Some("b"));
        assert_eq!(value(serde_json::json!({"id": true})).as_deref(), Some("d"));
        assert_eq!(value(serde_json::json!({"id": 3})), None);
        assert_eq!(lookup.len(), 3);
    }

    #[test]
    fn json_table_numbers_key_and_print_as_written() {
        let lookup = table(
            "rows.json",
            r#"[{"id": 1E2, "big": 18446744073709551617, "e": 2.5E-3}]"#,
        );
        let record: Json = serde_json::from_str(r#"{"id": 1E2}"#).unwrap();
        let mut record = record;
        crate::number::restore_exponents(r#"{"id": 1E2}"#, &mut record);
        let row = lookup.row_for(&record).expect("1E2 matches 1E2");
        assert_eq!(
            row.get_attr("big").unwrap().to_string(),
            "18446744073709551617"
        );
        // As a record's 1E2 prints in a template: exactly 100, as a float.
        assert_eq!(row.get_attr("id").unwrap().to_string(), "100.0");
    }

    #[test]
    fn json_tables_keep_their_rows_values() {
        let rows = r#"[{"id": 1, "n": 1.5, "tags": ["a"], "o": {"k": null}}, {"id": "x", "n": 2}]"#;
        let by_key = r#"{"1": {"n": 1.5, "tags": ["a"], "o": {"k": null}}, "x": {"n": 2}}"#;
        for (name, text) in [("rows.json", rows), ("keys.json", by_key)] {
            let lookup = table(name, text);
            let row = lookup.row_for(&serde_json::json!({"id": 1})).unwrap();
            assert_eq!(row.get_attr("n").unwrap().to_string(), "1.5");
            assert_eq!(row.get_attr("tags").unwrap(), Mj::from(vec![Mj::from("a")]));
            let o = row.get_attr("o").unwrap();
            assert!(o.get_attr("k").unwrap().is_none());
            let x = lookup.row_for(&serde_json::json!({"id": "x"})).unwrap();
            assert_eq!(x.get_attr("n").unwrap(), Mj::from(2));
            assert_eq!(lookup.len(), 2);
        }
    }

    /// An object of rows by key read as JSON reads it: of a key written
    /// twice, the last row is the one (whatever map hashes the keys).
    #[test]
    fn a_json_object_table_keeps_the_last_row_of_a_key() {
        let lookup = table(
            "keys.json",
            r#"{"1": {"n": 1}, "2": {"n": 2}, "1": {"n": 3}}"#,
        );
        let n = |id: serde_json::Value| {
            let row = lookup.row_for(&serde_json::json!({ "id": id }))?;
            Some(row.get_attr("n").ok()?.to_string())
        };
        assert_eq!(n(serde_json::json!(1)).as_deref(), Some("3"));
        assert_eq!(n(serde_json::json!("2")).as_deref(), Some("2"));
        assert_eq!(n(serde_json::json!(4)), None);
        assert_eq!(lookup.len(), 2);
    }
}
