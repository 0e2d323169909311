//! Armor's own JSON configs, run as they are and imported as `.xf`: both
//! paths give the same output, and with the shipped tags table exactly what
//! `transforms/armor-splunk.xf` gives.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

const CONFIG: &str = "tests/fixtures/armor/transform-config.json";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Armor's fixtures (batches included) and a generated Armor corpus.
fn armor_input() -> Vec<u8> {
    let mut input = Vec::new();
    for file in [
        "tests/fixtures/armor/detection-only.json",
        "tests/fixtures/armor/detection-with-events.json",
        "tests/fixtures/armor/events-only.json",
        "tests/cases/vendors/armor-ocsf-corpus/input.ndjson",
    ] {
        input.extend(std::fs::read(repo(file)).unwrap());
        input.push(b'\n');
    }
    input
}

/// Runs `xf ARGS` in the repository with `input` on stdin: (status, stdout, stderr).
fn xf(args: &[&str], input: &[u8]) -> (i32, String, String) {
    let mut child = Command::cargo_bin("xf")
        .unwrap()
        .args(args)
        .current_dir(repo(""))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn the_config_its_import_and_armor_splunk_xf_give_the_same_output() {
    let input = armor_input();
    let (status, shipped, stderr) = xf(&["run", "transforms/armor-splunk.xf"], &input);
    assert_eq!(status, 0, "{stderr}");
    assert!(shipped.lines().count() > 50);

    let (status, direct, stderr) = xf(
        &["run", CONFIG, "--tags", "transforms/armor-tags.csv"],
        &input,
    );
    assert_eq!(status, 0, "{stderr}");
    assert_eq!(direct, shipped, "running the config directly");

    // The import, saved beside a copy of the tags table, as a user would.
    let (status, imported, stderr) = xf(&["import", "armor", CONFIG, "--tags", "tags.csv"], b"");
    assert_eq!(status, 0, "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.xf"), &imported).unwrap();
    std::fs::copy(
        repo("transforms/armor-tags.csv"),
        dir.path().join("tags.csv"),
    )
    .unwrap();
    let path = dir.path().join("config.xf");
    let (status, via_import, stderr) = xf(&["run", path.to_str().unwrap()], &input);
    assert_eq!(status, 0, "{stderr}");
    assert_eq!(via_import, shipped, "running the import");
}

#[test]
fn without_a_tags_table_the_config_and_its_import_agree() {
    let input = armor_input();
    let (status, direct, stderr) = xf(&["run", CONFIG], &input);
    assert_eq!(status, 0, "{stderr}");
    let (_, imported, _) = xf(&["import", "armor", CONFIG], b"");
    assert!(imported.contains("No tags table was given"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.xf");
    std::fs::write(&path, &imported).unwrap();
    let (status, via_import, stderr) = xf(&["run", path.to_str().unwrap()], &input);
    assert_eq!(status, 0, "{stderr}");
    assert_eq!(via_import, direct);
    // With no tags, `{{index}}` finds nothing in the record: the tag is empty.
    let first: serde_json::Value = serde_json::from_str(direct.lines().next().unwrap()).unwrap();
    assert_eq!(first["event"]["index"], "");
}

#[test]
fn the_import_of_armors_hello_world_config_is_as_snapshotted() {
    let (status, imported, stderr) = xf(
        &[
            "import",
            "armor",
            CONFIG,
            "--tags",
            "armor-tags.csv",
            "--kibana",
            "https://kibana.internal:5601",
        ],
        b"",
    );
    assert_eq!(status, 0, "{stderr}");
    insta::assert_snapshot!("import-hello-world-config", imported);
}

#[test]
fn a_config_with_problems_gets_one_message_per_problem_and_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    std::fs::write(
        &path,
        r#"{
  "name": "Broken",
  "format": "xml",
  "event_type": ["security_alert"],
  "default_label": [{"key": "idx"}],
  "transform": [
    {"type": "add_tag", "key": "index", "value": "{{index}}"},
    {"type": "remove_dynamic_tag", "key": "secret", "colour": "red"}
  ]
}"#,
    )
    .unwrap();
    let path = path.to_str().unwrap();
    for args in [vec!["import", "armor", path], vec!["run", path]] {
        let (status, stdout, stderr) = xf(&args, b"{}\n");
        assert_eq!(status, 2, "{args:?}");
        assert!(stdout.is_empty());
        let lines: Vec<&str> = stderr.lines().collect();
        for expected in [
            "/format: \"xml\" is not one of",
            "/event_type/0: \"security_alert\" is not one of",
            "/default_label/0: \"value\" is a required property",
            "/transform/0/type: \"add_tag\" is not one of",
            "/transform/1: Additional properties are not allowed ('colour' was unexpected)",
        ] {
            assert_eq!(
                lines.iter().filter(|l| l.contains(expected)).count(),
                1,
                "{args:?}: {expected}\n{stderr}"
            );
        }
        assert_eq!(lines.len(), 5, "{stderr}");
        assert!(lines.iter().all(|l| l.starts_with("error: ")));
    }
}

