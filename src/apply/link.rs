//! Building search links per record: the run-time half of
//! [`crate::compile::Search`]. Each kind quotes the value in its own query
//! language, then percent-encodes it (see [`crate::compile::Search`] for the
//! link shapes).

use crate::compile::{Search, Templates};
use crate::value::url::push_encoded;

impl Search {
    /// The link that searches for records whose `field` is `value`.
    ///
    /// Each link is written in one buffer: the query is quoted for its
    /// language as it is written, then percent-encoded onto the link (a link
    /// per record made five strings and a `format!` before: 8 % of a run).
    pub fn link(&self, templates: &Templates, field: &str, value: &str) -> Result<String, String> {
        Ok(match self {
            Search::Kibana { base } => {
                // KQL `field:"value"`, then Rison-quoted (`!` and `'` take a `!`).
                let mut query = String::with_capacity(field.len() + value.len() + 8);
                let mut rison = |c: char| {
                    if matches!(c, '!' | '\'') {
                        query.push('!');
                    }
                    query.push(c);
                };
                for c in field.chars() {
                    if kql_special(c) {
                        rison('\\');
                    }
                    rison(c);
                }
                rison(':');
                rison('"');
                for c in value.chars() {
                    if matches!(c, '\\' | '"') {
                        rison('\\');
                    }
                    rison(c);
                }
                rison('"');
                let base = base.trim_end_matches('/');
                let mut link = String::with_capacity(base.len() + 64 + query.len() * 3);
                link.push_str(base);
                link.push_str("/app/discover#/?_a=(query:(language:kuery,query:'");
                push_encoded(&mut link, &query);
                link.push_str("'))");
                link
            }
            Search::Splunk { base } => {
                // SPL `search field="value"`.
                let mut query = String::with_capacity(field.len() + value.len() + 12);
                query.push_str("search ");
                push_spl_field(&mut query, field);
                query.push_str("=\"");
                for c in value.chars() {
                    if matches!(c, '\\' | '"') {
                        query.push('\\');
                    }
                    query.push(c);
                }
                query.push('"');
                let base = base.trim_end_matches('/');
                let mut link = String::with_capacity(base.len() + 32 + query.len() * 3);
                link.push_str(base);
                link.push_str("/en-US/app/search/search?q=");
                push_encoded(&mut link, &query);
                link
            }
            Search::Custom { template } => templates.render_link(*template, field, value)?,
        })
    }
}

/// A KQL field name escapes, with a backslash, the characters KQL gives a
/// meaning to.
fn kql_special(c: char) -> bool {
    matches!(
        c,
        '\\' | '(' | ')' | ':' | '<' | '>' | '"' | '*' | '{' | '}'
    ) || c.is_whitespace()
}

/// SPL field names with characters beyond `[A-Za-z0-9_.]` are single-quoted
/// (a `'` inside escaped with a backslash).
fn push_spl_field(out: &mut String, field: &str) {
    if field
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        out.push_str(field);
    } else {
        out.push('\'');
        out.push_str(&field.replace('\'', "\\'"));
        out.push('\'');
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::compile::Templates;

    fn decode(text: &str) -> String {
        percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .unwrap()
            .into_owned()
    }

    /// Reads the value back out of a Kibana link the way Kibana does.
    fn kibana_value(link: &str) -> String {
        let inner = link
            .split("query:'")
            .nth(1)
            .unwrap()
            .strip_suffix("'))")
            .unwrap();
        let rison = decode(inner);
        // rison: `!x` stands for `x`
        let mut kql = String::new();
        let mut chars = rison.chars();
        while let Some(c) = chars.next() {
            kql.push(if c == '!' { chars.next().unwrap() } else { c });
        }
        let quoted = kql.split_once(':').unwrap().1;
        unescape(&quoted[1..quoted.len() - 1])
    }

    /// Undoes backslash escaping, as KQL and SPL read a quoted string.
    fn unescape(body: &str) -> String {
        let mut value = String::new();
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            value.push(if c == '\\' { chars.next().unwrap() } else { c });
        }
        value
    }

    /// The links spelled step by step as the module's description has them:
    /// what the one-buffer writing must equal.
    fn spelled(search: &Search, field: &str, value: &str) -> String {
        let encode = |text: &str| {
            let mut out = String::new();
            push_encoded(&mut out, text);
            out
        };
        let escape = |text: &str| text.replace('\\', "\\\\").replace('"', "\\\"");
        match search {
            Search::Kibana { base } => {
                let field: String = field
                    .chars()
                    .flat_map(|c| kql_special(c).then_some('\\').into_iter().chain([c]))
                    .collect();
                let query = format!("{field}:\"{}\"", escape(value));
                let rison = query.replace('!', "!!").replace('\'', "!'");
                format!(
                    "{}/app/discover#/?_a=(query:(language:kuery,query:'{}'))",
                    base.trim_end_matches('/'),
                    encode(&rison)
                )
            }
            Search::Splunk { base } => {
                let mut quoted = String::new();
                push_spl_field(&mut quoted, field);
                let query = format!("search {quoted}=\"{}\"", escape(value));
                format!(
                    "{}/en-US/app/search/search?q={}",
                    base.trim_end_matches('/'),
                    encode(&query)
                )
            }
            Search::Custom { .. } => unreachable!("only built-in kinds are spelled here"),
        }
    }

    fn kibana(value: &str) -> String {
        let templates = Templates::new(&crate::limits::Limits::DEFAULT);
        Search::Kibana {
            base: "https://kibana.example.com/".into(),
        }
        .link(&templates, "eventId", value)
        .unwrap()
    }

    #[test]
    fn kibana_link_has_the_documented_shape() {
        assert_eq!(
            kibana("f97b30ac"),
            "https://kibana.example.com/app/discover#/?_a=(query:(language:kuery,query:'eventId%3A%22f97b30ac%22'))"
        );
    }

    proptest! {
        #[test]
        fn links_are_written_as_spelled_step_by_step(field in any::<String>(), value in any::<String>()) {
            let templates = Templates::new(&crate::limits::Limits::DEFAULT);
            for search in [
                Search::Kibana { base: "https://kibana.example.com/".into() },
                Search::Splunk { base: "https://splunk:8000".into() },
            ] {
                let link = search.link(&templates, &field, &value).unwrap();
                prop_assert_eq!(link, spelled(&search, &field, &value));
            }
        }

        #[test]
        fn any_value_round_trips_through_a_kibana_link(value in any::<String>()) {
            let link = kibana(&value);
            prop_assert!(link.chars().all(|c| c.is_ascii_graphic()), "not a valid URL: {link}");
            prop_assert_eq!(kibana_value(&link), value);
        }

        #[test]
        fn any_value_round_trips_through_a_splunk_link(value in any::<String>()) {
            let templates = Templates::new(&crate::limits::Limits::DEFAULT);
            let link = Search::Splunk { base: "https://splunk:8000".into() }.link(&templates, "id", &value).unwrap();
            prop_assert!(link.chars().all(|c| c.is_ascii_graphic()));
            let query = decode(link.split("?q=").nth(1).unwrap());
            let quoted = query.strip_prefix("search id=\"").unwrap().strip_suffix('"').unwrap();
            prop_assert_eq!(unescape(quoted), value);
        }
    }
}
