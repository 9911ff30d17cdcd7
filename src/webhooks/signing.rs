//! Standard Webhooks signing: a subscription's key is 32 random bytes shown once as
//! `whsec_<base64>`; a delivery carries `webhook-id` (the event id), `webhook-timestamp` (Unix
//! seconds) and `webhook-signature`: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per
//! key that signs (the new and the old one during a rotation's overlap), separated by spaces.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;

/// The prefix of a key as shown to the subscriber.
pub const PREFIX: &str = "whsec_";
/// Random bytes per key.
const KEY_BYTES: usize = 32;

/// A decoded signing key; never printed.
pub struct Key(SecretBox<Vec<u8>>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

/// A key in the `whsec_` form that is not one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a signing key must be whsec_ followed by base64 of 24 to 64 bytes")]
pub struct BadKey;

impl Key {
    /// A new random key, in the form shown to the subscriber.
    pub fn generate() -> SecretString {
        let mut bytes = vec![0u8; KEY_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        let shown = format!("{PREFIX}{}", STANDARD.encode(&bytes));
        bytes.fill(0);
        SecretString::from(shown)
    }

    /// Decodes a `whsec_` key.
    pub fn parse(shown: &SecretString) -> Result<Key, BadKey> {
        let text = shown.expose_secret();
        let encoded = text.strip_prefix(PREFIX).ok_or(BadKey)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| BadKey)?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(BadKey);
        }
        Ok(Key(SecretBox::new(Box::new(bytes))))
    }

    /// `v1,<base64 signature>` of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose_secret())
            .expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header: a signature per key, newest first.
pub fn signature_header(keys: &[&Key], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|k| k.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether one of the header's `v1` signatures is `key`'s (constant time), as a receiver checks.
pub fn verify(key: &Key, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    use subtle::ConstantTimeEq;
    let expected = key.sign(id, timestamp, body);
    header
        .split(' ')
        .any(|candidate| bool::from(candidate.as_bytes().ct_eq(expected.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signs_the_standard_webhooks_example() {
        let key = Key::parse(&SecretString::from(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ))
        .unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = key.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
            &sig
        ));
        assert!(!verify(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265331,
            body,
            &sig
        ));
    }

    #[test]
    fn generated_keys_parse_and_differ_and_bad_ones_do_not() {
        let a = Key::generate();
        let b = Key::generate();
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(Key::parse(&a).is_ok());
        for bad in ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!", "whsec_AAAA"] {
            assert_eq!(Key::parse(&SecretString::from(bad)).unwrap_err(), BadKey);
        }
        assert_eq!(format!("{:?}", Key::parse(&a).unwrap()), "Key(..)");
    }

    #[test]
    fn the_header_has_a_signature_per_key_and_either_verifies() {
        let new = Key::parse(&Key::generate()).unwrap();
        let old = Key::parse(&Key::generate()).unwrap();
        let header = signature_header(&[&new, &old], "7", 1700000000, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(verify(&new, "7", 1700000000, b"{}", &header));
        assert!(verify(&old, "7", 1700000000, b"{}", &header));
    }
}
