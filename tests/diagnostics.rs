//! Every `.xf` file in `tests/diagnostics/` must fail to load; its rendered
//! report (rustc-style, with file:line:column, the source line and a caret)
//! is checked against an insta snapshot in `tests/snapshots/`.

use std::fs;
use std::path::Path;

use xf::Transform;

#[test]
fn diagnostics_render_as_snapshotted() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diagnostics");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xf"))
        .collect();
    files.sort();
    assert!(files.len() >= 20);
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(&path).unwrap();
        let file_name = format!("{name}.xf");
        let error = match Transform::from_source(&file_name, &text, Some(&dir)) {
            Ok(_) => panic!("{file_name} loaded, but it is there to fail"),
            Err(error) => error,
        };
        // Included files are named by their path: keep snapshots free of this machine's.
        let rendered = error.render().replace(&format!("{}/", dir.display()), "");
        insta::assert_snapshot!(name, rendered);
    }
}

/// Every `.xf` file in `tests/diagnostics/warnings/` loads, with warnings
/// (W00xx); their rendering is checked against a snapshot.
#[test]
fn warnings_render_as_snapshotted() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diagnostics/warnings");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xf"))
        .collect();
    files.sort();
    assert!(files.len() >= 4);
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(&path).unwrap();
        let file_name = format!("{name}.xf");
        let transform = Transform::from_source(&file_name, &text, Some(&dir))
            .unwrap_or_else(|error| panic!("{file_name} does not load:\n{}", error.render()));
        assert!(
            !transform.warnings().is_empty(),
            "{file_name} has no warning"
        );
        assert!(transform.warnings().iter().all(|w| w.code.is_warning()));
        insta::assert_snapshot!(format!("warnings-{name}"), transform.render_warnings());
    }
}

/// Every `.xfp` file in `tests/diagnostics/pipelines/` is an `xf serve`
/// pipeline that must fail to load, all its problems reported at once.
#[cfg(feature = "serve")]
#[test]
fn pipeline_diagnostics_render_as_snapshotted() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diagnostics/pipelines");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xfp"))
        .collect();
    files.sort();
    assert!(files.len() >= 7);
    for path in files {
        let name = format!("pipeline-{}", path.file_stem().unwrap().to_string_lossy());
        let rendered = match xf::serve::config::pipeline::load(&path, &xf::LoadOptions::default()) {
            Ok(_) => panic!("{} loaded, but it is there to fail", path.display()),
            Err(rendered) => rendered,
        };
        let rendered = rendered.replace(&format!("{}/", dir.display()), "");
        insta::assert_snapshot!(name, rendered);
    }
}

/// W0005 speaks only where the schema closes the record, and says nothing of
/// what a statement, a `fan_out` item or an include could supply.
#[test]
fn unsupplied_template_names_are_warned_of_only_when_a_closed_schema_says_so() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diagnostics/warnings");
    let warnings = |text: &str| -> Vec<String> {
        let transform = Transform::from_source("t.xf", text, Some(&dir))
            .unwrap_or_else(|error| panic!("{}", error.render()));
        transform
            .warnings()
            .iter()
            .filter(|w| w.code.as_str() == "W0005")
            .map(|w| w.message.clone())
            .collect()
    };
    // Without a validate, or with a schema open to more fields: nothing.
    assert!(warnings(r#"message m = "{{ acton }}""#).is_empty());
    assert!(warnings("validate \"armor-detection\"\nmessage m = \"{{ acton }}\"").is_empty());
    // Before the validate: not yet known to be closed.
    assert!(
        warnings("message m = \"{{ acton }}\"\nvalidate \"closed-alert.schema.json\"").is_empty()
    );
    // Supplied later in the file (a loop may run it again), by a fan_out item, by a lookup.
    let supplied = "validate \"closed-alert.schema.json\"\n\
                    message m = \"{{ extra }} {{ item }} {{ tags.team }}\"\n\
                    lookup tags from \"tags.csv\" key alert.accountId column \"accountId\"\n\
                    set extra = 1\n\
                    fan_out item in alert.items\n";
    assert_eq!(warnings(supplied), Vec::<String>::new());
    // After a nest the record has another shape: nothing is said.
    assert!(warnings(
        "validate \"closed-alert.schema.json\"\nnest original\nmessage m = \"{{ acton }}\""
    )
    .is_empty());
    assert_eq!(
        warnings("validate \"closed-alert.schema.json\"\nmessage m = \"{{ acton }}\""),
        ["`acton` is empty for every record: nothing supplies it"]
    );
}
