//! What the page offers to pick: the shipped fixtures (vendors' documented
//! payloads, `tests/fixtures/`) and the shipped transforms (`transforms/`),
//! built into the binary so that the playground needs no checkout. The
//! transforms' own files (includes, the tags table) are the loader of a
//! transform written in the page, so a shipped one runs as it is. A
//! fixture that needs its request's headers (GitHub's, whose event is named
//! only in `X-GitHub-Event`) is offered with them.
//! tests/playground.rs checks that these lists name every such file.

use serde_json::{json, Value};

/// Vendor payloads: (name, text).
pub const FIXTURES: &[(&str, &str)] = &[
    (
        "armor/detection-only.json",
        include_str!("../../tests/fixtures/armor/detection-only.json"),
    ),
    (
        "armor/detection-with-events.json",
        include_str!("../../tests/fixtures/armor/detection-with-events.json"),
    ),
    (
        "armor/events-only.json",
        include_str!("../../tests/fixtures/armor/events-only.json"),
    ),
    (
        "cii/failed-check.json",
        include_str!("../../tests/fixtures/cii/failed-check.json"),
    ),
    (
        "cii/webhook-test.json",
        include_str!("../../tests/fixtures/cii/webhook-test.json"),
    ),
    (
        "datadog/signal-card-fraud.json",
        include_str!("../../tests/fixtures/datadog/signal-card-fraud.json"),
    ),
    (
        "datadog/signal-unexpected-ip.json",
        include_str!("../../tests/fixtures/datadog/signal-unexpected-ip.json"),
    ),
    (
        "datatheorem/hello-world.json",
        include_str!("../../tests/fixtures/datatheorem/hello-world.json"),
    ),
    (
        "datatheorem/policy-violation-resolved.json",
        include_str!("../../tests/fixtures/datatheorem/policy-violation-resolved.json"),
    ),
    (
        "github/code_scanning_alert/closed-by-user.payload.json",
        include_str!("../../tests/fixtures/github/code_scanning_alert/closed-by-user.payload.json"),
    ),
    (
        "github/code_scanning_alert/created.payload.json",
        include_str!("../../tests/fixtures/github/code_scanning_alert/created.payload.json"),
    ),
    (
        "github/code_scanning_alert/fixed.payload.json",
        include_str!("../../tests/fixtures/github/code_scanning_alert/fixed.payload.json"),
    ),
    (
        "github/code_scanning_alert/reopened.payload.json",
        include_str!("../../tests/fixtures/github/code_scanning_alert/reopened.payload.json"),
    ),
    (
        "github/code_scanning_alert/reopened.with-organization.payload.json",
        include_str!("../../tests/fixtures/github/code_scanning_alert/reopened.with-organization.payload.json"),
    ),
    (
        "github/dependabot_alert/created.payload.json",
        include_str!("../../tests/fixtures/github/dependabot_alert/created.payload.json"),
    ),
    (
        "github/dependabot_alert/fixed.payload.json",
        include_str!("../../tests/fixtures/github/dependabot_alert/fixed.payload.json"),
    ),
    (
        "github/ping/payload.json",
        include_str!("../../tests/fixtures/github/ping/payload.json"),
    ),
    (
        "github/ping/with-app_id.payload.json",
        include_str!("../../tests/fixtures/github/ping/with-app_id.payload.json"),
    ),
    (
        "github/ping/with-organization.payload.json",
        include_str!("../../tests/fixtures/github/ping/with-organization.payload.json"),
    ),
    (
        "github/repository_advisory/published.payload.json",
        include_str!("../../tests/fixtures/github/repository_advisory/published.payload.json"),
    ),
    (
        "github/secret_scanning_alert/reopened.payload.json",
        include_str!("../../tests/fixtures/github/secret_scanning_alert/reopened.payload.json"),
    ),
    (
        "github/secret_scanning_alert_location/created.payload.json",
        include_str!("../../tests/fixtures/github/secret_scanning_alert_location/created.payload.json"),
    ),
    (
        "github/security_advisory/published.payload.json",
        include_str!("../../tests/fixtures/github/security_advisory/published.payload.json"),
    ),
    (
        "github/security_advisory/updated.payload.json",
        include_str!("../../tests/fixtures/github/security_advisory/updated.payload.json"),
    ),
    (
        "github/security_advisory/withdrawn.payload.json",
        include_str!("../../tests/fixtures/github/security_advisory/withdrawn.payload.json"),
    ),
    (
        "queryai/detection-error.json",
        include_str!("../../tests/fixtures/queryai/detection-error.json"),
    ),
    (
        "queryai/detection-matched.json",
        include_str!("../../tests/fixtures/queryai/detection-matched.json"),
    ),
    (
        "queryai/test-message.json",
        include_str!("../../tests/fixtures/queryai/test-message.json"),
    ),
];

