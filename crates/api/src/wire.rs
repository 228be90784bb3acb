//! Request shapes and how they are read: JSON bodies with unknown fields
//! refused, durations in humantime (`30s`, `10m`, `1h 30m`), and every
//! refusal naming the field at fault so a caller can fix the request
//! without reading the server's log.

use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A request the API refuses before touching the store: 400 naming `field`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct BadInput {
    /// The JSON field, query parameter or path part at fault (`body` for
    /// a body that is not JSON at all).
    pub field: String,
    pub message: String,
}

impl BadInput {
    /// A refusal of `field`.
    pub fn new(field: &str, message: impl Into<String>) -> BadInput {
        BadInput {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// Longest lease an API caller may ask for: a lease is renewable, and a
/// longer one is a lock nobody can reclaim from a dead holder.
pub const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Longest free-text field (owner, purpose, reason…) accepted.
pub const MAX_TEXT: usize = 1024;

/// `POST /v1/locks/{key}/acquire`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AcquireBody {
    /// Stable owner id (a CI run id, `user@host`).
    pub owner: String,
    pub owner_name: Option<String>,
    pub purpose: Option<String>,
    /// Lease length, e.g. `10m`.
    pub ttl: String,
    /// Keep trying this long while the key is held (`0s`: fail at once).
    pub wait: Option<String>,
    /// Wait in the key's line (needs `wait`).
    #[serde(default)]
    pub queue: bool,
    /// With `queue`: refuse to join a line already this long (1–100, default 20).
    pub max_queue: Option<u16>,
    /// Idempotency key: the same request id gets the same grant back.
    pub request_id: Option<String>,
    pub environment: Option<String>,
    pub component: Option<String>,
    pub correlation_id: Option<String>,
    pub run_url: Option<String>,
}

/// `POST /v1/locks/{key}/release`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReleaseBody {
    pub lock_id: String,
    /// `COMPLETED` (default) or `FAILED`.
    pub status: Option<Outcome>,
    pub reason: Option<String>,
}

/// How a holder ends its grant.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    Completed,
    Failed,
}

/// `POST /v1/locks/{key}/renew`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RenewBody {
    pub lock_id: String,
    pub ttl: String,
}

/// `POST /v1/locks/{key}/force-unlock`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ForceUnlockBody {
    /// Why; recorded on the ended grant. Required.
    pub reason: String,
    /// End only this grant (never a newer one that replaced it).
    pub lock_id: Option<String>,
}

/// Tracker's `POST /api/v1alpha1/lock`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TrackerLockBody {
    pub service: String,
    pub who: String,
}

/// Reads a JSON body into `T`; a refusal names the field at fault
/// (`ttl`, `owner`…), or `body` when it is not a JSON object at all.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, BadInput> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BadInput::new("body", "a JSON object is required"));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        // An unknown or missing field is named in serde's message, not in
        // the path (which stops at the object holding it).
        let named = message.starts_with("unknown field") || message.starts_with("missing field");
        let field = quoted_field(&message)
            .filter(|_| named)
            .or_else(|| (path != "." && !path.contains('?')).then_some(path))
            .unwrap_or_else(|| "body".to_owned());
        BadInput::new(&field, strip_position(&message))
    })?;
    de.end()
        .map_err(|e| BadInput::new("body", strip_position(&e.to_string())))?;
    Ok(value)
}

