//! The server-side request forgery guard: where destinations may not reach.
//!
//! A destination's URI comes from a pipeline, and an Armor notification body
//! may come from someone else; either way it must not make xf a way into the
//! network it runs in. By default a destination may not be, or resolve to,
//! a loopback, private, link-local (cloud metadata at 169.254.169.254 is one),
//! shared (100.64.0.0/10), unspecified, multicast or reserved address, unless
//! the operator allows that network explicitly (`private_destinations` in
//! the pipeline, `--private-destination`). Names are checked as they resolve,
//! at every connection (a name that resolves to a public address today and a
//! private one tomorrow is caught then), and addresses written in a URI when
//! the pipeline loads. Redirects are never followed (see `deliver`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// The networks destinations may reach although they are not public.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allowed: Arc<Vec<IpNet>>,
}

impl Guard {
    pub fn new(allowed: Vec<IpNet>) -> Guard {
        Guard {
            allowed: Arc::new(allowed),
        }
    }

    /// Why a destination may not reach `address`; `None` when it may.
    pub fn refuses(&self, address: IpAddr) -> Option<&'static str> {
        let kind = not_public(address)?;
        if self.allowed.iter().any(|net| net.contains(&address)) {
            return None;
        }
        Some(kind)
    }

    /// A destination URI whose host is an address: refused now, with why.
    pub fn check_uri(&self, uri: &reqwest::Url) -> Result<(), String> {
        let host = uri.host_str().unwrap_or("");
        // An IPv6 address is written in brackets in a URI.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let Ok(address) = host.parse::<IpAddr>() else {
            // A name: checked as it resolves, at every connection.
            return Ok(());
        };
        match self.refuses(address) {
            None => Ok(()),
            Some(kind) => Err(format!(
                "{address} is {kind}, which a destination may not reach unless allowed \
                 (`private_destinations \"{address}\"` in the pipeline, or --private-destination {address})"
            )),
        }
    }
}

/// The error webhook's URL, checked as a destination's is: refused with why.
pub fn check_error_webhook(guard: &Guard, uri: &reqwest::Url) -> Result<(), String> {
    guard
        .check_uri(uri)
        .map_err(|refused| format!("the error webhook: {refused}"))
}

/// The load-time rule, one for `xf serve` (at start and every reload) and
/// `xf check`: each destination's URI and OAuth token endpoint whose address
/// the guard refuses, as the lines to print. Names are left to the resolver.
pub fn refused_destinations(
    guard: &Guard,
    destinations: &[Arc<super::destination::Destination>],
) -> Vec<String> {
    destinations
        .iter()
        .flat_map(|destination| {
            // Its token endpoint too: a literal address never reaches the resolver.
            let token_url = destination.oauth.as_ref().map(|t| &t.token_url);
            std::iter::once(&destination.uri)
                .chain(token_url)
                .map(move |uri| (destination, uri))
        })
        .filter_map(|(destination, uri)| {
            let refused = guard.check_uri(uri).err()?;
            Some(format!(
                "error: destination `{}`: {refused}",
                destination.name
            ))
        })
        .collect()
}

/// The same rule for the sources' issuers' key sets (`auth jwt jwks_uri
/// "…"`), which xf fetches as it delivers: each URL whose address the guard
/// refuses, as the lines to print.
pub fn refused_key_sets(
    guard: &Guard,
    sources: &[crate::serve::receive::source::Source],
) -> Vec<String> {
    sources
        .iter()
        .filter_map(|source| {
            let crate::serve::receive::auth::Scheme::Jwt(jwks) = &source.auth.scheme else {
                return None;
            };
            let refused = guard.check_uri(jwks.url()?).err()?;
            Some(format!(
                "error: source `{}`: its key set (jwks_uri): {refused}",
                source.name
            ))
        })
        .collect()
}

/// What kind of address that is not public `address` is; `None` for a public one.
fn not_public(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("a loopback address")
            } else if v4.is_private() {
                Some("a private address")
            } else if v4.is_link_local() {
                Some("a link-local address (cloud metadata services live there)")
            } else if a == 100 && (64..128).contains(&b) {
                Some("a shared (carrier-grade NAT) address")
            } else if v4.is_unspecified() || a == 0 {
                Some("an unspecified address")
            } else if v4.is_broadcast() || v4.is_multicast() || a >= 240 {
                Some("a broadcast, multicast or reserved address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            // Forms that carry an IPv4 address are judged by it: mapped
            // (::ffff:0:0/96), compatible (::/96), NAT64 (64:ff9b::/96, which
            // DNS64 hands out for a name's A record) and 6to4 (2002::/16).
            let s = v6.segments();
            let v4 = |hi: u16, lo: u16| {
                std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
            };
            if let Some(v4) = v6.to_ipv4_mapped() {
                return not_public(IpAddr::V4(v4));
            }
            if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
                return not_public(IpAddr::V4(v4(s[6], s[7])));
            }
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
                return not_public(IpAddr::V4(v4(s[6], s[7])));
            }
            if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
                // Local-use NAT64: where the IPv4 part sits is the operator's choice.
                return Some("a local-use NAT64 address");
            }
            if s[0] == 0x2002 {
                return not_public(IpAddr::V4(v4(s[1], s[2])));
            }
            let first = s[0];
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("an unspecified address")
            } else if first & 0xfe00 == 0xfc00 {
                Some("a private (unique local) address")
            } else if first & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if first & 0xffc0 == 0xfec0 {
                Some("a site-local address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else {
                None
            }
        }
    }
}

/// reqwest's resolver for destinations: the system's, minus what the guard refuses.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub guard: Guard,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|address| match guard.refuses(address.ip()) {
                    None => true,
                    Some(kind) => {
                        refused.get_or_insert((address.ip(), kind));
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = match refused {
                    Some((address, kind)) => format!(
                        "{host} resolves to {address}, {kind}, which a destination may not reach \
                         unless allowed (private_destinations, --private-destination)"
                    ),
                    None => format!("{host} resolves to no address"),
                };
                return Err(why.into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_unless_allowed() {
        let guard = Guard::default();
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a00:5",
            "::a9fe:a9fe",
            "2002:a00:1::1",
            "fec0::1",
        ] {
            assert!(
                guard.refuses(refused.parse().unwrap()).is_some(),
                "{refused}"
            );
        }
        for public in ["93.184.215.14", "8.8.8.8", "2606:4700::1111"] {
            assert!(guard.refuses(public.parse().unwrap()).is_none(), "{public}");
        }
        let allowed = Guard::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(allowed.refuses("127.0.0.1".parse().unwrap()).is_none());
        assert!(allowed.refuses("10.0.0.1".parse().unwrap()).is_some());
        let uri = reqwest::Url::parse("http://169.254.169.254/latest/meta-data").unwrap();
        assert!(allowed.check_uri(&uri).unwrap_err().contains("link-local"));
        let named = reqwest::Url::parse("https://splunk.example.com:8088/").unwrap();
        assert!(Guard::default().check_uri(&named).is_ok());
    }
}
