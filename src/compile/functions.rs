//! The one table of the language's functions and the template filters and
//! functions xf adds to minijinja's. The compiler checks calls against it,
//! unknown-function diagnostics pick their "did you mean" from it, the
//! README's table is generated from it (a test checks that the README holds
//! exactly [`markdown_table`]'s text), and every row's example is run by a
//! test that expects the row's result.

/// Where a function is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionKind {
    /// In an expression (`set`, `let`, `tag add`, `hec`, conditions): `lower(x)`.
    Expression,
    /// A filter in a template: `{{ x | tojson }}`.
    Filter,
    /// A function in a template: `{{ now() }}`.
    Template,
}

/// One function: its name, how it is called, how many arguments it takes (an
/// expression's; a filter's exclude the value it filters), and an example
/// with its result.
pub struct Function {
    pub name: &'static str,
    pub kind: FunctionKind,
    pub usage: &'static str,
    pub min: usize,
    pub max: usize,
    /// An expression (for [`FunctionKind::Expression`]) or a template.
    pub example: &'static str,
    /// The example's value as JSON (an expression's), or its text (a template's).
    pub result: &'static str,
    pub meaning: &'static str,
}

use FunctionKind::{Expression, Filter, Template};

/// Every function of the language and every template filter or function xf adds.
pub const FUNCTIONS: &[Function] = &[
    Function {
        name: "epoch_ms",
        kind: Expression,
        usage: "epoch_ms(VALUE)",
        min: 1,
        max: 1,
        example: r#"epoch_ms("2024-05-01T10:00:00Z")"#,
        result: "1714557600000",
        meaning: "a time as epoch milliseconds: RFC 3339 text, or epoch s/ms/µs/ns as a number or numeric text (the `hec time` rules); other text is a record error",
    },
    Function {
        name: "number",
        kind: Expression,
        usage: "number(VALUE)",
        min: 1,
        max: 1,
        example: r#"number("42")"#,
        result: "42",
        meaning: "a number, or text holding one (kept as written); other text is a record error",
    },
    Function {
        name: "string",
        kind: Expression,
        usage: "string(VALUE)",
        min: 1,
        max: 1,
        example: r#"string([1, true])"#,
        result: r#""[1,true]""#,
        meaning: "text: a string as it is, other scalars as written, an object or array as compact JSON",
    },
    Function {
        name: "map",
        kind: Expression,
        usage: "map(VALUE, {\"KEY\": RESULT, …}[, DEFAULT])",
        min: 2,
        max: 3,
        example: r#"map(3, {"3": "Medium"}, "Unknown")"#,
        result: r#""Medium""#,
        meaning: "the table's value for VALUE (compared as text); DEFAULT (a constant) when VALUE is missing, null or not in the table; missing if there is no DEFAULT",
    },
    Function {
        name: "coalesce",
        kind: Expression,
        usage: "coalesce(VALUE, VALUE, …)",
        min: 1,
        max: usize::MAX,
        example: r#"coalesce(null, "b")"#,
        result: r#""b""#,
        meaning: "the first argument that is present and not null",
    },
    Function {
        name: "now",
        kind: Expression,
        usage: "now()",
        min: 0,
        max: 0,
        example: "now()",
        result: "1714557600000",
        meaning: "the current time in epoch ms (fixed by `xf run --now` and `Transform::fix_clock`; the example runs with it fixed)",
    },
    Function {
        name: "lower",
        kind: Expression,
        usage: "lower(TEXT)",
        min: 1,
        max: 1,
        example: r#"lower("HIGH")"#,
        result: r#""high""#,
        meaning: "the text in lower case (Unicode)",
    },
    Function {
        name: "upper",
        kind: Expression,
        usage: "upper(TEXT)",
        min: 1,
        max: 1,
        example: r#"upper("high")"#,
        result: r#""HIGH""#,
        meaning: "the text in upper case (Unicode)",
    },
    Function {
        name: "trim",
        kind: Expression,
        usage: "trim(TEXT)",
        min: 1,
        max: 1,
        example: r#"trim("  a b  ")"#,
        result: r#""a b""#,
        meaning: "the text without white space at either end",
    },
    Function {
        name: "split",
        kind: Expression,
        usage: "split(TEXT, SEPARATOR)",
        min: 2,
        max: 2,
        example: r#"split("a,b,,c", ",")"#,
        result: r#"["a","b","","c"]"#,
        meaning: "an array of the parts between separators; an empty separator splits into characters",
    },
    Function {
        name: "join",
        kind: Expression,
        usage: "join(ARRAY, SEPARATOR)",
        min: 2,
        max: 2,
        example: r#"join(["a", 1, null, true], "-")"#,
        result: r#""a-1-true""#,
        meaning: "the items as text (as `string` writes them), nulls left out, with SEPARATOR between; a single value that is not an array is one item",
    },
    Function {
        name: "replace",
        kind: Expression,
        usage: "replace(TEXT, FROM, TO)",
        min: 3,
        max: 3,
        example: r#"replace("a-b-c", "-", "/")"#,
        result: r#""a/b/c""#,
        meaning: "every FROM replaced by TO (plain text, not a pattern); an empty FROM changes nothing",
    },
    Function {
        name: "regex_capture",
        kind: Expression,
        usage: "regex_capture(TEXT, \"PATTERN\"[, GROUP])",
        min: 2,
        max: 3,
        example: r#"regex_capture("user=alice id=7", "user=(\\w+)")"#,
        result: r#""alice""#,
        meaning: "the text of GROUP (a number or a name; default: 1 if the pattern has a group, else the whole match) in the first match; missing when nothing matches. PATTERN is a literal, compiled at load",
    },
    Function {
        name: "regex_replace",
        kind: Expression,
        usage: "regex_replace(TEXT, \"PATTERN\", \"REPLACEMENT\")",
        min: 3,
        max: 3,
        example: r##"regex_replace("id=42 id=7", "id=(\\d+)", "#$1")"##,
        result: r##""#42 #7""##,
        meaning: "every match replaced; `$1`, `${name}` in REPLACEMENT are groups (`$$` is a dollar). PATTERN and REPLACEMENT are literals",
    },
    Function {
        name: "truncate",
        kind: Expression,
        usage: "truncate(TEXT, LENGTH)",
        min: 2,
        max: 2,
        example: r#"truncate("abcdef", 3)"#,
        result: r#""abc""#,
        meaning: "at most LENGTH characters of the text (no ellipsis added)",
    },
    Function {
        name: "to_json",
        kind: Expression,
        usage: "to_json(VALUE)",
        min: 1,
        max: 1,
        example: r#"to_json({"a": [1, "x"]})"#,
        result: r#""{\"a\":[1,\"x\"]}""#,
        meaning: "the value as compact JSON text (a string is quoted)",
    },
    Function {
        name: "parse_json",
        kind: Expression,
        usage: "parse_json(TEXT)",
        min: 1,
        max: 1,
        example: r#"parse_json("{\"a\": [1, 2]}")"#,
        result: r#"{"a":[1,2]}"#,
        meaning: "the value JSON text holds (numbers as written); text that is not JSON is a record error",
    },
    Function {
        name: "sha256",
        kind: Expression,
        usage: "sha256(TEXT)",
        min: 1,
        max: 1,
        example: r#"sha256("abc")"#,
        result: r#""ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad""#,
        meaning: "the SHA-256 of the text's UTF-8 bytes (other values as `string` writes them), in lower-case hex",
    },
    Function {
        name: "redact",
        kind: Expression,
        usage: "redact(TEXT[, KEEP])",
        min: 1,
        max: 2,
        example: r#"redact("4111111111111111", 4)"#,
        result: r#""************1111""#,
        meaning: "every character replaced by `*` but the last KEEP (default 0)",
    },
    Function {
        name: "parse_time",
        kind: Expression,
        usage: "parse_time(TEXT, \"FORMAT\")",
        min: 2,
        max: 2,
        example: r#"parse_time("01/05/2024 10:00", "[day]/[month]/[year] [hour]:[minute]")"#,
        result: "1714557600000",
        meaning: "the time the text gives in FORMAT (a literal: the `time` crate's format description, or `rfc3339`), as epoch ms; UTC unless FORMAT has an offset; text that does not fit is a record error",
    },
    Function {
        name: "format_time",
        kind: Expression,
        usage: "format_time(TIME, \"FORMAT\")",
        min: 2,
        max: 2,
        example: r#"format_time(1714557600000, "[year]-[month]-[day] [hour]:[minute]")"#,
        result: r#""2024-05-01 10:00""#,
        meaning: "a time (anything `epoch_ms` reads) as text in FORMAT (as for `parse_time`), in UTC",
    },
    Function {
        name: "tojson",
        kind: Filter,
        usage: "| tojson",
        min: 0,
        max: 0,
        example: r#"{{ "a\"b" | tojson }} {{ [1, none] | tojson }}"#,
        result: r#""a\"b" [1,null]"#,
        meaning: "the value as compact JSON (a string quoted, null as `null`)",
    },
    Function {
        name: "truncate",
        kind: Filter,
        usage: "| truncate(LENGTH)",
        min: 1,
        max: 1,
        example: r#"{{ "abcdef" | truncate(3) }}"#,
        result: "abc",
        meaning: "at most LENGTH characters (no ellipsis added), as the `truncate` function",
    },
    Function {
        name: "format_time",
        kind: Filter,
        usage: "| format_time(\"FORMAT\")",
        min: 1,
        max: 1,
        example: r#"{{ 1714557600 | format_time("[hour]:[minute]") }}"#,
        result: "10:00",
        meaning: "a time (anything `epoch_ms` reads) as text in FORMAT, as the `format_time` function",
    },
    Function {
        name: "now",
        kind: Template,
        usage: "now()",
        min: 0,
        max: 0,
        example: "{{ now() | format_time(\"rfc3339\") }}",
        result: "2024-05-01T10:00:00Z",
        meaning: "the current time in epoch ms, as `now()` in an expression (fixed the same way)",
    },
];

/// What `now()` gives when the README's examples run.
pub const EXAMPLE_NOW: i64 = 1_714_557_600_000;

/// The names of the functions an expression may call, for "did you mean".
pub fn expression_names() -> Vec<&'static str> {
    FUNCTIONS
        .iter()
        .filter(|f| f.kind == Expression)
        .map(|f| f.name)
        .collect()
}

/// The README's table of functions, as it must stand there.
pub fn markdown_table() -> String {
    let mut table = String::from("| function | example | result | meaning |\n|---|---|---|---|\n");
    for function in FUNCTIONS {
        let place = match function.kind {
            Expression => "",
            Filter => "template filter ",
            Template => "template function ",
        };
        let result = match function.kind {
            Expression => function.result.to_string(),
            Filter | Template => format!("text `{}`", cell(function.result)),
        };
        let result = if function.kind == Expression {
            format!("`{}`", cell(&result))
        } else {
            result
        };
        table.push_str(&format!(
            "| {place}`{}` | `{}` | {result} | {} |\n",
            cell(function.usage),
            cell(function.example),
            function.meaning.replace('|', "\\|"),
        ));
    }
    table
}

/// Text inside a table cell's backticks: a `|` would end the cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}