/// The first backquoted name in a serde message.
fn quoted_field(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

/// serde's message without its ` at line 1 column 9` tail.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// A duration field such as `10m`.
pub fn duration(field: &str, value: &str) -> Result<Duration, BadInput> {
    humantime::parse_duration(value.trim()).map_err(|e| {
        BadInput::new(
            field,
            format!("`{value}` is not a duration such as 30s, 10m or 1h 30m ({e})"),
        )
    })
}

/// A lease length: at least a second, at most [`MAX_TTL`].
pub fn ttl(field: &str, value: &str) -> Result<Duration, BadInput> {
    let ttl = duration(field, value)?;
    if ttl < Duration::from_secs(1) {
        return Err(BadInput::new(field, "must be at least 1s"));
    }
    if ttl > MAX_TTL {
        return Err(BadInput::new(
            field,
            "must be at most 7 days; renew instead",
        ));
    }
    Ok(ttl)
}

/// A lock key: 1–1024 bytes, not blank, no control characters (keys are
/// printed on terminals, in CI logs and in chat).
pub fn key(field: &str, key: &str) -> Result<(), BadInput> {
    if key.trim().is_empty() {
        return Err(BadInput::new(field, "must not be empty"));
    }
    if key.len() > 1024 {
        return Err(BadInput::new(
            field,
            format!("is {} bytes; the limit is 1024", key.len()),
        ));
    }
    if key.chars().any(char::is_control) {
        return Err(BadInput::new(field, "must not contain control characters"));
    }
    Ok(())
}

/// A free-text field: not blank when required, at most [`MAX_TEXT`] bytes.
pub fn text(field: &str, value: &str) -> Result<(), BadInput> {
    if value.trim().is_empty() {
        return Err(BadInput::new(field, "must not be empty"));
    }
    if value.len() > MAX_TEXT {
        return Err(BadInput::new(
            field,
            format!("is {} bytes; the limit is {MAX_TEXT}", value.len()),
        ));
    }
    Ok(())
}

/// [`text`] for an optional field.
pub fn opt_text(field: &str, value: Option<&str>) -> Result<(), BadInput> {
    value.map_or(Ok(()), |v| text(field, v))
}

/// Query parameters, each allowed name at most once; any other name is
/// refused, as unknown JSON fields are.
pub fn query<'a>(
    query: Option<&str>,
    allowed: &[&'a str],
) -> Result<Vec<(&'a str, String)>, BadInput> {
    let mut out: Vec<(&'a str, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let Some(known) = allowed.iter().find(|a| **a == name) else {
            return Err(BadInput::new(
                &name,
                format!(
                    "unknown query parameter; expected one of {}",
                    allowed.join(", ")
                ),
            ));
        };
        if out.iter().any(|(n, _)| n == known) {
            return Err(BadInput::new(known, "given more than once"));
        }
        out.push((known, value.into_owned()));
    }
    Ok(out)
}

/// A whole number in `min..=max` from a query parameter.
pub fn number(field: &str, value: &str, min: u32, max: u32) -> Result<u32, BadInput> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| BadInput::new(field, format!("must be a whole number from {min} to {max}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_field() {
        let e =
            parse_body::<AcquireBody>(br#"{"owner": "a", "ttl": "10m", "colour": 1}"#).unwrap_err();
        assert_eq!(e.field, "colour");
        let e = parse_body::<AcquireBody>(br#"{"ttl": "10m"}"#).unwrap_err();
        assert_eq!(e.field, "owner");
        let e = parse_body::<AcquireBody>(br#"{"owner": 5, "ttl": "10m"}"#).unwrap_err();
        assert_eq!(e.field, "owner");
        assert!(e.message.contains("expected a string"), "{e}");
        let e = parse_body::<ReleaseBody>(br#"{"lockId": "x", "status": "DONE"}"#).unwrap_err();
        assert_eq!(e.field, "status");
        let e = parse_body::<AcquireBody>(b"{").unwrap_err();
        assert_eq!(e.field, "body");
        let e = parse_body::<AcquireBody>(b"").unwrap_err();
        assert_eq!(e.field, "body");
        let e = parse_body::<AcquireBody>(br#"{"owner": "a", "ttl": "1m"} x"#).unwrap_err();
        assert_eq!(e.field, "body");
        assert!(ttl("ttl", "soon").unwrap_err().message.contains("`soon`"));
        assert_eq!(ttl("ttl", "0s").unwrap_err().field, "ttl");
        assert!(ttl("ttl", "30d").is_err());
        assert_eq!(ttl("ttl", "1h 30m").unwrap(), Duration::from_secs(5400));
    }

    #[test]
    fn query_parameters_are_known_and_single() {
        let q = query(Some("prefix=a%2Fb&pageSize=5"), &["prefix", "pageSize"]).unwrap();
        assert_eq!(q, vec![("prefix", "a/b".into()), ("pageSize", "5".into())]);
        assert_eq!(query(Some("x=1"), &["prefix"]).unwrap_err().field, "x");
        assert_eq!(
            query(Some("prefix=a&prefix=b"), &["prefix"])
                .unwrap_err()
                .field,
            "prefix"
        );
        assert_eq!(number("page", "0", 1, 10).unwrap_err().field, "page");
        assert_eq!(number("page", "3", 1, 10).unwrap(), 3);
    }
}
