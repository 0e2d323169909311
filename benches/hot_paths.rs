//! Micro-benchmarks of xf's per-record hot paths, on Armor's documented
//! payloads (tests/fixtures/armor) and transforms/armor-splunk.xf:
//!
//!   cargo bench --bench hot_paths
//!
//! The whole-process comparison with jq, jaq and the floor is benches/bench.py.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::Value;
use xf::read::Framer;
use xf::stream::{Options, Stream};
use xf::value::Time;
use xf::Transform;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Armor's documented records (a detection, its events, an event), one per line.
fn records() -> Vec<String> {
    let mut lines = Vec::new();
    for file in [
        "detection-with-events.json",
        "events-only.json",
        "detection-only.json",
    ] {
        let text = std::fs::read_to_string(format!("{ROOT}/tests/fixtures/armor/{file}")).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        match value {
            Value::Array(items) => lines.extend(items.iter().map(Value::to_string)),
            other => lines.push(other.to_string()),
        }
    }
    lines
}

/// About 1 MB of NDJSON made of those records.
fn ndjson() -> (Vec<u8>, u64) {
    let records = records();
    let mut input = Vec::new();
    let mut count = 0;
    while input.len() < 1 << 20 {
        for record in &records {
            input.extend_from_slice(record.as_bytes());
            input.push(b'\n');
            count += 1;
        }
    }
    (input, count)
}

fn armor_splunk() -> Transform {
    Transform::from_path(format!("{ROOT}/transforms/armor-splunk.xf")).unwrap()
}

fn framing(c: &mut Criterion) {
    let (input, count) = ndjson();
    let pretty: Vec<u8> = records()
        .iter()
        .map(|r| serde_json::to_string_pretty(&serde_json::from_str::<Value>(r).unwrap()).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes();
    let mut group = c.benchmark_group("frame");
    group.throughput(Throughput::Elements(count));
    group.bench_function("ndjson lines", |b| b.iter(|| count_frames(&input)));
    group.throughput(Throughput::Bytes(pretty.len() as u64));
    group.bench_function("pretty-printed, scanned", |b| {
        b.iter(|| count_frames(&pretty))
    });
    group.finish();
}

fn count_frames(input: &[u8]) -> usize {
    let mut framer = Framer::new(input);
    let mut frames = 0;
    while let Some(frame) = framer.next_frame(&mut || Ok(())).unwrap() {
        frames += black_box(frame.bytes.len()).min(1);
    }
    frames
}

/// Applying `transform` to a fresh copy of `record` (the copy is not timed).
fn bench_apply(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    transform: &Transform,
    record: &Value,
) {
    group.bench_function(name, |b| {
        b.iter_batched(
            || record.clone(),
            |record| transform.apply_once(record).unwrap(),
            BatchSize::SmallInput,
        )
    });
}

fn applying(c: &mut Criterion) {
    let transform = armor_splunk();
    let event: Value = serde_json::from_str(&records()[1]).unwrap();
    let mut group = c.benchmark_group("apply");
    group.throughput(Throughput::Elements(1));
    bench_apply(&mut group, "armor-splunk.xf, one event", &transform, &event);
    group.finish();
}

fn templates(c: &mut Criterion) {
    let record: Value = serde_json::from_str(&records()[1]).unwrap();
    let mut group = c.benchmark_group("template");
    for (name, source) in [
        ("one name (shortcut)", r#"tag add out = "{{ eventName }}""#),
        (
            "one name and text (minijinja)",
            r#"tag add out = "{{ eventName }}!""#,
        ),
        (
            "filter and condition",
            r#"tag add out = "{% if destPort %}{{ eventName | upper }}:{{ destPort }}{% endif %}""#,
        ),
    ] {
        let transform = Transform::from_source("bench.xf", source, None).unwrap();
        bench_apply(&mut group, name, &transform, &record);
    }
    group.finish();
}

fn hec_time(c: &mut Criterion) {
    let mut group = c.benchmark_group("hec time");
    for (name, value) in [
        ("epoch seconds", serde_json::json!(1590603929)),
        ("epoch ms", serde_json::json!(1590603929499u64)),
        ("RFC 3339", serde_json::json!("2020-05-27T18:25:29.499Z")),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| Time::from_value(black_box(&value)).unwrap())
        });
    }
    group.finish();
}

fn streaming(c: &mut Criterion) {
    let transform = armor_splunk();
    let (input, count) = ndjson();
    let mut group = c.benchmark_group("stream");
    group.throughput(Throughput::Elements(count));
    group.sample_size(20);
    group.bench_function("armor-splunk.xf, 1 MB NDJSON, one thread", |b| {
        b.iter(|| {
            let mut output = Vec::with_capacity(input.len() * 2);
            let options = Options {
                threads: 1,
                ..Options::default()
            };
            let mut stream = Stream::new(&transform, &mut output, None::<Vec<u8>>, |_| {}, options);
            stream.run_here("bench", &input[..]).unwrap();
            black_box(stream.stats.written)
        })
    });
    group.finish();
}

criterion_group!(benches, framing, applying, templates, hec_time, streaming);
criterion_main!(benches);
