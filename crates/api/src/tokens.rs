//! API tokens: who may call the API, and with which scopes.
//!
//! The token document is JSON, read once at start-up from an SSM
//! SecureString parameter (`BATON_API_TOKENS_PARAM`) or, for local runs,
//! the environment (`BATON_API_TOKENS`). It holds only SHA-256 hashes, so
//! the document itself never gives a caller a working token:
//!
//! ```json
//! {"tokens": [
//!   {"name": "jenkins", "sha256": "<hex of sha256(token)>", "scopes": ["read", "lock:deploy/"]},
//!   {"name": "ops",     "sha256": "<hex>",                  "scopes": ["admin"]}
//! ]}
//! ```
//!
//! A presented token is hashed and compared with every entry in constant
//! time, so neither the answer's timing nor an early exit tells a caller how
//! close a guess came.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::scope::Scope;

/// Why a token document was refused at start-up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokensError {
    /// Not the JSON shape above.
    #[error("the token document is not valid: {0}")]
    Malformed(String),
    /// No token at all: the API would refuse everyone.
    #[error("the token document lists no tokens")]
    Empty,
    /// An entry with a problem, named by its position and name.
    #[error("token #{index} (`{name}`): {problem}")]
    Entry {
        index: usize,
        name: String,
        problem: String,
    },
}

/// One caller the API knows, by the hash of its token.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// Recorded on every write the token makes (the grant's host, the
    /// releaser), so a lock shows which integration took or ended it.
    pub name: String,
    hash: [u8; 32],
    /// What the token may do.
    pub scopes: Vec<Scope>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Every token the API accepts.
#[derive(Debug, Clone)]
pub struct Tokens(Vec<Token>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    tokens: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    sha256: String,
    scopes: Vec<String>,
}

/// The SHA-256 of `token`, as stored in the document (lowercase hex).
pub fn hash_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Tokens {
    /// Reads and checks a token document: names unique and printable,
    /// hashes 64 hex digits, scopes known, at least one token.
    pub fn parse(json: &str) -> Result<Tokens, TokensError> {
        let doc: Document =
            serde_json::from_str(json).map_err(|e| TokensError::Malformed(e.to_string()))?;
        if doc.tokens.is_empty() {
            return Err(TokensError::Empty);
        }
        let mut tokens: Vec<Token> = Vec::with_capacity(doc.tokens.len());
        for (index, entry) in doc.tokens.into_iter().enumerate() {
            let problem = |problem: String| TokensError::Entry {
                index,
                name: entry.name.clone(),
                problem,
            };
            if !valid_name(&entry.name) {
                return Err(problem(
                    "a name is 1–64 of A-Z a-z 0-9 . _ - (it is recorded on locks)".into(),
                ));
            }
            if tokens.iter().any(|t| t.name == entry.name) {
                return Err(problem("the name is used twice".into()));
            }
            let hash: [u8; 32] = hex::decode(entry.sha256.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| problem("sha256 must be 64 hex digits".into()))?;
            if entry.scopes.is_empty() {
                return Err(problem("it has no scopes".into()));
            }
            let scopes = entry
                .scopes
                .iter()
                .map(|s| s.parse::<Scope>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(problem)?;
            tokens.push(Token {
                name: entry.name,
                hash,
                scopes,
            });
        }
        Ok(Tokens(tokens))
    }

    /// The token whose hash matches `presented`, comparing with every entry
    /// in constant time (no early exit).
    pub fn identify(&self, presented: &str) -> Option<&Token> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for token in &self.0 {
            if bool::from(token.hash.ct_eq(&digest)) {
                found = Some(token);
            }
        }
        found
    }

    /// How many tokens are configured (for the start-up log line).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true for a parsed document; here for clippy's `len` rule.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(entries: &str) -> String {
        format!(r#"{{"tokens": [{entries}]}}"#)
    }

    #[test]
    fn a_token_is_found_by_its_hash_only() {
        let json = doc(&format!(
            r#"{{"name": "ci", "sha256": "{}", "scopes": ["read", "lock:deploy/"]}},
               {{"name": "ops", "sha256": "{}", "scopes": ["admin"]}}"#,
            hash_hex("ci-secret"),
            hash_hex("ops-secret")
        ));
        let tokens = Tokens::parse(&json).unwrap();
        assert_eq!(tokens.identify("ci-secret").unwrap().name, "ci");
        assert_eq!(tokens.identify("ops-secret").unwrap().name, "ops");
        assert!(tokens.identify("ci-secret ").is_none());
        assert!(tokens.identify(&hash_hex("ci-secret")).is_none());
        assert!(tokens.identify("").is_none());
        let shown = format!("{:?}", tokens.identify("ci-secret").unwrap());
        assert!(!shown.contains(&hash_hex("ci-secret")), "{shown}");
    }

    #[test]
    fn bad_documents_are_refused_with_the_entry_named() {
        let h = hash_hex("x");
        let cases = [
            ("not json".to_owned(), "not valid"),
            (doc(""), "no tokens"),
            (
                doc(&format!(
                    r#"{{"name": "a b", "sha256": "{h}", "scopes": ["read"]}}"#
                )),
                "`a b`",
            ),
            (
                doc(r#"{"name": "a", "sha256": "abc", "scopes": ["read"]}"#),
                "64 hex",
            ),
            (
                doc(&format!(
                    r#"{{"name": "a", "sha256": "{h}", "scopes": ["write"]}}"#
                )),
                "write",
            ),
            (
                doc(&format!(
                    r#"{{"name": "a", "sha256": "{h}", "scopes": []}}"#
                )),
                "no scopes",
            ),
            (
                doc(&format!(
                    r#"{{"name": "a", "sha256": "{h}", "scopes": ["read"]}},
                       {{"name": "a", "sha256": "{h}", "scopes": ["read"]}}"#
                )),
                "twice",
            ),
            (
                doc(&format!(
                    r#"{{"name": "a", "sha256": "{h}", "scopes": ["read"], "extra": 1}}"#
                )),
                "extra",
            ),
        ];
        for (json, expected) in cases {
            let err = Tokens::parse(&json).unwrap_err().to_string();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }
}
