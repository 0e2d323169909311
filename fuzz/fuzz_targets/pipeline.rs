//! Pipeline files: any text parses to settings or to diagnostics that render;
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match xf::syntax::pipeline::parse_pipeline(text) {
        Ok(_) => {}
        Err(diagnostics) => {
            let _ = xf::diagnostic::render("fuzz.xfp", text, &diagnostics);
        }
    }
    // The whole load (meanings, files named relative to a scratch folder).
    let dir = std::env::temp_dir().join("xf-fuzz-pipeline");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("p{}.xfp", std::process::id()));
    if std::fs::write(&path, text).is_ok() {
        let _ = xf::serve::config::pipeline::load(&path, &xf::LoadOptions::default());
    }
});
