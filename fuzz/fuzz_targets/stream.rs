//! Reader → apply → writer on any bytes, through transforms that use every
//! kind of statement, schema validation included. Whatever the input: no
//! panic, and every record read is written, dropped or failed.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use xf::stream::{Options, Stream};
use xf::Transform;

const TRANSFORMS: [&str; 8] = [
    r#"
format splunk
events security_incident, security_detection, security_event
search kibana "https://kibana.example.com"
label idx = "Alpha"
tag add index = "{{ accountId }}"
tag add [event].provider = "{{ a.b }}-{{ missing }}"
tag remove classificationTag
url link from eventId
hec time = startTime
hec fields.kind = documentType
"#,
    r#"
search custom "https://s.example.com/?q={{ field }}:{{ value }}"
drop when status == "closed"
when severity >= 5 {
  label priority = "high"
  message text = """{% for k in tags %}{{ k }};{% endfor %}{{ a[0] }}{{ a[-1].b }}"""
} else {
  tag add priority = "{{ severity | default('none') }}"
}
url link from id
drop when name matches "^test"
"#,
    r#"
format splunk
hec time = ts
hec host = host.name
hec source = "src"
hec sourcetype = "{{ kind }}"
hec index = idx
hec fields.tags = tags
message m = "{{ message }}"
"#,
    r#"
format splunk
drop when test == "message"
validate "queryai-detection"
hec time = ran_at
when outcome == "ERROR" {
  message message = """{% for e in errors %}{{ e.message }}{% endfor %}"""
}
"#,
    r#"
rename a.b to moved
set t = coalesce(epoch_ms(ts), epoch_ms(time), now())
set n = number(count)
set s = string(obj)
set sev = map(severity, {"HIGH": 4, "3": 2}, 0)
for ip in ips {
  append obs = {"value": ip, "n": number(ip), "list": [ip, missing]}
}
nest original
when original.kind == "bad" {
  fail "bad {{ original.kind }}"
} else when original.kind exists {
  set kind = original.kind
}
"#,
    // Record data as the arguments of template functions and filters: sizes,
    // counts and repetitions come from the record, and must stay within the
    // limits (fuel, output size), whatever they are.
    r#"
message a = """{{ text | indent(n) }}{{ items | batch(n, 0) | list | length }}"""
message b = """{% for i in range(n) %}{{ i }}{% endfor %}{{ text * n }}{{ text | center(n) }}"""
message c = """{{ text | truncate(n) }}{{ text | wordwrap(n) }}{{ range }}{{ dict }}{{ text | replace(text, text ~ text) }}"""
message d = """{% set ns = namespace(s=text) %}{% for i in items %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}"""
"#,
    // Removals by index, from several statements, inside blocks and a loop.
    r#"
tag remove a[1]
tag remove a[0], a[-1], b.c[2]
when a exists {
  tag remove a[1], b.c[0]
}
for x in items {
  tag remove a[2]
}
set moved = a
"#,
    // Values built deeper on each pass, until the depth limit.
    r#"
for x in items {
  nest w
  set w.again = w
  append list = w
}
"#,
];

/// Limits small enough that the fuzzer reaches them often and fast.
const LIMITS: xf::Limits = xf::Limits {
    template_fuel: 50_000,
    template_output: 64 * 1024,
    statements: 20_000,
    record_millis: 10_000,
    built_bytes: 8 << 20,
        outputs: 1000,
};

/// The shipped transforms that include others: the mixed streams, read from the repository.
const SHIPPED: [&str; 2] = ["mixed-ocsf.xf", "mixed-splunk.xf"];

fn transforms() -> &'static Vec<Transform> {
    static LOADED: OnceLock<Vec<Transform>> = OnceLock::new();
    LOADED.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../transforms");
        TRANSFORMS
            .iter()
            .map(|source| {
                Transform::from_source_with(
                    "fuzz.xf",
                    source,
                    None,
                    &xf::LoadOptions {
                        limits: LIMITS,
                        ..Default::default()
                    },
                )
                .expect("loads")
            })
            .chain(
                SHIPPED
                    .iter()
                    .map(|name| Transform::from_path(dir.join(name)).expect("loads")),
            )
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, input)) = data.split_first() else {
        return;
    };
    let all = transforms();
    let transform = &all[usize::from(choice) % all.len()];
    let options = Options {
        threads: 1,
        keep_batches: choice & 0x10 != 0,
        max_record: (choice & 0x20 != 0).then_some(64),
        ..Options::default()
    };
    let (mut output, mut letters) = (Vec::new(), Vec::new());
    let mut stream = Stream::new(transform, &mut output, Some(&mut letters), |_| {}, options);
    stream
        .run_here("fuzz", input)
        .expect("writing to memory never fails");
    let stats = stream.stats;
    drop(stream);
    assert_eq!(stats.read, stats.written + stats.dropped + stats.failed);
    // Every output line is one JSON value.
    for line in output.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        serde_json::from_slice::<serde_json::Value>(line).expect("output lines are JSON");
    }
});
