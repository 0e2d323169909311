//! Property tests: no input makes xf panic, and no valid record is lost.

use proptest::prelude::*;
use xf::stream::{Options, Stream};
use xf::Transform;

/// Fragments of the language, so generated text gets past the first token.
fn xf_like() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("label ".to_string()),
        Just("tag add ".to_string()),
        Just("tag remove ".to_string()),
        Just("when ".to_string()),
        Just("drop when ".to_string()),
        Just("hec time = ".to_string()),
        Just("format splunk\n".to_string()),
        Just("message m = \"\"\"".to_string()),
        Just("search kibana \"https://k\"\n".to_string()),
        Just("url u from ".to_string()),
        Just("{{ ".to_string()),
        Just(" }}".to_string()),
        Just("{% if %}".to_string()),
        Just("\"".to_string()),
        Just("\\u00".to_string()),
        Just(" = ".to_string()),
        Just(" == ".to_string()),
        Just(" matches \"(\"".to_string()),
        Just("[event].".to_string()),
        Just("[-1]".to_string()),
        Just("set ".to_string()),
        Just("append ".to_string()),
        Just("rename ".to_string()),
        Just(" to ".to_string()),
        Just("nest ".to_string()),
        Just("for x in ".to_string()),
        Just("fail ".to_string()),
        Just("include \"".to_string()),
        Just("} else when ".to_string()),
        Just("map(".to_string()),
        Just("epoch_ms(".to_string()),
        Just("coalesce(".to_string()),
        Just("now()".to_string()),
        Just(", ".to_string()),
        Just(")".to_string()),
        Just(" {\n".to_string()),
        Just("}\n".to_string()),
        Just("\n".to_string()),
        "[a-zé\u{1F600}\\\\\"\\[\\]{}().=<>!, 0-9-]{0,8}",
    ];
    proptest::collection::vec(token, 0..32).prop_map(|parts| parts.concat())
}

fn run_stream(transform: &Transform, input: &[u8]) -> (String, xf::stream::Stats) {
    run_threads(transform, input, 1)
}

fn run_threads(transform: &Transform, input: &[u8], threads: usize) -> (String, xf::stream::Stats) {
    let run = run_everything(transform, std::io::Cursor::new(input.to_vec()), threads);
    (run.output, run.stats)
}

/// Everything a run gives: output, dead letters, error lines and counts.
#[derive(Debug, PartialEq)]
struct Run {
    output: String,
    letters: String,
    errors: Vec<String>,
    stats: xf::stream::Stats,
}

