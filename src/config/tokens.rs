//! The bearer tokens the HTTP API accepts (`TENANTD_API_TOKENS`, `TENANTD_API_TOKENS_FILE`):
//! kept as secrets, compared in constant time, never printed.

use std::fmt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use subtle::{Choice, ConstantTimeEq};

/// The tokens the API accepts (`TENANTD_API_TOKENS`, `TENANTD_API_TOKENS_FILE`). Cheap to clone;
/// its `Debug` shows only how many there are.
#[derive(Clone, Default)]
pub struct ApiTokens(Arc<Vec<SecretString>>);

impl fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiTokens({} redacted)", self.0.len())
    }
}

impl ApiTokens {
    /// Blank entries are dropped; surrounding whitespace is not part of a token.
    pub fn new<I, S>(tokens: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let tokens = tokens
            .into_iter()
            .map(|t| t.as_ref().trim().to_string())
            .filter(|t| !t.is_empty())
            .map(SecretString::from)
            .collect();
        ApiTokens(Arc::new(tokens))
    }

    /// Tokens from a comma-separated list and from a file's text (one per line or comma-separated;
    /// lines starting with `#` are comments).
    pub fn parse(list: Option<&str>, file: Option<&str>) -> Self {
        let from_file = file.into_iter().flat_map(|text| {
            text.lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .flat_map(|l| l.split(','))
        });
        let from_list = list.into_iter().flat_map(|l| l.split(','));
        Self::new(from_list.chain(from_file))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether `presented` is one of the tokens. Every token is compared, each in constant time,
    /// so the answer's timing tells nothing about which token came close.
    pub fn accepts(&self, presented: &str) -> bool {
        let mut ok = Choice::from(0);
        for token in self.0.iter() {
            ok |= token.expose_secret().as_bytes().ct_eq(presented.as_bytes());
        }
        bool::from(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_from_the_list_and_the_file() {
        let tokens = ApiTokens::parse(Some("a1, b2,,"), Some("# comment\nc3\n\n d4,e5 \n"));
        assert_eq!(tokens.len(), 5);
        for t in ["a1", "b2", "c3", "d4", "e5"] {
            assert!(tokens.accepts(t), "{t} refused");
        }
        for t in ["", "a", "a12", "# comment", "A1"] {
            assert!(!tokens.accepts(t), "{t:?} accepted");
        }
    }

    #[test]
    fn no_token_accepts_nothing() {
        let tokens = ApiTokens::parse(None, Some("\n# none\n"));
        assert!(tokens.is_empty());
        assert!(!tokens.accepts(""));
    }

    #[test]
    fn debug_output_shows_no_token() {
        let tokens = ApiTokens::new(["hunter2"]);
        assert_eq!(format!("{tokens:?}"), "ApiTokens(1 redacted)");
    }
}
