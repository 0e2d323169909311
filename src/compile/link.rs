//! Search links (`search` + `url`): a link into a log search that finds the
//! records whose FIELD is exactly a value.
//!
//! Each kind quotes the value in its own query language and then
//! percent-encodes it, so that any text (quotes, `#`, `&`, spaces, non-ASCII)
//! gives a valid URL whose decoded query finds exactly that text:
//!
//! - `kibana`: Discover with a KQL query in its rison-encoded app state,
//!   `BASE/app/discover#/?_a=(query:(language:kuery,query:'FIELD:"VALUE"'))`.
//! - `splunk`: the Search app, `BASE/en-US/app/search/search?q=search%20FIELD%3D%22VALUE%22`.
//! - `custom`: a template of one's own, where `{{ field }}` and `{{ value }}`
//!   (and anything else interpolated) are percent-encoded as one URL component.

use super::template::TemplateId;

/// How one `search` builds its links.
#[derive(Debug)]
pub enum Search {
    Kibana { base: String },
    Splunk { base: String },
    Custom { template: TemplateId },
}

/// The kinds of search, as written after `search`.
pub const SEARCH_KINDS: &[&str] = &["kibana", "splunk", "custom"];

impl Search {
    pub fn kind(&self) -> &'static str {
        match self {
            Search::Kibana { .. } => "kibana",
            Search::Splunk { .. } => "splunk",
            Search::Custom { .. } => "custom",
        }
    }
}
