//! Request signatures: Slack's v0 scheme and GitHub's `X-Hub-Signature-256`,
//! and the constant-time check of a plain shared secret
//! ([`verify_shared_secret`]) for senders that sign nothing.
//!
//! Both are HMAC-SHA256 over the raw request body bytes, hex-encoded, and
//! both are checked with `Mac::verify_slice`: the MAC is recomputed and the
//! two digests compared in constant time, without early exit, so response
//! timing says nothing about how much of a forged signature was right.
//! Always verify the bytes as received (after undoing a transport's base64);
//! never a re-serialised, parsed form.

use hmac::digest::OutputSizeUser;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How far Slack's request timestamp may be from our clock, either way,
/// before the request counts as a replay (Slack's recommendation: 5 minutes).
pub const SLACK_MAX_SKEW_SECS: u64 = 300;

/// Why a signature was refused. Callers answer every variant with a bare
/// 401; the variant is for logs only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature or timestamp header is absent.
    #[error("signature header missing")]
    Missing,
    /// The header is present but not in the expected `v0=<hex>` /
    /// `sha256=<hex>` shape, or the timestamp is not a number.
    #[error("signature header malformed")]
    Malformed,
    /// The timestamp is more than [`SLACK_MAX_SKEW_SECS`] from now.
    #[error("timestamp outside the replay window")]
    Stale,
    /// The MAC does not match.
    #[error("signature mismatch")]
    Mismatch,
}

/// HMAC-SHA256 of `parts` concatenated, keyed with `secret`, ready to be
/// finalised (to sign) or verified (to check a header).
fn mac(secret: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    for p in parts {
        m.update(p);
    }
    m
}

/// Hex digest of `mac`, as the signature headers carry it.
fn hex_digest(mac: HmacSha256) -> String {
    hex::encode(mac.finalize().into_bytes())
}

/// The digest a header carries, decoded; a digest of the wrong length is
/// refused as malformed, which only reveals that the header was not a
/// SHA-256 digest.
fn decode_digest(given_hex: &str) -> Result<Vec<u8>, SignatureError> {
    let given = hex::decode(given_hex).map_err(|_| SignatureError::Malformed)?;
    if given.len() != HmacSha256::output_size() {
        return Err(SignatureError::Malformed);
    }
    Ok(given)
}

/// Checks a hex digest from a header against `expected`; `verify_slice`
/// compares in constant time.
fn hex_matches(expected: HmacSha256, given_hex: &str) -> Result<(), SignatureError> {
    let given = decode_digest(given_hex)?;
    expected
        .verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch)
}

/// The key both sides of a shared-secret comparison are hashed under; it
/// need not be secret, it only gives the two values digests of one length.
const SHARED_SECRET_KEY: &[u8] = b"baton shared-secret comparison";

/// Checks a shared secret sent as it is (Azure DevOps service hooks sign
/// nothing: they send a configured credential) against `secret`. Both are
/// reduced to HMAC digests under one key, so their lengths do not show, and
/// the digests are compared with `verify_slice`, in constant time.
pub fn verify_shared_secret(secret: &[u8], given: &[u8]) -> Result<(), SignatureError> {
    if given.is_empty() {
        return Err(SignatureError::Missing);
    }
    let expected = mac(SHARED_SECRET_KEY, &[secret]).finalize().into_bytes();
    mac(SHARED_SECRET_KEY, &[given])
        .verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// Slack's `v0=<hex>` signature over `v0:{timestamp}:{body}`.
pub fn slack_signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mac = mac(secret, &[b"v0:", timestamp.as_bytes(), b":", body]);
    format!("v0={}", hex_digest(mac))
}

/// Verifies a Slack request: `timestamp` and `signature` are the
/// `X-Slack-Request-Timestamp` and `X-Slack-Signature` header values (if
/// present), `body` the raw body bytes, `now_secs` the current Unix time.
///
/// The timestamp window is checked first, but the MAC covers the timestamp,
/// so a replayed request cannot be freshened by editing the header.
pub fn verify_slack(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_secs: u64,
) -> Result<(), SignatureError> {
    verify_slack_any(&[secret], timestamp, signature, body, now_secs).map(|_| ())
}

/// [`verify_slack`] against several signing secrets at once, so a secret
/// can be rotated without a moment in which requests signed with the old
/// or the new one are refused. Every secret is tried, each with the
/// constant-time comparison, and none is skipped when an earlier one
/// matched, so timing does not say which matched. The answer is the index
/// in `secrets` of the first that matched (for the log that tells an
/// operator when the old secret is no longer used); with none, `Mismatch`.
pub fn verify_slack_any(
    secrets: &[&[u8]],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_secs: u64,
) -> Result<usize, SignatureError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(SignatureError::Missing);
    };
    let ts: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Malformed)?;
    if ts.abs_diff(now_secs) > SLACK_MAX_SKEW_SECS {
        return Err(SignatureError::Stale);
    }
    let given = signature
        .trim()
        .strip_prefix("v0=")
        .ok_or(SignatureError::Malformed)?;
    let given = decode_digest(given)?;
    let mut matched = None;
    for (i, secret) in secrets.iter().enumerate() {
        let expected = mac(secret, &[b"v0:", timestamp.as_bytes(), b":", body]);
        if expected.verify_slice(&given).is_ok() && matched.is_none() {
            matched = Some(i);
        }
    }
    matched.ok_or(SignatureError::Mismatch)
}

