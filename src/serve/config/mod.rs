//! The settings of a server that are read from files: a destination's
//! header, URI and Armor notification config, the pipeline file
//! ([`pipeline`]) and the watch that reloads it ([`reload`]).

pub mod pipeline;
pub mod reload;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;

use super::deliver::destination::Destination;
use super::receive::oauth;
use super::receive::source::Source;
use crate::compile::EventType;

/// The sources and destinations a server runs; swapped whole on reload.
pub struct Pipeline {
    pub sources: Vec<Source>,
    pub destinations: Vec<Arc<Destination>>,
    /// The files it was loaded from: a change to one reloads it.
    pub watched: Vec<PathBuf>,
    /// The authorization server of its `auth oauth` sources (`POST /oauth/token`).
    pub issuer: Arc<oauth::Issuer>,
}

/// A pipeline that does not load: its problems, and the files it was read
/// from as far as it got, so that a fix to one of them reloads it.
#[derive(Debug, Clone)]
pub struct Refused {
    pub problems: String,
    pub watched: Vec<PathBuf>,
}

/// How a pipeline is (re)loaded: on start, on every SIGHUP, and when one of
/// its files changes.
pub type LoadPipeline = Box<dyn Fn() -> Result<Pipeline, Refused> + Send + Sync>;

/// Parses a header given as `Name: value`.
pub fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("a header is `Name: value`, not `{text}`"))?;
    header(name.trim(), value.trim())
}

/// A header from its name and value, checked.
pub fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("`{name}` is not a header name"))?;
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| format!("the value of header `{name}` is not valid in a header"))?;
    value.set_sensitive(true);
    Ok((name, value))
}

/// Parses a URI a destination is sent to: http or https only.
pub fn parse_uri(text: &str) -> Result<reqwest::Url, String> {
    let uri =
        reqwest::Url::parse(text).map_err(|error| format!("`{text}` is not a URL: {error}"))?;
    match uri.scheme() {
        "http" | "https" => Ok(uri),
        other => Err(format!(
            "`{text}`: a destination is http or https, not {other}"
        )),
    }
}

/// The most a configuration file named by a pipeline or a flag (a
/// notification config, a secret, a pipeline) may hold: 1 MiB.
pub const CONFIG_FILE_LIMIT: u64 = 1 << 20;

/// Reads a small configuration file: a regular file only (never a FIFO or a
/// device), at most [`CONFIG_FILE_LIMIT`] bytes.
pub fn read_config_file(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let metadata =
        std::fs::metadata(path).map_err(|error| format!("cannot read {shown}: {error}"))?;
    if !metadata.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    let file =
        std::fs::File::open(path).map_err(|error| format!("cannot read {shown}: {error}"))?;
    crate::files::read_bounded(file, CONFIG_FILE_LIMIT)
        .map_err(|error| format!("cannot read {shown}: {error}"))
}

/// Reads an Armor Notifications API body (`name`, `email_for_error`,
/// `event_type`, `properties` of type `uri` and `header`) as a destination.
pub fn armor_notification(path: &Path) -> Result<Destination, String> {
    let shown = path.display();
    let text = read_config_file(path)?;
    let body: Value = serde_json::from_str(&text).map_err(|error| format!("{shown}: {error}"))?;
    let object = body
        .as_object()
        .ok_or_else(|| format!("{shown}: a notification config is a JSON object"))?;
    let mut problems = Vec::new();
    let mut uri = None;
    let mut headers = Vec::new();
    match object.get("properties").and_then(Value::as_array) {
        None => problems.push("/properties: a list of properties is required".to_string()),
        Some(properties) => {
            for (i, property) in properties.iter().enumerate() {
                let field = |name: &str| property.get(name).and_then(Value::as_str);
                match (field("type"), field("key"), field("value")) {
                    (Some("uri"), _, Some(value)) => match parse_uri(value) {
                        Ok(parsed) => uri = Some(parsed),
                        Err(error) => problems.push(format!("/properties/{i}/value: {error}")),
                    },
                    (Some("header"), Some(key), Some(value)) => match header(key, value) {
                        Ok(pair) => headers.push(pair),
                        Err(error) => problems.push(format!("/properties/{i}: {error}")),
                    },
                    (Some(other), _, _) if other != "uri" && other != "header" => {
                        problems.push(format!(
                            "/properties/{i}/type: `{other}` is not a property type (uri, header)"
                        ))
                    }
                    _ => problems.push(format!(
                        "/properties/{i}: a property has a string `type`, `key` and `value`"
                    )),
                }
            }
        }
    }
    let mut events = None;
    if let Some(types) = object.get("event_type") {
        match types.as_array() {
            None => problems.push("/event_type: a list of event types".to_string()),
            Some(types) => {
                let mut list = Vec::new();
                for (i, name) in types.iter().enumerate() {
                    match name.as_str().and_then(EventType::from_name) {
                        Some(t) => list.push(t),
                        None => problems.push(format!(
                            "/event_type/{i}: {name} is not an event type ({})",
                            EventType::NAMES.join(", ")
                        )),
                    }
                }
                events = Some(list);
            }
        }
    }
    let email = match object.get("email_for_error") {
        None | Some(Value::Null) => None,
        Some(Value::String(address)) if address.contains('@') => Some(address.clone()),
        Some(other) => {
            problems.push(format!("/email_for_error: {other} is not an email address"));
            None
        }
    };
    let Some(uri) = uri else {
        problems.push("/properties: no property of type `uri`".to_string());
        return Err(problems_text(&shown.to_string(), &problems));
    };
    if !problems.is_empty() {
        return Err(problems_text(&shown.to_string(), &problems));
    }
    let name = object
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| uri.to_string());
    let mut destination = Destination::new(&name, uri);
    destination.headers = headers;
    destination.events = events;
    destination.email_for_error = email;
    Ok(destination)
}

fn problems_text(file: &str, problems: &[String]) -> String {
    problems
        .iter()
        .map(|problem| format!("{file}: {problem}"))
        .collect::<Vec<_>>()
        .join("\n")
}
