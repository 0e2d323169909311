//! Secrets kept as their SHA-256 digests and compared in constant time
//! (shared secrets of `auth` schemes and OAuth client secrets).

use subtle::ConstantTimeEq;

/// The SHA-256 digest of a secret.
#[derive(Clone)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digests of `secrets`, as a scheme keeps them.
    pub fn of_each(secrets: &[String]) -> Vec<Digest> {
        secrets.iter().map(|s| Digest::of(s.as_bytes())).collect()
    }

    pub fn of(secret: &[u8]) -> Digest {
        let digest = ring::digest::digest(&ring::digest::SHA256, secret);
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest.as_ref());
        Digest(bytes)
    }

    /// Whether `given` is any of `secrets`, in time that does not depend on
    /// which one (or whether any) matches, nor on where they differ.
    pub fn any_matches(secrets: &[Digest], given: &[u8]) -> bool {
        let given = Digest::of(given);
        let mut found = subtle::Choice::from(0);
        for secret in secrets {
            found |= secret.0.ct_eq(&given.0);
        }
        found.into()
    }
}