/// The shipped transforms and their files: (name, text).
pub const TRANSFORMS: &[(&str, &str)] = &[
    (
        "armor-default.xf",
        include_str!("../../transforms/armor-default.xf"),
    ),
    (
        "armor-ocsf.xf",
        include_str!("../../transforms/armor-ocsf.xf"),
    ),
    (
        "armor-splunk-kinds.xf",
        include_str!("../../transforms/armor-splunk-kinds.xf"),
    ),
    (
        "armor-splunk.xf",
        include_str!("../../transforms/armor-splunk.xf"),
    ),
    (
        "armor-tags.csv",
        include_str!("../../transforms/armor-tags.csv"),
    ),
    ("cii-ocsf.xf", include_str!("../../transforms/cii-ocsf.xf")),
    (
        "cii-splunk.xf",
        include_str!("../../transforms/cii-splunk.xf"),
    ),
    (
        "datadog-ocsf.xf",
        include_str!("../../transforms/datadog-ocsf.xf"),
    ),
    (
        "datadog-splunk.xf",
        include_str!("../../transforms/datadog-splunk.xf"),
    ),
    (
        "datatheorem-ocsf.xf",
        include_str!("../../transforms/datatheorem-ocsf.xf"),
    ),
    (
        "datatheorem-splunk.xf",
        include_str!("../../transforms/datatheorem-splunk.xf"),
    ),
    (
        "github-alert.xf",
        include_str!("../../transforms/github-alert.xf"),
    ),
    (
        "github-ocsf.xf",
        include_str!("../../transforms/github-ocsf.xf"),
    ),
    (
        "github-splunk.xf",
        include_str!("../../transforms/github-splunk.xf"),
    ),
    (
        "mixed-ocsf.xf",
        include_str!("../../transforms/mixed-ocsf.xf"),
    ),
    (
        "mixed-splunk.xf",
        include_str!("../../transforms/mixed-splunk.xf"),
    ),
    (
        "ocsf-finding.xf",
        include_str!("../../transforms/ocsf-finding.xf"),
    ),
    (
        "queryai-ocsf.xf",
        include_str!("../../transforms/queryai-ocsf.xf"),
    ),
    (
        "queryai-splunk.xf",
        include_str!("../../transforms/queryai-splunk.xf"),
    ),
];

/// `GET /api/examples`: `{"fixtures": [{name, text, headers}], "transforms":
/// [{name, text}]}` (transforms: the `.xf` files only; the others are files
/// they read). A fixture's `headers` are those it came with, as the page's
/// headers field holds them ([`headers_of`]).
pub fn list() -> Value {
    let fixtures: Vec<Value> = FIXTURES
        .iter()
        .map(|(name, text)| json!({"name": name, "text": text, "headers": headers_of(name)}))
        .collect();
    let transforms: Vec<Value> = TRANSFORMS
        .iter()
        .filter(|(name, _)| name.ends_with(".xf"))
        .map(|(name, text)| json!({"name": name, "text": text}))
        .collect();
    json!({"fixtures": fixtures, "transforms": transforms})
}

/// The request headers a fixture came with, one `Name: value` a line (empty
/// for most): GitHub names the event only in `X-GitHub-Event`, and its
/// fixtures are octokit's `github/EVENT/ACTION.payload.json`, so the event is
/// their folder's name.
pub fn headers_of(fixture: &str) -> String {
    match fixture.split('/').collect::<Vec<_>>()[..] {
        ["github", event, _] => format!("X-GitHub-Event: {event}"),
        _ => String::new(),
    }
}

/// The loader of a transform written in the page: the shipped transforms'
/// folder, in memory.
pub fn shipped_files() -> xf::files::Memory {
    let mut files = xf::files::Memory::new();
    for (name, text) in TRANSFORMS {
        files.insert(name, *text);
    }
    files
}
