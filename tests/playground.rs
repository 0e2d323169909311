//! `xf playground`: the real binary on a free loopback port, asked over HTTP
//! what the page asks it, and held to what `xf run` and `xf check` print.

mod playground_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use playground_support::{http, Playground};
use serde_json::{json, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn xf(args: &[&str], dir: &Path) -> (String, String, Option<i32>) {
    let out = Command::new(env!("CARGO_BIN_EXE_xf"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

#[test]
fn the_page_and_its_assets_are_served_with_a_strict_policy_and_ask_nothing_of_elsewhere() {
    let playground = Playground::start(&[]);
    for (path, kind) in [
        ("/", "text/html"),
        ("/assets/style.css", "text/css"),
        ("/assets/app.js", "text/javascript"),
        ("/assets/textmate.js", "text/javascript"),
        ("/assets/xf.tmLanguage.json", "application/json"),
        ("/api/examples", "application/json"),
    ] {
        let answer = playground.get(path);
        assert_eq!(answer.status, 200, "{path}");
        assert!(
            answer.header("content-type").unwrap().starts_with(kind),
            "{path}"
        );
        let policy = answer.header("content-security-policy").unwrap_or_default();
        assert!(
            policy.starts_with("default-src 'self';"),
            "{path}: {policy}"
        );
        assert!(!policy.contains("unsafe"), "{path}: {policy}");
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        if path != "/assets/xf.tmLanguage.json" && path != "/api/examples" {
            for far in ["http://", "https://", "//cdn", "@import"] {
                assert!(!answer.body.contains(far), "{path} names {far}");
            }
        }
    }
    // The page highlights with the very grammar the editors get.
    assert_eq!(
        playground.get("/assets/xf.tmLanguage.json").body,
        fs::read_to_string(root().join("editors/xf.tmLanguage.json")).unwrap()
    );
    let page = playground.get("/").body;
    assert!(page.contains(r#"<script src="/assets/app.js""#), "{page}");
    assert!(!page.contains("<script>"), "no inline script: {page}");
    let missing = playground.get("/assets/nothing.js");
    assert_eq!(missing.status, 404);
    assert!(missing.header("content-security-policy").is_some());
}

#[test]
fn a_shipped_transform_on_a_fixture_gives_what_xf_run_prints() {
    let playground = Playground::start(&[]);
    for (transform, fixture) in [
        ("armor-default.xf", "armor/detection-with-events.json"),
        ("armor-splunk.xf", "armor/events-only.json"),
        ("queryai-ocsf.xf", "queryai/detection-matched.json"),
        ("datadog-ocsf.xf", "datadog/signal-card-fraud.json"),
    ] {
        let text = fs::read_to_string(root().join("transforms").join(transform)).unwrap();
        let input_path = root().join("tests/fixtures").join(fixture);
        let input = fs::read_to_string(&input_path).unwrap();
        let answer = playground.run(&json!({
            "transform": text, "input": input, "now": "2024-05-01T00:00:00Z"
        }));
        assert_eq!(answer.status, 200, "{}", answer.body);
        let answer = answer.json();
        let (stdout, stderr, status) = xf(
            &[
                "run",
                &format!("transforms/{transform}"),
                input_path.to_str().unwrap(),
                "--now",
                "2024-05-01T00:00:00Z",
            ],
            &root(),
        );
        assert_eq!(status, Some(0), "{stderr}");
        assert_eq!(answer["loaded"], true);
        assert_eq!(answer["output"], stdout, "{transform} on {fixture}");
        assert!(!answer["outputs"].as_array().unwrap().is_empty());
        assert_eq!(answer["errors"], json!([]));
        assert_eq!(answer["diagnostics"]["items"], json!([]));
    }
}

#[test]
fn a_transform_with_a_mistake_gets_the_diagnostic_xf_check_prints() {
    let playground = Playground::start(&[]);
    let text = "format default\ndrop when severity = 8\nset x = 1\n";
    let answer = playground.run(&json!({"transform": text, "input": "{}"}));
    assert_eq!(answer.status, 200);
    let answer = answer.json();
    assert_eq!(answer["loaded"], false);
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("transform.xf"), text).unwrap();
    let (_, stderr, status) = xf(&["check", "transform.xf"], dir.path());
    assert_eq!(status, Some(2));
    assert_eq!(answer["diagnostics"]["rendered"], stderr);
    assert!(stderr.contains(" --> transform.xf:2:"), "{stderr}");
    assert!(stderr.contains('^'), "{stderr}");
    let item = &answer["diagnostics"]["items"][0];
    assert_eq!(item["severity"], "error");
    assert_eq!(item["line"], 2, "{item}");
    assert_eq!(item["column"], 20, "{item}");
    assert!(
        item["message"].as_str().unwrap().contains("expected"),
        "{item}"
    );
    assert_eq!(answer["outputs"], json!([]));

    // A warning is rendered as xf check renders it, and marked too.
    let warned = "label a = \"{{ x }}\"\n";
    let answer = playground
        .run(&json!({"transform": warned, "input": "{}"}))
        .json();
    assert_eq!(answer["loaded"], true);
    fs::write(dir.path().join("transform.xf"), warned).unwrap();
    let (_, stderr, _) = xf(&["check", "transform.xf"], dir.path());
    assert_eq!(answer["warnings"]["rendered"], stderr);
    assert_eq!(answer["warnings"]["items"][0]["severity"], "warning");
    assert_eq!(answer["warnings"]["items"][0]["line"], 1);
}

#[test]
fn drops_and_record_errors_are_told_apart() {
    let playground = Playground::start(&[]);
    let transform = "drop when status == \"CLOSED\"\nset n = number(count)\n";
    let input = "{\"status\": \"CLOSED\"}\n{\"status\": \"OPEN\", \"count\": \"many\"}\n{\"status\": \"OPEN\", \"count\": \"3\"}\n";
    let answer = playground
        .run(&json!({"transform": transform, "input": input}))
        .json();
    assert_eq!(answer["dropped"], 1);
    assert_eq!(
        answer["outputs"],
        json!([{"status": "OPEN", "count": "3", "n": 3}])
    );
    let errors = answer["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{answer}");
    // The line xf run prints to stderr, the input named `input`.
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t.xf"), transform).unwrap();
    fs::write(dir.path().join("input"), input).unwrap();
    let (_, stderr, status) = xf(&["run", "t.xf", "input"], dir.path());
    assert_eq!(status, Some(1));
    assert_eq!(errors[0].as_str().unwrap(), stderr.trim_end());
    assert_eq!(
        answer["stats"],
        json!({"read": 3, "written": 1, "outputs": 1, "dropped": 1, "failed": 1})
    );
}

#[test]
fn bad_bodies_get_clear_answers_not_a_panic() {
    let playground = Playground::start(&[]);
    let post = |body: &[u8], kind: &str| {
        http(
            &playground.address,
            "POST",
            "/api/run",
            &[("Content-Type", kind)],
            body,
        )
    };
    for body in [
        &b"{"[..],
        b"",
        b"[1]",
        b"{\"transform\": 3, \"input\": \"\"}",
        b"{\"transform\": \"\"}",
        b"{\"transform\": \"\", \"input\": \"\", \"extra\": 1}",
        b"\xff\xfe",
    ] {
        let answer = post(body, "application/json");
        assert_eq!(answer.status, 400, "{}", String::from_utf8_lossy(body));
        assert!(answer.json()["error"].is_string());
    }
    // Not JSON by its type: a form a page elsewhere could post without asking.
    let answer = post(b"{\"transform\": \"\", \"input\": \"\"}", "text/plain");
    assert_eq!(answer.status, 400);
    // Past the body limit (2 MiB).
    let big = json!({"transform": "", "input": "x".repeat(3 << 20)}).to_string();
    let answer = post(big.as_bytes(), "application/json");
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert!(answer.json()["error"].as_str().unwrap().contains("limit"));
    // A first line that is not JSON does not hide the records after it from the limit.
    let answer =
        playground.run(&json!({"transform": "", "input": format!("x\n{}", "{}\n".repeat(1001))}));
    assert_eq!(answer.status, 413, "{}", answer.body);
    // Past the transform limit (256 KiB), and past 1,000 records.
    let answer = playground.run(&json!({"transform": "#".repeat(300 << 10), "input": ""}));
    assert_eq!(answer.status, 413);
    assert!(answer.json()["error"].as_str().unwrap().contains("limit"));
    let answer = playground.run(&json!({"transform": "", "input": "{}\n".repeat(1001)}));
    assert_eq!(answer.status, 413);
    let answer = playground.run(&json!({"transform": "", "input": "{}\n".repeat(1000)}));
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["stats"]["read"], 1000);
    // The server is still there.
    assert_eq!(playground.get("/").status, 200);
}

#[test]
fn a_request_for_another_host_is_refused() {
    let playground = Playground::start(&[]);
    let answer = http(
        &playground.address,
        "GET",
        "/",
        &[("Host", "evil.example:80")],
        b"",
    );
    assert_eq!(answer.status, 421, "{}", answer.body);
    let local = http(
        &playground.address,
        "GET",
        "/",
        &[(
            "Host",
            &format!(
                "localhost:{}",
                playground.address.rsplit(':').next().unwrap()
            ),
        )],
        b"",
    );
    assert_eq!(local.status, 200);
}

#[test]
fn with_allow_remote_clients_name_the_playground_as_they_reach_it() {
    // Listened on loopback here, but opened to others: a client on the
    // network names the machine by its own address or name.
    let playground = Playground::start(&["--allow-remote"]);
    let answer = http(
        &playground.address,
        "GET",
        "/",
        &[("Host", "workstation.example:7878")],
        b"",
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[test]
fn a_non_loopback_address_is_refused_without_allow_remote() {
    let out = Command::new(env!("CARGO_BIN_EXE_xf"))
        .args(["playground", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    assert!(stderr.contains("--allow-remote"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn the_examples_are_every_shipped_transform_and_fixture_payload() {
    let playground = Playground::start(&[]);
    let list = playground.get("/api/examples").json();
    let names = |key: &str| -> Vec<String> {
        list[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["name"].as_str().unwrap().to_string())
            .collect()
    };
    let transforms = names("transforms");
    for entry in fs::read_dir(root().join("transforms")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".xf") {
            assert!(transforms.contains(&name), "{name} is not offered");
        }
    }
    let fixtures = names("fixtures");
    // A vendor's payloads, and those a folder deeper (GitHub's EVENT/ACTION.payload.json).
    let mut on_disk = Vec::new();
    for vendor in fs::read_dir(root().join("tests/fixtures")).unwrap() {
        let vendor = vendor.unwrap().path();
        if vendor.is_dir() {
            on_disk.extend(fs::read_dir(&vendor).unwrap().map(|e| e.unwrap().path()));
        }
    }
    let mut seen = 0;
    while let Some(file) = on_disk.pop() {
        if file.is_dir() {
            on_disk.extend(fs::read_dir(&file).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let payload = name.ends_with(".json")
            && !name.starts_with("expected-")
            && !name.ends_with("-config.json");
        let shown = file
            .strip_prefix(root().join("tests/fixtures"))
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(fixtures.contains(&shown), payload, "{shown}");
        seen += usize::from(payload);
    }
    assert_eq!(seen, fixtures.len());
    // A GitHub payload comes with the header that names its event (its folder).
    for fixture in list["fixtures"].as_array().unwrap() {
        let name = fixture["name"].as_str().unwrap();
        let headers = fixture["headers"].as_str().unwrap();
        match name.split('/').collect::<Vec<_>>()[..] {
            ["github", event, _] => assert_eq!(headers, format!("X-GitHub-Event: {event}")),
            _ => assert_eq!(headers, "", "{name}"),
        }
    }
    assert!(fixtures.contains(&"github/code_scanning_alert/created.payload.json".to_string()));
    // Each is offered as it is on disk.
    let first = &list["fixtures"][0];
    let on_disk = fs::read_to_string(
        root()
            .join("tests/fixtures")
            .join(first["name"].as_str().unwrap()),
    )
    .unwrap();
    assert_eq!(first["text"], on_disk);
}

#[test]
fn a_transform_reads_no_file_of_the_machine_unless_given_a_dir() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("teams.csv"), "id,team\n7,blue\n").unwrap();
    let transform =
        |file: &str| format!("lookup teams from \"{file}\" key id\nset team = teams.team\n");
    let run = |playground: &Playground, file: &str| -> Value {
        playground
            .run(&json!({"transform": transform(file), "input": "{\"id\": \"7\"}"}))
            .json()
    };
    // By default: only the shipped transforms' own files, from memory.
    let shipped = Playground::start(&[]);
    let teams = dir.path().join("teams.csv");
    for file in [
        teams.to_str().unwrap(),
        "/etc/passwd",
        "../Cargo.toml",
        "teams.csv",
    ] {
        let answer = run(&shipped, file);
        assert_eq!(answer["loaded"], false, "{file}: {answer}");
    }
    let tags = "lookup tags from \"armor-tags.csv\" key accountId\n";
    assert_eq!(
        shipped
            .run(&json!({"transform": tags, "input": "{}"}))
            .json()["loaded"],
        true
    );
    // With --dir: that folder and below, nothing outside it.
    let given = Playground::start(&["--dir", dir.path().to_str().unwrap()]);
    let answer = run(&given, "teams.csv");
    assert_eq!(answer["loaded"], true, "{answer}");
    assert_eq!(answer["outputs"][0]["team"], "blue");
    for file in ["/etc/passwd", "../teams.csv"] {
        assert_eq!(run(&given, file)["loaded"], false, "{file}");
    }
}

/// Each `(N µs)` of a text trace as `(… µs)`.
fn without_times(text: &str) -> String {
    let times = regex::Regex::new(r"\(\d+ µs\)").unwrap();
    times.replace_all(text, "(… µs)").into_owned()
}

#[test]
fn the_trace_pane_shows_what_xf_run_trace_prints() {
    let playground = Playground::start(&[]);
    let transform = "drop when kind == \"noise\"\nset level = number(severity)\nwhen level >= 5 {\n  tag add priority = \"P1\"\n}\n";
    let input = "{\"kind\": \"alert\", \"severity\": \"7\"}\n{\"kind\": \"noise\"}\n";
    let answer = playground
        .run(&json!({"transform": transform, "input": input}))
        .json();
    let traces = answer["trace"].as_array().expect("a trace per record");
    assert_eq!(traces.len(), 2, "{answer}");
    assert_eq!(traces[0]["record"], "input:1");
    assert_eq!(traces[1]["record"], "input:2");
    assert_eq!(traces[1]["end"], "dropped", "{}", traces[1]);

    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t.xf"), transform).unwrap();
    fs::write(dir.path().join("input"), input).unwrap();
    let (_, stderr, status) = xf(&["run", "t.xf", "input", "--trace"], dir.path());
    assert_eq!(status, Some(0), "{stderr}");
    let page: String = traces
        .iter()
        .map(|entry| {
            let text = entry["text"].as_str().unwrap();
            let body: String = text.lines().map(|line| format!("  {line}\n")).collect();
            format!("record {}\n{body}\n", entry["record"].as_str().unwrap())
        })
        .collect();
    assert_eq!(without_times(&page), without_times(&stderr));
}

#[test]
fn the_page_shows_numbers_as_written() {
    let playground = Playground::start(&[]);
    let answer = playground
        .run(
            &json!({"transform": "label big = 1e400\n", "input": "{\"id\": 18446744073709551617}"}),
        )
        .json();
    assert_eq!(
        answer["pretty"],
        "{\n  \"id\": 18446744073709551617,\n  \"big\": 1e400\n}\n"
    );
}

/// Issue 28: with nothing reading its standard output, the playground still
/// starts (no panic on the closed pipe) and says its address on stderr.
#[test]
fn a_closed_stdout_does_not_stop_the_playground() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let closed = {
        let mut reader = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
        let writer = reader.stdin.take().unwrap();
        reader.wait().unwrap();
        Stdio::from(writer)
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_xf"))
        .args(["playground", "--listen", "127.0.0.1:0"])
        .stdout(closed)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    // Kept open to the end: what the playground writes after the address
    // must find a reader (a closed stderr is another test's matter).
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    stderr.read_line(&mut line).unwrap();
    let address = line
        .trim()
        .strip_prefix("xf playground: http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .map(str::to_string);
    let answer = address
        .as_deref()
        .map(|address| http(address, "GET", "/", &[], b""));
    let _ = child.kill();
    let _ = child.wait();
    drop(stderr);
    assert_eq!(answer.map(|a| a.status), Some(200), "stderr: {line:?}");
}

/// Issue 26: the headers field gives the transform the `request` that
/// `xf run --request-header/--request-source` gives it, credentials withheld.
#[test]
fn the_headers_field_gives_the_request_xf_run_gives() {
    let playground = Playground::start(&[]);
    let transform = "set event = request.headers.\"x-github-event\"\n\
                     set accept = request.headers.accept\n\
                     set source = request.source\n\
                     set auth = coalesce(request.headers.authorization, \"withheld\")\n\
                     set req = request\n";
    let headers = [
        "X-GitHub-Event: code_scanning_alert",
        "Accept: a/b",
        "accept: c/d",
        "Authorization: Bearer secret",
        "Proxy-Authorization: Basic secret",
        "Cookie: session=secret",
    ];
    let answer = playground
        .run(&json!({
            "transform": transform, "input": "{}",
            "headers": headers.join("\n"), "source": "github",
        }))
        .json();
    assert_eq!(answer["errors"], json!([]), "{answer}");
    let record = &answer["outputs"][0];
    assert_eq!(record["event"], "code_scanning_alert", "{answer}");
    assert_eq!(record["accept"], "a/b, c/d");
    assert_eq!(record["source"], "github");
    assert_eq!(record["auth"], "withheld");
    assert!(
        !answer["output"].as_str().unwrap().contains("secret"),
        "{answer}"
    );

    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t.xf"), transform).unwrap();
    fs::write(dir.path().join("input"), "{}").unwrap();
    let mut args = vec!["run", "t.xf", "input", "--request-source", "github"];
    for header in headers {
        args.extend(["--request-header", header]);
    }
    let (stdout, stderr, status) = xf(&args, dir.path());
    assert_eq!(status, Some(0), "{stderr}");
    assert_eq!(answer["output"], stdout);

    // Without headers or a source, `request` is null, as in `xf run` without its flags.
    let bare = playground
        .run(&json!({"transform": transform, "input": "{}", "headers": ""}))
        .json();
    let (stdout, _, _) = xf(&["run", "t.xf", "input"], dir.path());
    assert_eq!(bare["output"], stdout);
    assert_eq!(bare["outputs"][0]["auth"], "withheld");
    assert!(bare["outputs"][0].get("event").is_none(), "{bare}");
}

#[test]
fn bad_header_lines_get_clear_answers_not_a_panic() {
    let playground = Playground::start(&[]);
    let run = |headers: Value| {
        playground.run(&json!({"transform": "", "input": "{}", "headers": headers}))
    };
    for (headers, says) in [
        (
            json!("Accept: a/b\nno colon here"),
            "\"headers\", line 2: \"no colon here\" is not `Name: value`",
        ),
        (
            json!("X GitHub Event: ping"),
            "\"headers\", line 1: \"X GitHub Event\" is not a header name",
        ),
        (
            json!(": value"),
            "\"headers\", line 1: \"\" is not a header name",
        ),
        (
            json!(["Accept: a/b"]),
            "\"headers\" must be a string of `Name: value` lines",
        ),
    ] {
        let answer = run(headers.clone());
        assert_eq!(answer.status, 400, "{headers}: {}", answer.body);
        assert_eq!(answer.json()["error"], says, "{headers}");
    }
    // The very words of `xf run --request-header`: one parser for both.
    let (_, stderr, status) = xf(
        &["run", "t.xf", "--request-header", "no colon here"],
        &root(),
    );
    assert_eq!(status, Some(2));
    assert!(
        stderr.contains("\"no colon here\" is not `Name: value`"),
        "{stderr}"
    );
    // More header lines than a run may give.
    let answer = run(json!("X-A: 1\n".repeat(101)));
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert!(answer.json()["error"].as_str().unwrap().contains("limit"));
    let answer = playground.run(&json!({"transform": "", "input": "{}", "source": 7}));
    assert_eq!(answer.status, 400);
    // The server is still there, and a long value is cut as xf serve cuts it.
    let long = format!("X-Long: {}", "é".repeat(10_000));
    let answer = playground
        .run(&json!({"transform": "set long = request.headers.\"x-long\"\n", "input": "{}", "headers": long}))
        .json();
    assert_eq!(answer["errors"], json!([]), "{answer}");
    let kept = answer["outputs"][0]["long"].as_str().unwrap().len();
    assert!(kept <= 8192 && kept > 8190, "{kept}");
}

/// The GitHub examples work as picked: each GitHub payload, with the headers
/// it is offered with, gives through the shipped GitHub transforms what `xf
/// run --request-header` prints (and one through the mixed ones, which
/// recognise GitHub by the header); without them, the record error that says
/// the header is missing.
#[test]
fn a_github_example_runs_with_the_headers_it_is_offered_with() {
    let playground = Playground::start(&[]);
    let list = playground.get("/api/examples").json();
    let transform = |name: &str| -> String {
        list["transforms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not offered"))["text"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let github: Vec<&Value> = list["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["name"].as_str().unwrap().starts_with("github/"))
        .collect();
    assert!(github.len() >= 10, "{}", github.len());
    let created = github
        .iter()
        .find(|entry| entry["name"] == "github/code_scanning_alert/created.payload.json")
        .unwrap();
    let mut written = 0;
    for (name, fixtures) in [
        ("github-splunk.xf", &github[..]),
        ("github-ocsf.xf", &github[..]),
        ("mixed-splunk.xf", std::slice::from_ref(created)),
        ("mixed-ocsf.xf", std::slice::from_ref(created)),
    ] {
        let text = transform(name);
        for fixture in fixtures {
            let fixture_name = fixture["name"].as_str().unwrap();
            let headers = fixture["headers"].as_str().unwrap();
            let answer = playground.run(&json!({
                "transform": text, "input": fixture["text"],
                "headers": headers, "now": "2024-05-01T00:00:00Z",
            }));
            assert_eq!(answer.status, 200, "{}", answer.body);
            let answer = answer.json();
            let input = root().join("tests/fixtures").join(fixture_name);
            let (stdout, stderr, status) = xf(
                &[
                    "run",
                    &format!("transforms/{name}"),
                    input.to_str().unwrap(),
                    "--request-header",
                    headers,
                    "--now",
                    "2024-05-01T00:00:00Z",
                ],
                &root(),
            );
            assert_eq!(status, Some(0), "{name} on {fixture_name}: {stderr}");
            assert_eq!(answer["output"], stdout, "{name} on {fixture_name}");
            assert_eq!(answer["errors"], json!([]), "{name} on {fixture_name}");
            let ping = fixture_name.starts_with("github/ping/");
            assert_eq!(
                answer["dropped"],
                u64::from(ping),
                "{name} on {fixture_name}"
            );
            written += answer["stats"]["written"].as_u64().unwrap();
        }
    }
    assert_eq!(written, 2 * (github.len() as u64 - 3) + 2);
    // What the header is for: without it, GitHub's transform cannot tell the event.
    let answer = playground
        .run(&json!({"transform": transform("github-splunk.xf"), "input": created["text"]}))
        .json();
    assert_eq!(answer["stats"]["failed"], 1, "{answer}");
    assert!(
        answer["errors"][0]
            .as_str()
            .unwrap()
            .contains("no X-GitHub-Event header"),
        "{answer}"
    );
}
