//! Loading a transform's files: includes shared and bounded, every file
//! confined to the transform's folder, regular, and bounded in size.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use xf::{LoadOptions, Transform};

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// The rendered load error of `dir/main.xf`.
fn load_error(dir: &Path) -> String {
    match Transform::from_path(dir.join("main.xf")) {
        Ok(_) => panic!("main.xf loaded"),
        Err(error) => error.render().replace(&format!("{}/", dir.display()), ""),
    }
}

/// Files f0 … f{depth}, each including the next twice.
fn fan_out(dir: &Path, depth: usize) {
    for i in 0..depth {
        let next = format!("include \"f{}.xf\"\n", i + 1);
        write(dir, &format!("f{i}.xf"), &next.repeat(2));
    }
    write(dir, &format!("f{depth}.xf"), "append seen = 1\n");
}

#[test]
fn a_file_included_many_times_is_compiled_once() {
    let dir = tempfile::tempdir().unwrap();
    // Compiled apart, 2^8 copies; shared, 9 plans.
    fan_out(dir.path(), 8);
    let started = Instant::now();
    let transform = Transform::from_path(dir.path().join("f0.xf")).unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let out = transform.apply(json!({})).unwrap();
    // Each of the 256 leaves runs once per record.
    assert_eq!(out[0]["seen"].as_array().unwrap().len(), 256);
}

#[test]
fn includes_deeper_than_the_limit_are_a_load_error() {
    let dir = tempfile::tempdir().unwrap();
    fan_out(dir.path(), 9);
    write(dir.path(), "main.xf", "include \"f0.xf\"\n");
    let error = load_error(dir.path());
    assert!(
        error.starts_with("error[E0705]: includes nest too deep"),
        "{error}"
    );
    assert!(error.contains("at most 8 levels deep"), "{error}");
    // Once already compiled (from a shallower place), a file is still too deep lower down.
    write(
        dir.path(),
        "main.xf",
        "include \"f2.xf\"\ninclude \"f1.xf\"\n",
    );
    assert!(Transform::from_path(dir.path().join("f2.xf")).is_ok());
    let error = load_error(dir.path());
    assert!(
        error.starts_with("error[E0705]: includes nest too deep"),
        "{error}"
    );
    assert!(error.contains("main.xf:2:9"), "{error}");
}

#[test]
fn more_included_plans_than_the_limit_are_a_load_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "leaf.xf", "label a = 1\n");
    write(dir.path(), "wide.xf", &"include \"leaf.xf\"\n".repeat(40));
    // 1 + 30 × (1 + 40) = 1231 plans per record, over 1024.
    write(dir.path(), "main.xf", &"include \"wide.xf\"\n".repeat(30));
    let error = load_error(dir.path());
    assert!(
        error.starts_with("error[E0705]: too many includes"),
        "{error}"
    );
    assert!(error.contains("at most 1024 included plans"), "{error}");
    assert_eq!(error.matches("error[").count(), 1, "{error}");
    write(dir.path(), "main.xf", &"include \"wide.xf\"\n".repeat(24));
    assert!(Transform::from_path(dir.path().join("main.xf")).is_ok());
    // At the edge: exactly 1024 included plans load, 1025 do not.
    write(dir.path(), "main.xf", &"include \"leaf.xf\"\n".repeat(1024));
    assert!(Transform::from_path(dir.path().join("main.xf")).is_ok());
    write(dir.path(), "main.xf", &"include \"leaf.xf\"\n".repeat(1025));
    assert!(load_error(dir.path()).starts_with("error[E0705]: too many includes"));
}

#[test]
fn files_outside_the_transforms_folder_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("t");
    write(root.path(), "secret.csv", "id,x\n1,secret\n");
    write(&dir, "sub/table.csv", "id,x\n1,inside\n");
    std::os::unix::fs::symlink(root.path().join("secret.csv"), dir.join("link.csv")).unwrap();
    let secret = root.path().join("secret.csv");
    for file in ["../secret.csv", secret.to_str().unwrap(), "link.csv"] {
        write(
            &dir,
            "main.xf",
            &format!("lookup t from \"{file}\" key id\n"),
        );
        let error = load_error(&dir);
        assert!(
            error.contains("outside the transform's folder"),
            "{file}: {error}"
        );
    }
    for file in ["../t/sub/table.csv", "sub/../sub/table.csv"] {
        write(
            &dir,
            "main.xf",
            &format!("lookup t from \"{file}\" key id\n"),
        );
        assert!(Transform::from_path(dir.join("main.xf")).is_ok(), "{file}");
    }
    // An include, a template file and a schema file alike.
    for statement in [
        "include \"../x.xf\"",
        "message m = template \"../x.j2\"",
        "validate \"../x.json\"",
    ] {
        write(root.path(), "x.xf", "label a = 1\n");
        write(root.path(), "x.j2", "{{ a }}");
        write(root.path(), "x.json", "{}");
        write(&dir, "main.xf", &format!("{statement}\n"));
        let error = load_error(&dir);
        assert!(
            error.contains("outside the transform's folder"),
            "{statement}: {error}"
        );
    }
    // Unless the caller allows the folder.
    let options = LoadOptions {
        allowed_roots: vec![root.path().to_path_buf()],
        ..LoadOptions::default()
    };
    write(
        &dir,
        "main.xf",
        "lookup t from \"link.csv\" key id\ntag add x = \"{{ t.x }}\"\n",
    );
    let transform = Transform::from_path_with(dir.join("main.xf"), &options).unwrap();
    assert_eq!(transform.apply(json!({"id": 1})).unwrap()[0]["x"], "secret");
}

