//! The reader that keeps the fields a transform cannot see as their bytes
//! (`xf::value::untouched`), against reading every field: on any bytes,
//! through transforms that see only some top-level fields, the output,
//! dead letters and counts must be exactly those of the same transform made
//! to see the whole record (by renaming an absent top-level field).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use xf::stream::{Options, Stream};
use xf::Transform;

const TRANSFORMS: [&str; 4] = [
    r#"
format splunk
events security_incident, security_detection, security_event
lookup tags from "armor-tags.csv" key accountId
search kibana "https://kibana.example.com"
label idx = "Alpha"
tag add index = "{{index}}"
tag remove classificationTag
tag add [event].provider_id = "{{provider_id}}"
url link_event_kibana from eventId
"#,
    r#"
label a = 1
set b = c
tag remove d
tag add e.f = "{{ a }}-{{ g }}"
drop when c == 1
append c = 1
message m = "{{ b }} and {{ d }}"
"#,
    r#"
format splunk
hec time = epoch_ms(startTime)
set n = b
when a > 1 {
  set z = null
} else {
  tag remove a
}
"#,
    r#"
for x in items {
  append seen = x
}
set k = coalesce(a, b, "none")
"#,
];

fn transforms() -> &'static Vec<(Transform, Transform)> {
    static LOADED: OnceLock<Vec<(Transform, Transform)>> = OnceLock::new();
    LOADED.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../transforms");
        TRANSFORMS
            .iter()
            .map(|text| {
                let partial = Transform::from_source("t.xf", text, Some(&dir)).unwrap();
                assert!(partial.fields_seen().is_some());
                let whole_text = format!("{text}rename absent_field to absent_too\n");
                let whole = Transform::from_source("t.xf", &whole_text, Some(&dir)).unwrap();
                assert!(whole.fields_seen().is_none());
                (partial, whole)
            })
            .collect()
    })
}

fn run(transform: &Transform, input: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<String>, String) {
    let (mut out, mut letters, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    let mut stream = Stream::new(
        transform,
        &mut out,
        Some(&mut letters),
        |e| errors.push(e.to_string()),
        Options::default(),
    );
    let _ = stream.run("input", std::io::Cursor::new(input.to_vec()));
    let stats = format!("{:?}", stream.stats);
    drop(stream);
    (out, letters, errors, stats)
}

fuzz_target!(|data: &[u8]| {
    for (partial, whole) in transforms() {
        assert_eq!(run(partial, data), run(whole, data));
    }
});