fn run_everything(
    transform: &Transform,
    input: impl std::io::Read + Send + 'static,
    threads: usize,
) -> Run {
    let (mut output, mut letters, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    let options = Options {
        threads,
        ..Options::default()
    };
    let mut stream = Stream::new(
        transform,
        &mut output,
        Some(&mut letters),
        |e| errors.push(e.to_string()),
        options,
    );
    stream.run("input", input).unwrap();
    let stats = stream.stats;
    drop(stream);
    Run {
        output: String::from_utf8(output).unwrap(),
        letters: String::from_utf8(letters).unwrap(),
        errors,
        stats,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn loading_any_text_never_panics(text in xf_like()) {
        if let Err(error) = Transform::from_source("fuzz.xf", &text, None) {
            let report = error.render();
            prop_assert!(report.contains("error"), "{}", report);
        }
    }

    #[test]
    fn any_bytes_stream_without_panic_and_add_up(input in proptest::collection::vec(any::<u8>(), 0..400)) {
        let transform = Transform::from_source("t.xf", "tag add a.b = \"{{ x }}\"\n", None).unwrap();
        let (_, stats) = run_stream(&transform, &input);
        prop_assert_eq!(stats.read, stats.written + stats.dropped + stats.failed);
    }

    #[test]
    fn valid_lines_survive_any_garbage_lines(
        lines in proptest::collection::vec(
            prop_oneof![
                (0u32..1000).prop_map(|id| (Some(id), format!("{{\"id\":{id}}}"))),
                "[^\\n\\r_]{0,12}".prop_map(|garbage| (None, garbage)),
            ],
            0..30,
        )
    ) {
        let transform = Transform::from_source("t.xf", "label __seen = true\n", None).unwrap();
        let input: String = lines.iter().map(|(_, line)| format!("{line}\n")).collect();
        let (output, stats) = run_stream(&transform, input.as_bytes());
        prop_assert_eq!(stats.read, stats.written + stats.dropped + stats.failed);
        for (id, _) in &lines {
            if let Some(id) = id {
                let expected = format!("{{\"id\":{id},\"__seen\":true}}\n");
                prop_assert!(output.contains(&expected), "lost record {} in {:?}\noutput {:?}", id, input, output);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn several_threads_give_the_same_output_as_one(
        lines in proptest::collection::vec(
            prop_oneof![
                (0u32..1000).prop_map(|id| format!("{{\"id\":{id},\"drop\":{}}}", id % 3 == 0)),
                Just("[{\"id\":1},{\"id\":2},3]".to_string()),
                "[^\\n\\r]{0,12}",
            ],
            0..600,
        )
    ) {
        let transform = Transform::from_source("t.xf", "drop when drop == true\ntag add n = \"{{ id }}\"\n", None).unwrap();
        let input: String = lines.iter().map(|line| format!("{line}\n")).collect();
        let one = run_threads(&transform, input.as_bytes(), 1);
        let three = run_threads(&transform, input.as_bytes(), 3);
        prop_assert_eq!(one, three);
    }
}

/// A source that hands over one byte per read, so the framer never sees a
/// whole line ahead and scans every byte.
struct OneByteAtATime(std::io::Cursor<Vec<u8>>);

impl std::io::Read for OneByteAtATime {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let one = buf.len().min(1);
        self.0.read(&mut buf[..one])
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// A whole line is taken as a frame without scanning when the next line
    /// starts another value; that must frame exactly as scanning every byte does.
    #[test]
    fn whole_lines_frame_as_scanning_does(
        lines in proptest::collection::vec(
            prop_oneof![
                (0u32..1000).prop_map(|id| format!("{{\"id\":{id}}}")),
                Just("{\"id\":1} {\"id\":2}[{\"id\":3}] 4".to_string()),
                Just("[{\"id\":5},{\"id\":\"x\\u12\"}]".to_string()),
                Just("{\"id\":6,\"s\":\"a} {\\\"b\"}  \r".to_string()),
                Just("{\"open\": [1,".to_string()),
                Just("  \"more\": 2}".to_string()),
                Just("{\"id\":\"unterminated".to_string()),
                Just("{\"a\":{\"b\":1}}}".to_string()),
                Just("\"text\" {\"id\":7}".to_string()),
                "[\\[\\]{}\":,0-9a\\\\ ]{0,10}",
            ],
            0..40,
        )
    ) {
        let transform = Transform::from_source("t.xf", "tag add n = \"{{ id }}\"\n", None).unwrap();
        let input: String = lines.iter().map(|line| format!("{line}\n")).collect();
        let whole = run_everything(&transform, std::io::Cursor::new(input.clone().into_bytes()), 1);
        let scanned = run_everything(&transform, OneByteAtATime(std::io::Cursor::new(input.clone().into_bytes())), 1);
        prop_assert_eq!(whole, scanned, "input {:?}", input);
    }
}

/// JSON text in any of the spellings a sender may use: white space or none,
/// escapes serde_json writes back otherwise (`\u00e9`, `\/`, a lone
/// surrogate), numbers it keeps as written, keys given twice.
fn json_text(depth: u32) -> BoxedStrategy<String> {
    let scalar = prop_oneof![
        Just("0".to_string()),
        Just("-0".to_string()),
        Just("1E2".to_string()),
        Just("1e400".to_string()),
        Just("-2.5e-3".to_string()),
        Just("12345678901234567890123".to_string()),
        Just(r#""x""#.to_string()),
        Just(r#""\u00e9""#.to_string()),
        Just(r#""\/""#.to_string()),
        Just(r#""a\"b\\c\n""#.to_string()),
        Just(r#""\ud800""#.to_string()),
        Just("\"é\u{2028}\"".to_string()),
        Just("true".to_string()),
        Just("null".to_string()),
    ];
    if depth == 0 {
        return scalar.boxed();
    }
    let key = prop_oneof![
        Just("a"),
        Just("b"),
        Just("c"),
        Just("d"),
        Just("startTime"),
        Just("k\\u0065"),
    ];
    let comma = prop_oneof![Just(","), Just(", ")];
    let colon = prop_oneof![Just(":"), Just(" : ")];
    let member = (key, colon, json_text(depth - 1))
        .prop_map(|(key, colon, value)| format!("\"{key}\"{colon}{value}"));
    prop_oneof![
        2 => scalar,
        1 => (proptest::collection::vec(json_text(depth - 1), 0..4), comma.clone())
            .prop_map(|(items, comma)| format!("[{}]", items.join(comma))),
        1 => (proptest::collection::vec(member, 0..5), comma)
            .prop_map(|(members, comma)| format!("{{{}}}", members.join(comma))),
    ]
    .boxed()
}

/// A record (an object of such fields) or a batch of them.
fn records_text() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("a"),
        Just("b"),
        Just("c"),
        Just("d"),
        Just("e"),
        Just("startTime"),
        Just("k\\u0065"),
    ];
    let comma = prop_oneof![Just(","), Just(", ")];
    let record = (proptest::collection::vec((key, json_text(3)), 0..8), comma).prop_map(
        |(members, comma)| {
            let members: Vec<String> = members
                .into_iter()
                .map(|(key, value)| format!("\"{key}\":{value}"))
                .collect();
            format!("{{{}}}", members.join(comma))
        },
    );
    let line = prop_oneof![
        4 => record.clone(),
        1 => proptest::collection::vec(record, 0..3).prop_map(|items| format!("[{}]", items.join(","))),
    ];
    proptest::collection::vec(line, 1..6).prop_map(|lines| lines.join("\n"))
}

/// Statements over a few top-level fields, each of which the run then sees.
fn statements() -> impl Strategy<Value = String> {
    let statement = prop_oneof![
        Just("label a = 1"),
        Just("set b = c"),
        Just("set n = b"),
        Just("tag remove d"),
        Just("tag remove e"),
        Just("tag add e.f = \"{{ a }}\""),
        Just("drop when c == 1"),
        Just("append c = 1"),
        Just("message m = \"{{ b }} and {{ d }}\""),
        Just("set z = null"),
        Just("hec time = epoch_ms(startTime)"),
    ];
    (
        prop_oneof![Just(""), Just("format splunk\n")],
        proptest::collection::vec(statement, 0..5),
    )
        .prop_map(|(format, statements)| format!("{format}{}\n", statements.join("\n")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    /// A transform that cannot see some fields keeps them as their bytes;
    /// output, dead letters, errors and counts must be exactly those of
    /// reading every field (forced here by renaming an absent top-level
    /// field, which makes the run see the whole record).
    #[test]
    fn unseen_fields_kept_as_bytes_write_what_the_whole_record_writes(
        text in statements(),
        input in records_text(),
    ) {
        let Ok(partial) = Transform::from_source("t.xf", &text, None) else {
            return Ok(());
        };
        prop_assert!(partial.fields_seen().is_some(), "{text}");
        let whole = Transform::from_source("t.xf", &format!("{text}rename absent to absent_too\n"), None)
            .unwrap();
        prop_assert!(whole.fields_seen().is_none());
        let input = input.into_bytes();
        for threads in [1, 2] {
            prop_assert_eq!(
                run_everything(&partial, std::io::Cursor::new(input.clone()), threads),
                run_everything(&whole, std::io::Cursor::new(input.clone()), threads),
                "{}", text
            );
        }
    }
}

#[cfg(feature = "serve")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    /// `xf serve`'s bodies read with only some top-level fields parsed (the
    /// others kept as their bytes) give exactly what reading every field
    /// gives: the same refusal, or as many records, each with the same seen
    /// fields, written back to the same bytes, with the same dead letter.
    #[test]
    fn serve_bodies_read_as_far_as_seen_give_what_reading_whole_gives(
        body in records_text(),
        names in proptest::sample::subsequence(vec!["a", "b", "c", "d", "e", "startTime", "ke"], 0..=7),
    ) {
        use xf::serve::receive::body::{records, BodyLimits, Received};
        let limits = BodyLimits { max_records: 8, ..BodyLimits::default() };
        let seen: xf::value::untouched::FieldSet = names.iter().map(|name| name.to_string()).collect();
        let written = |record: &Received| {
            let mut out = Vec::new();
            match record.kept() {
                Some(kept) => xf::write::ndjson_line_untouched(&mut out, &record.record, &kept, false),
                None => xf::write::ndjson_line(&mut out, &record.record),
            }
            out
        };
        let whole = records(body.as_bytes(), &limits, None);
        let partial = records(body.as_bytes(), &limits, Some(&seen));
        match (whole, partial) {
            (Ok(whole), Ok(partial)) => {
                prop_assert_eq!(whole.len(), partial.len());
                for (whole, partial) in whole.iter().zip(&partial) {
                    prop_assert_eq!(written(whole), written(partial));
                    prop_assert_eq!(whole.letter(), partial.letter());
                    prop_assert_eq!(whole.from_batch(), partial.from_batch());
                    if let (Some(whole), Some(partial)) = (whole.record.as_object(), partial.record.as_object()) {
                        for name in &seen {
                            prop_assert_eq!(whole.get(name), partial.get(name));
                        }
                    }
                }
            }
            (Err(whole), Err(partial)) => prop_assert_eq!(whole, partial),
            (whole, partial) => prop_assert!(
                false,
                "whole: {:?}, partial: {:?}",
                whole.map(|r| r.len()),
                partial.map(|r| r.len())
            ),
        }
    }
}
