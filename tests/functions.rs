//! The table of functions (`xf::compile::FUNCTIONS`) is the one source of
//! their documentation: the README holds exactly the table made from it, and
//! every row's example gives the row's result.

use serde_json::{json, Value};
use xf::compile::functions::{markdown_table, EXAMPLE_NOW};
use xf::compile::{FunctionKind, FUNCTIONS};
use xf::stream::{Options, Stream};
use xf::Transform;

#[test]
fn the_readme_lists_exactly_the_functions_of_the_table() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = markdown_table();
    assert!(
        readme.contains(&table),
        "README.md's table of functions is not the one src/compile/functions.rs makes; it should read:\n{table}"
    );
}

#[test]
fn every_example_gives_its_result() {
    for function in FUNCTIONS {
        let source = match function.kind {
            FunctionKind::Expression => format!("set r = {}\n", function.example),
            FunctionKind::Filter | FunctionKind::Template => {
                format!("set r = \"\"\"{}\"\"\"\n", function.example)
            }
        };
        let transform = Transform::from_source("example.xf", &source, None)
            .unwrap_or_else(|e| panic!("{}: {}", function.usage, e.render()));
        let mut output = Vec::new();
        let mut stream = Stream::new(
            &transform,
            &mut output,
            None::<Vec<u8>>,
            |_| {},
            Options::default(),
        );
        stream.fix_now(EXAMPLE_NOW);
        stream.run("example", &b"{}\n"[..]).unwrap();
        drop(stream);
        let got: Value = serde_json::from_slice(&output)
            .unwrap_or_else(|_| panic!("{}: no output", function.usage));
        let expected = match function.kind {
            FunctionKind::Expression => serde_json::from_str(function.result).unwrap(),
            _ => json!(function.result),
        };
        assert_eq!(got["r"], expected, "{}", function.usage);
    }
}