/// GitHub's `sha256=<hex>` signature of `body`.
pub fn github_signature(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex_digest(mac(secret, &[body])))
}

/// Verifies GitHub's `X-Hub-Signature-256` header over the raw body. GitHub
/// sends no timestamp, so there is no replay window; a replayed completion
/// is harmless (the worker checks the fence, and SQS deduplicates).
pub fn verify_github(
    secret: &[u8],
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let signature = signature.ok_or(SignatureError::Missing)?;
    let given = signature
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    hex_matches(mac(secret, &[body]), given)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's published test vector.
    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const EXPECTED: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const TS_NUM: u64 = 1_531_420_618;

    fn verify(
        secret: &[u8],
        ts: &str,
        sig: &str,
        body: &str,
        now: u64,
    ) -> Result<(), SignatureError> {
        verify_slack(secret, Some(ts), Some(sig), body.as_bytes(), now)
    }

    #[test]
    fn slack_test_vector_signs_and_verifies() {
        assert_eq!(slack_signature(SECRET, TS, BODY.as_bytes()), EXPECTED);
        assert_eq!(verify(SECRET, TS, EXPECTED, BODY, TS_NUM), Ok(()));
    }

    #[test]
    fn slack_changed_body_secret_or_timestamp_fails() {
        let body = BODY.replace("roadrunner", "wile-e");
        assert_eq!(
            verify(SECRET, TS, EXPECTED, &body, TS_NUM),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                b"8f742231b10e8888abcd99yyyzzz85a6",
                TS,
                EXPECTED,
                BODY,
                TS_NUM
            ),
            Err(SignatureError::Mismatch)
        );
        // A fresher timestamp header with the old signature: the MAC covers it.
        assert_eq!(
            verify(SECRET, "1531420619", EXPECTED, BODY, TS_NUM),
            Err(SignatureError::Mismatch)
        );
        // One flipped hex digit.
        let flipped = EXPECTED.replace("a2114d", "a2114e");
        assert_eq!(
            verify(SECRET, TS, &flipped, BODY, TS_NUM),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn slack_replay_window_is_300_seconds_either_way() {
        assert_eq!(verify(SECRET, TS, EXPECTED, BODY, TS_NUM + 299), Ok(()));
        assert_eq!(verify(SECRET, TS, EXPECTED, BODY, TS_NUM + 300), Ok(()));
        assert_eq!(
            verify(SECRET, TS, EXPECTED, BODY, TS_NUM + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(verify(SECRET, TS, EXPECTED, BODY, TS_NUM - 299), Ok(()));
        assert_eq!(
            verify(SECRET, TS, EXPECTED, BODY, TS_NUM - 301),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn slack_malformed_or_missing_headers_fail() {
        assert_eq!(
            verify_slack(SECRET, None, Some(EXPECTED), BODY.as_bytes(), TS_NUM),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_slack(SECRET, Some(TS), None, BODY.as_bytes(), TS_NUM),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(SECRET, "soon", EXPECTED, BODY, TS_NUM),
            Err(SignatureError::Malformed)
        );
        let v1 = EXPECTED.replace("v0=", "v1=");
        assert_eq!(
            verify(SECRET, TS, &v1, BODY, TS_NUM),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(SECRET, TS, "v0=zz", BODY, TS_NUM),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(SECRET, TS, &EXPECTED[..EXPECTED.len() - 2], BODY, TS_NUM),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn either_of_two_secrets_verifies_and_neither_is_refused() {
        let other: &[u8] = b"the-next-signing-secret";
        let both = [SECRET, other];
        let check = |secrets: &[&[u8]], sig: &str| {
            verify_slack_any(secrets, Some(TS), Some(sig), BODY.as_bytes(), TS_NUM)
        };
        assert_eq!(check(&both, EXPECTED), Ok(0));
        let by_other = slack_signature(other, TS, BODY.as_bytes());
        assert_eq!(check(&both, &by_other), Ok(1));
        assert_eq!(check(&[other, SECRET], EXPECTED), Ok(1));
        let by_neither = slack_signature(b"a third secret", TS, BODY.as_bytes());
        assert_eq!(check(&both, &by_neither), Err(SignatureError::Mismatch));
        assert_eq!(check(&[], EXPECTED), Err(SignatureError::Mismatch));
        assert_eq!(check(&[SECRET, SECRET], EXPECTED), Ok(0));
        assert_eq!(
            verify_slack_any(
                &both,
                Some(TS),
                Some(EXPECTED),
                BODY.as_bytes(),
                TS_NUM + 301
            ),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn github_signature_good_and_bad() {
        let secret = b"It's a Secret to Everybody";
        let body = b"Hello, World!";
        // GitHub's documented example for X-Hub-Signature-256.
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(github_signature(secret, body), good);
        assert_eq!(verify_github(secret, Some(good), body), Ok(()));
        assert_eq!(
            verify_github(secret, Some(good), b"Hello, World?"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_github(b"another secret", Some(good), body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_github(secret, None, body),
            Err(SignatureError::Missing)
        );
        let sha1_style = good.replace("sha256=", "sha1=");
        assert_eq!(
            verify_github(secret, Some(&sha1_style), body),
            Err(SignatureError::Malformed)
        );
    }
}
