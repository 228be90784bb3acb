//! What a token may do. Three scopes, each named in the token document:
//!
//! | scope          | allows                                                        |
//! |----------------|---------------------------------------------------------------|
//! | `read`         | reading any key, listing locks, the OpenAPI document          |
//! | `lock:PREFIX`  | acquire, release and renew keys starting with `PREFIX`, and reading those keys (`lock:` alone: every key) |
//! | `admin`        | everything, force unlock included                             |
//!
//! `lock` scopes are per key prefix so one team's pipeline token cannot
//! take another team's keys; reading its own keys comes with it because a
//! pipeline that holds a key needs to see it.

use std::str::FromStr;

use crate::tokens::Token;

/// One scope of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Read every key and list locks.
    Read,
    /// Acquire, release, renew (and read) keys that start with the prefix.
    Lock { prefix: String },
    /// Everything, force unlock included.
    Admin,
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Scope, String> {
        match s {
            "read" => Ok(Scope::Read),
            "admin" => Ok(Scope::Admin),
            other => match other.strip_prefix("lock:") {
                Some(prefix) => Ok(Scope::Lock {
                    prefix: prefix.to_owned(),
                }),
                None => Err(format!(
                    "unknown scope `{other}`: use `read`, `lock:PREFIX` or `admin`"
                )),
            },
        }
    }
}

/// What a request needs, checked against a token's scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    /// Read this key.
    ReadKey(&'a str),
    /// Read across keys (list, documents).
    ReadAll,
    /// Write this key as its holder (acquire, release, renew).
    Lock(&'a str),
    /// End someone else's grant.
    Admin,
}

impl Token {
    /// Whether this token's scopes cover `need`.
    pub fn allows(&self, need: Need<'_>) -> bool {
        self.scopes.iter().any(|scope| match (scope, need) {
            (Scope::Admin, _) => true,
            (Scope::Read, Need::ReadKey(_) | Need::ReadAll) => true,
            (Scope::Lock { prefix }, Need::Lock(key) | Need::ReadKey(key)) => {
                key.starts_with(prefix.as_str())
            }
            _ => false,
        })
    }

    /// The token's scopes as written in the document, for a refusal that
    /// says what the token does have.
    pub fn scope_names(&self) -> String {
        self.scopes
            .iter()
            .map(|s| match s {
                Scope::Read => "read".to_owned(),
                Scope::Admin => "admin".to_owned(),
                Scope::Lock { prefix } => format!("lock:{prefix}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::{Tokens, hash_hex};

    fn token(scopes: &str) -> Token {
        let json = format!(
            r#"{{"tokens": [{{"name": "t", "sha256": "{}", "scopes": {scopes}}}]}}"#,
            hash_hex("s")
        );
        Tokens::parse(&json).unwrap().identify("s").unwrap().clone()
    }

    #[test]
    fn lock_scopes_are_per_prefix_and_imply_reading_those_keys() {
        let t = token(r#"["lock:deploy/"]"#);
        assert!(t.allows(Need::Lock("deploy/prod")));
        assert!(t.allows(Need::ReadKey("deploy/prod")));
        assert!(!t.allows(Need::Lock("db/prod")));
        assert!(!t.allows(Need::ReadKey("db/prod")));
        assert!(!t.allows(Need::ReadAll));
        assert!(!t.allows(Need::Admin));
        assert!(token(r#"["lock:"]"#).allows(Need::Lock("anything")));
    }

    #[test]
    fn read_reads_and_admin_does_everything() {
        let r = token(r#"["read"]"#);
        assert!(r.allows(Need::ReadAll) && r.allows(Need::ReadKey("x")));
        assert!(!r.allows(Need::Lock("x")) && !r.allows(Need::Admin));
        let a = token(r#"["admin"]"#);
        for need in [
            Need::ReadAll,
            Need::ReadKey("x"),
            Need::Lock("x"),
            Need::Admin,
        ] {
            assert!(a.allows(need), "{need:?}");
        }
        assert_eq!(
            token(r#"["read", "lock:a/"]"#).scope_names(),
            "read, lock:a/"
        );
    }
}
