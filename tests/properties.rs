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