#[test]
fn tags_and_kibana_are_refused_with_a_xf() {
    let (status, _, stderr) = xf(
        &["run", "transforms/armor-splunk.xf", "--tags", "x.csv"],
        b"",
    );
    assert_eq!(status, 2);
    assert!(stderr.contains("--tags and --kibana are for Armor JSON configs"));
}

/// The Hello world config with its first transform's value replaced.
fn config_with_tag_value(value: &str) -> (tempfile::TempDir, PathBuf) {
    let text = std::fs::read_to_string(repo("tests/fixtures/armor/transform-config.json")).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&text).unwrap();
    config["transform"][0]["value"] = value.into();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    (dir, path)
}

#[test]
fn check_loads_an_armor_config_as_run_does() {
    let config = repo("tests/fixtures/armor/transform-config.json");
    let tags = repo("transforms/armor-tags.csv");
    let (status, out, err) = xf(
        &[
            "check",
            config.to_str().unwrap(),
            "--tags",
            tags.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!((status, err.as_str()), (0, ""));
    assert!(
        out.ends_with(": ok, name \"Hello world config\", format splunk, lookup tags (3 rows)\n"),
        "{out}"
    );
    // A template that does not compile is reported at its line of the imported .xf.
    let (_dir, bad) = config_with_tag_value("{{ index | lowercase }}");
    let (status, out, err) = xf(&["check", bad.to_str().unwrap()], b"");
    assert_eq!((status, out.as_str()), (2, ""));
    assert!(
        err.contains("error[E0304]: unknown filter `lowercase`"),
        "{err}"
    );
    assert!(err.contains("config.json (as imported):16:"), "{err}");
}

#[test]
fn import_refuses_a_config_whose_templates_do_not_compile() {
    for value in ["{{ index ", "{{ index | lowercase }}"] {
        let (_dir, bad) = config_with_tag_value(value);
        let (status, out, err) = xf(&["import", "armor", bad.to_str().unwrap()], b"");
        assert_eq!((status, out.as_str()), (2, ""), "{value}");
        assert!(
            err.contains("is not imported: the .xf it imports to does not load"),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "tag add index = {}",
                serde_json::Value::from(value)
            )),
            "{err}"
        );
    }
    // A tags table is named as seen from the saved .xf: import does not read it.
    let config = repo("tests/fixtures/armor/transform-config.json");
    let (status, out, _) = xf(
        &[
            "import",
            "armor",
            config.to_str().unwrap(),
            "--tags",
            "elsewhere.csv",
        ],
        b"",
    );
    assert_eq!(status, 0);
    assert!(out.contains("lookup tags from \"elsewhere.csv\""));
}

#[test]
fn a_tags_table_that_cannot_be_read_is_named_where_it_was_looked_for() {
    let config = repo("tests/fixtures/armor/transform-config.json");
    let dir = tempfile::tempdir().unwrap();
    let output = Command::cargo_bin("xf")
        .unwrap()
        .args(["run", config.to_str().unwrap(), "--tags", "missing.csv"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8(output.stderr).unwrap();
    let resolved = std::fs::canonicalize(dir.path())
        .unwrap()
        .join("missing.csv");
    let plain = dir.path().join("missing.csv");
    assert!(
        err.contains(&format!(
            "cannot read missing.csv (looked for at {})",
            resolved.display()
        )) || err.contains(&format!(
            "cannot read missing.csv (looked for at {})",
            plain.display()
        )),
        "{err}"
    );
}
