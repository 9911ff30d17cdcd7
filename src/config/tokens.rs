//! Who may call the API: named tokens, each with a role. `TENANTD_TOKENS_FILE` lists them by
//! the SHA-256 digest of the token (so the file opens nothing); the older `TENANTD_API_TOKENS`
//! and `TENANTD_API_TOKENS_FILE` hold tokens themselves and mean `admin`, named `token-1`,
//! `token-2`, ... Tokens are compared by digest in constant time and never printed.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// Shortest token accepted in `TENANTD_API_TOKENS(_FILE)`.
pub const MIN_TOKEN_LEN: usize = 32;

/// What a token may do. Each role may do what the ones below it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Every GET; the console read-only.
    Viewer,
    /// Create, change tiers, suspend and resume, retry and cancel jobs, rollouts, deprovision
    /// with a final snapshot.
    Operator,
    /// Deprovision without a final snapshot or with `force`, read the audit trail.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether a token of this role may do what `needed` allows.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One configured token: its name (in logs and the audit trail), its role, and the SHA-256
/// digest of the token itself.
#[derive(Clone, PartialEq, Eq)]
pub struct NamedToken {
    pub name: String,
    pub role: Role,
    digest: [u8; 32],
}

impl fmt::Debug for NamedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NamedToken({}, {})", self.name, self.role)
    }
}

fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl NamedToken {
    /// A token given in clear (the legacy settings, tests).
    pub fn new(name: impl Into<String>, role: Role, token: &str) -> Self {
        NamedToken {
            name: name.into(),
            role,
            digest: sha256(token),
        }
    }

    /// What a console session stores of its token: a hash of the digest under a label of its
    /// own, so that the sessions table reveals nothing a tokens file does not.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"tenantd-token-fingerprint:");
        h.update(self.digest);
        hex::encode(h.finalize())
    }
}

/// What a presented token turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    Known(&'a NamedToken),
    /// `<name>:<secret>` with a configured name and a wrong secret.
    WrongSecret {
        name: &'a str,
    },
    Unknown,
}

/// The tokens the API accepts. Cheap to clone; its `Debug` shows names and roles only.
#[derive(Clone, Default)]
pub struct ApiTokens(Arc<Vec<NamedToken>>);

impl fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

/// A bad entry, named without its secret: the setting it came from and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenProblem {
    pub setting: &'static str,
    pub problem: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    tokens: Vec<FileEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    name: String,
    role: String,
    sha256: String,
}

/// A token name: 1 to 64 lowercase letters, digits, `.`, `_` and `-`, a letter or digit first
/// (no `:`, which separates a name from its secret when both are presented).
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

impl ApiTokens {
    /// Legacy tokens given in clear, all `admin`, named `token-1`, `token-2`, ... in order
    /// (blank entries dropped, surrounding whitespace trimmed). Not checked: see [`Self::load`].
    pub fn new<I, S>(tokens: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let named = tokens
            .into_iter()
            .map(|t| t.as_ref().trim().to_string())
            .filter(|t| !t.is_empty())
            .enumerate()
            .map(|(i, t)| NamedToken::new(format!("token-{}", i + 1), Role::Admin, &t))
            .collect();
        ApiTokens(Arc::new(named))
    }

    pub fn from_named(tokens: Vec<NamedToken>) -> Self {
        ApiTokens(Arc::new(tokens))
    }

