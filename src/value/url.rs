//! URL components: what search links and link templates percent-encode.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986's unreserved characters is encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes `text` as one URL component (query value, path segment, fragment part).
pub fn encode_component(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

/// Appends `text` percent-encoded as one URL component, as [`encode_component`]
/// does, without a string of its own.
pub fn push_encoded(out: &mut String, text: &str) {
    out.extend(utf8_percent_encode(text, COMPONENT));
}