#[test]
fn a_fifo_is_refused_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("table.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    write(
        dir.path(),
        "main.xf",
        "lookup t from \"table.csv\" key id\n",
    );
    // Nobody writes to the FIFO: opening it would wait for ever.
    let error = load_error(dir.path());
    assert!(
        error.contains("table.csv (looked for at ")
            && error.contains("): a FIFO, not a regular file"),
        "{error}"
    );
}

#[test]
fn a_file_over_its_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let big = "x".repeat((16 << 20) + 1);
    write(dir.path(), "big.j2", &big);
    write(dir.path(), "main.xf", "message m = template \"big.j2\"\n");
    let error = load_error(dir.path());
    assert!(
        error.contains("over the limit of 16777216 bytes"),
        "{error}"
    );
}

/// A transform whose files all live in memory (a program that keeps them in a
/// database, a playground): includes, lookups, template files and schema files
/// are read through the one loader, nothing from disk, with the same confinement.
#[test]
fn a_transform_loads_from_memory_with_all_its_files() {
    use std::sync::Arc;
    use xf::files::Memory;
    let files = Memory::new()
        .with(
            "rules/team.xf",
            "lookup owners from \"owners.csv\" key repo\ntag add team = \"{{ owners.team }}\"\n",
        )
        .with("rules/owners.csv", "repo,team\nxf,platform\n")
        .with("rules/summary.j2", "{{ repo }} by {{ team }}")
        .with(
            "rules/shape.json",
            r#"{"type": "object", "required": ["repo"]}"#,
        );
    let options = LoadOptions {
        files: Some(Arc::new(files)),
        ..LoadOptions::default()
    };
    let text =
        "validate \"shape.json\"\ninclude \"team.xf\"\nmessage summary = template \"summary.j2\"\n";
    let transform =
        Transform::from_source_with("main.xf", text, Some(Path::new("rules")), &options).unwrap();
    assert_eq!(
        transform.apply(json!({"repo": "xf"})).unwrap(),
        vec![json!({"repo": "xf", "team": "platform", "summary": "xf by platform"})]
    );
    assert!(transform.apply(json!({"name": "no repo"})).is_err());

    // Only what the loader holds is read: a path climbing above its root is
    // outside (as on disk), one it does not hold is not found.
    let escape = "lookup t from \"../../owners.csv\" key repo\n";
    let error = Transform::from_source_with("main.xf", escape, Some(Path::new("rules")), &options)
        .err()
        .expect("a path above the folder is refused")
        .render();
    assert!(error.contains("outside the transform's folder"), "{error}");
}

/// A record error is a value: its kind, the statement, its line, and the
/// includes it was reached through; the stream's error callback gets it so.
#[test]
fn record_errors_keep_their_kind_statement_file_and_line() {
    use xf::apply::ErrorKind;
    use xf::stream::{Options, Problem, Stream};
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "main.xf",
        "name \"main\"\ninclude \"inner.xf\"\n",
    );
    write(
        dir.path(),
        "inner.xf",
        "tag add seen = \"yes\"\nset n = number(code)\n",
    );
    let transform = Transform::from_path(dir.path().join("main.xf")).unwrap();
    let error = transform.apply(json!({"code": "abc"})).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Value);
    let origin = error.origin.unwrap();
    assert_eq!((origin.statement, origin.line), ("set", 2));
    assert_eq!(error.file(), Some("inner.xf"));
    assert_eq!(error.through[0].origin.line, 2);
    assert_eq!(
        error.to_string(),
        "include (line 2): inner.xf: set (line 2): number: \"abc\" is not a number"
    );

    let mut seen = Vec::new();
    let mut stream = Stream::new(
        &transform,
        Vec::new(),
        None::<Vec<u8>>,
        |report| {
            let kind = match report.problem {
                Problem::Transform(error) => Some(error.kind),
                _ => None,
            };
            seen.push((report.position.line, report.position.index, kind));
        },
        Options::default(),
    );
    let input = "{\"code\": 1}\n[{\"code\": \"x\"}]\n{\"code\":\n";
    stream.run_here("input", input.as_bytes()).unwrap();
    drop(stream);
    assert_eq!(
        seen,
        [(2, Some(0), Some(ErrorKind::Value)), (3, None, None)]
    );
}

/// An included file's problems are kept as its own diagnostics (with spans in
/// its text), not only as text under the `include`.
#[test]
fn an_included_files_problems_are_kept_as_structure() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "main.xf", "include \"bad.xf\"\n");
    write(dir.path(), "bad.xf", "tag add a = \"x\"\nfrobnicate b\n");
    let error = Transform::from_path(dir.path().join("main.xf"))
        .err()
        .unwrap();
    let xf::LoadError::Invalid { diagnostics, .. } = &error else {
        panic!("{}", error.render());
    };
    let within = diagnostics[0].within.as_ref().expect("bad.xf's problems");
    assert!(within.name.ends_with("bad.xf"), "{}", within.name);
    let (line, column) = within.diagnostics[0].span.line_col(&within.text);
    assert_eq!((line, column), (2, 1));
    assert!(error.render().contains("frobnicate"), "{}", error.render());
}