    /// Every token: the legacy list (comma-separated), the legacy file's text (one a line or
    /// comma-separated, `#` comments) and the named tokens file's TOML. Refuses a legacy token
    /// shorter than [`MIN_TOKEN_LEN`], a digest that is not 64 hex characters, an unknown role,
    /// a bad or repeated name and a token configured twice; the problem names the entry.
    pub fn load(
        list: Option<&str>,
        legacy_file: Option<&str>,
        named_file: Option<&str>,
    ) -> Result<Self, TokenProblem> {
        let mut tokens = Vec::new();
        let from_list = list
            .into_iter()
            .flat_map(|l| l.split(','))
            .map(|t| ("TENANTD_API_TOKENS", t));
        let from_file = legacy_file
            .into_iter()
            .flat_map(|text| {
                text.lines()
                    .filter(|l| !l.trim_start().starts_with('#'))
                    .flat_map(|l| l.split(','))
            })
            .map(|t| ("TENANTD_API_TOKENS_FILE", t));
        for (setting, token) in from_list.chain(from_file) {
            let token = token.trim();
            if token.is_empty() {
                continue;
            }
            let name = format!("token-{}", tokens.len() + 1);
            if token.chars().count() < MIN_TOKEN_LEN {
                return Err(TokenProblem {
                    setting,
                    problem: format!(
                        "{name} (entry {} of the legacy tokens) has {} characters; a token needs \
                         at least {MIN_TOKEN_LEN}",
                        tokens.len() + 1,
                        token.chars().count()
                    ),
                });
            }
            tokens.push(NamedToken::new(name, Role::Admin, token));
        }
        if let Some(text) = named_file {
            let file: TokensFile = toml::from_str(text).map_err(|e| TokenProblem {
                setting: "TENANTD_TOKENS_FILE",
                problem: format!("not a tokens file ([[tokens]] name, role, sha256): {e}"),
            })?;
            for (i, entry) in file.tokens.into_iter().enumerate() {
                let bad = |problem: String| TokenProblem {
                    setting: "TENANTD_TOKENS_FILE",
                    problem: format!("entry {} ({:?}): {problem}", i + 1, entry.name),
                };
                if !valid_name(&entry.name) {
                    return Err(bad(
                        "a name is 1 to 64 lowercase letters, digits, '.', '_' \
                                    or '-', a letter or digit first"
                            .into(),
                    ));
                }
                let role = Role::parse(&entry.role).ok_or_else(|| {
                    bad(format!(
                        "role {:?} is not viewer, operator or admin",
                        entry.role
                    ))
                })?;
                let hex_digest = entry.sha256.trim().to_ascii_lowercase();
                let digest: [u8; 32] = (hex_digest.len() == 64)
                    .then(|| hex::decode(&hex_digest).ok())
                    .flatten()
                    .and_then(|d| d.try_into().ok())
                    .ok_or_else(|| {
                        bad(
                            "sha256 must be 64 hex characters (the SHA-256 digest of the \
                             token, e.g. from `printf %s \"$TOKEN\" | sha256sum`)"
                                .into(),
                        )
                    })?;
                tokens.push(NamedToken {
                    name: entry.name,
                    role,
                    digest,
                });
            }
        }
        for (i, t) in tokens.iter().enumerate() {
            for earlier in &tokens[..i] {
                let setting = if t.name.starts_with("token-") && earlier.name.starts_with("token-")
                {
                    "TENANTD_API_TOKENS"
                } else {
                    "TENANTD_TOKENS_FILE"
                };
                if earlier.name == t.name {
                    return Err(TokenProblem {
                        setting,
                        problem: format!("the name {:?} is given twice", t.name),
                    });
                }
                if earlier.digest == t.digest {
                    return Err(TokenProblem {
                        setting,
                        problem: format!(
                            "{:?} is the same token as {:?}; give each caller a token of its own",
                            t.name, earlier.name
                        ),
                    });
                }
            }
        }
        Ok(ApiTokens(Arc::new(tokens)))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &NamedToken> {
        self.0.iter()
    }

    /// The configured token `presented` is, if any. The presented token's digest is compared
    /// with every configured one, each in constant time, so the answer's timing tells nothing
    /// about which came close. `<name>:<secret>` is accepted too; with a configured name and a
    /// wrong secret the answer says which name was tried.
    pub fn authenticate(&self, presented: &str) -> Presented<'_> {
        if let Some(found) = self.by_digest(&sha256(presented)) {
            return Presented::Known(found);
        }
        let Some((name, secret)) = presented.split_once(':') else {
            return Presented::Unknown;
        };
        match self.0.iter().find(|t| t.name == name) {
            Some(t) if bool::from(t.digest.ct_eq(&sha256(secret))) => Presented::Known(t),
            Some(t) => Presented::WrongSecret { name: &t.name },
            None => Presented::Unknown,
        }
    }

    fn by_digest(&self, digest: &[u8; 32]) -> Option<&NamedToken> {
        let mut found = None;
        for t in self.0.iter() {
            let hit: Choice = t.digest.ct_eq(digest);
            if bool::from(hit) {
                found = Some(t);
            }
        }
        found
    }

    /// Whether `presented` is one of the tokens.
    pub fn accepts(&self, presented: &str) -> bool {
        matches!(self.authenticate(presented), Presented::Known(_))
    }

