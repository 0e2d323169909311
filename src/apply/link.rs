//! Building search links per record: the run-time half of
//! [`crate::compile::Search`]. Each kind quotes the value in its own query
//! language, then percent-encodes it (see [`crate::compile::Search`] for the
//! link shapes).

use crate::compile::{Search, Templates};
use crate::value::url::encode_component;

impl Search {
    /// The link that searches for records whose `field` is `value`.
    pub fn link(&self, templates: &Templates, field: &str, value: &str) -> Result<String, String> {
        Ok(match self {
            Search::Kibana { base } => {
                let query = format!("{}:\"{}\"", kql_field(field), kql_quote(value));
                format!(
                    "{}/app/discover#/?_a=(query:(language:kuery,query:'{}'))",
                    base.trim_end_matches('/'),
                    encode_component(&rison_quote(&query))
                )
            }
            Search::Splunk { base } => {
                let query = format!("search {}=\"{}\"", spl_field(field), spl_quote(value));
                format!(
                    "{}/en-US/app/search/search?q={}",
                    base.trim_end_matches('/'),
                    encode_component(&query)
                )
            }
            Search::Custom { template } => templates.render_link(*template, field, value)?,
        })
    }
}

/// Inside a KQL quoted string, `\` and `"` are escaped with a backslash.
fn kql_quote(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A KQL field name escapes the characters KQL gives a meaning to.
fn kql_field(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    for c in field.chars() {
        if matches!(
            c,
            '\\' | '(' | ')' | ':' | '<' | '>' | '"' | '*' | '{' | '}'
        ) || c.is_whitespace()
        {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Rison strings are `'…'` with `!` and `'` escaped by `!`.
fn rison_quote(text: &str) -> String {
    text.replace('!', "!!").replace('\'', "!'")
}

/// Inside an SPL quoted string, `\` and `"` are escaped with a backslash.
fn spl_quote(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// SPL field names with characters beyond `[A-Za-z0-9_.]` are single-quoted.
fn spl_field(field: &str) -> String {
    if field
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        field.to_string()
    } else {
        format!("'{}'", field.replace('\'', "\\'"))
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