    /// The token a console session's fingerprint names, if it is still configured.
    pub fn by_fingerprint(&self, fingerprint: &str) -> Option<&NamedToken> {
        self.0
            .iter()
            .find(|t| bool::from(t.fingerprint().as_bytes().ct_eq(fingerprint.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
    const B: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
    const C: &str = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3";

    fn digest(token: &str) -> String {
        hex::encode(sha256(token))
    }

    fn file(entries: &[(&str, &str, &str)]) -> String {
        entries
            .iter()
            .map(|(n, r, d)| format!("[[tokens]]\nname = {n:?}\nrole = {r:?}\nsha256 = {d:?}\n"))
            .collect()
    }

    #[test]
    fn legacy_tokens_are_admins_named_in_order() {
        let list = format!("{A}, {B},,");
        let tokens =
            ApiTokens::load(Some(&list), Some(&format!("# comment\n{C}\n\n")), None).unwrap();
        assert_eq!(tokens.len(), 3);
        for (t, name) in [(A, "token-1"), (B, "token-2"), (C, "token-3")] {
            match tokens.authenticate(t) {
                Presented::Known(n) => assert_eq!((n.name.as_str(), n.role), (name, Role::Admin)),
                other => panic!("{t} gave {other:?}"),
            }
        }
        for t in ["", "a", &A[1..], &format!("{A}x"), "# comment"] {
            assert!(!tokens.accepts(t), "{t:?} accepted");
        }
    }

    #[test]
    fn named_tokens_carry_their_role_and_may_be_presented_with_their_name() {
        let text = file(&[
            ("dashboard", "viewer", &digest(A)),
            ("signup-service", "operator", &digest(B).to_uppercase()),
        ]);
        let tokens = ApiTokens::load(None, None, Some(&text)).unwrap();
        assert!(matches!(tokens.authenticate(A), Presented::Known(t) if t.role == Role::Viewer));
        let named = format!("signup-service:{B}");
        assert!(
            matches!(tokens.authenticate(&named), Presented::Known(t) if t.role == Role::Operator)
        );
        assert_eq!(
            tokens.authenticate(&format!("signup-service:{A}x")),
            Presented::WrongSecret {
                name: "signup-service"
            }
        );
        assert_eq!(
            tokens.authenticate(&format!("nobody:{A}")),
            Presented::Unknown
        );
        let fp = tokens.iter().next().unwrap().fingerprint();
        assert_eq!(tokens.by_fingerprint(&fp).unwrap().name, "dashboard");
        assert!(!fp.contains(&digest(A)));
        assert!(tokens.by_fingerprint(&digest(A)).is_none());
    }

    #[test]
    fn bad_entries_are_refused_by_name_without_their_secret() {
        let short = "short-secret-of-20ch";
        let err = ApiTokens::load(Some(&format!("{A},{short}")), None, None).unwrap_err();
        assert_eq!(err.setting, "TENANTD_API_TOKENS");
        assert!(err.problem.starts_with("token-2 (entry 2"), "{err:?}");
        assert!(!err.problem.contains(short));
        let err = ApiTokens::load(None, Some(short), None).unwrap_err();
        assert_eq!(err.setting, "TENANTD_API_TOKENS_FILE");
        for (entries, named) in [
            (
                vec![("ci", "root", digest(A))],
                "entry 1 (\"ci\"): role \"root\"",
            ),
            (
                vec![("ci", "admin", "abc".to_string())],
                "entry 1 (\"ci\"): sha256",
            ),
            (
                vec![("ci", "admin", digest(A)), ("ok", "viewer", "z".repeat(64))],
                "entry 2 (\"ok\"): sha256",
            ),
            (
                vec![("Bad:Name", "admin", digest(A))],
                "entry 1 (\"Bad:Name\"): a name",
            ),
            (
                vec![("ci", "admin", digest(A)), ("ci", "viewer", digest(B))],
                "the name \"ci\" is given twice",
            ),
            (
                vec![("ci", "admin", digest(A)), ("cd", "viewer", digest(A))],
                "\"cd\" is the same token as \"ci\"",
            ),
        ] {
            let entries: Vec<(&str, &str, &str)> = entries
                .iter()
                .map(|(n, r, d)| (*n, *r, d.as_str()))
                .collect();
            let err = ApiTokens::load(None, None, Some(&file(&entries))).unwrap_err();
            assert_eq!(err.setting, "TENANTD_TOKENS_FILE");
            assert!(err.problem.starts_with(named), "{err:?}");
        }
        let err = ApiTokens::load(
            Some(A),
            None,
            Some(&file(&[("token-1", "viewer", &digest(B))])),
        )
        .unwrap_err();
        assert!(err.problem.contains("given twice"), "{err:?}");
        let err = ApiTokens::load(None, None, Some("tokens = 3")).unwrap_err();
        assert!(err.problem.starts_with("not a tokens file"), "{err:?}");
    }

    #[test]
    fn the_deployment_example_is_a_valid_tokens_file() {
        let text = include_str!("../../examples/deploy/tokens.toml");
        let tokens = ApiTokens::load(None, None, Some(text)).unwrap();
        let named: Vec<(&str, Role)> = tokens.iter().map(|t| (t.name.as_str(), t.role)).collect();
        assert_eq!(
            named,
            [
                ("dashboard", Role::Viewer),
                ("signup-service", Role::Operator),
                ("oncall-admin", Role::Admin)
            ]
        );
    }

    #[test]
    fn roles_are_ordered_and_debug_output_shows_no_token() {
        assert!(Role::Admin.allows(Role::Operator) && Role::Operator.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Operator) && !Role::Operator.allows(Role::Admin));
        let tokens = ApiTokens::new([A]);
        let shown = format!("{tokens:?}");
        assert_eq!(shown, "[NamedToken(token-1, admin)]");
        assert!(!shown.contains(A) && !shown.contains(&digest(A)));
        let none = ApiTokens::load(None, Some("\n# none\n"), None).unwrap();
        assert!(none.is_empty() && !none.accepts(""));
    }
}
