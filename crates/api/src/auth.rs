//! Who is calling: the bearer token of a request, looked up among the
//! configured [`Tokens`]. Every route but the dashboard's static files
//! needs one; refusals say what was wrong without echoing the token.

use lambda_http::http::{HeaderMap, StatusCode, header};

use crate::answer::Answer;
use crate::scope::Need;
use crate::tokens::{Token, Tokens};

/// The token a request carries (`Authorization: Bearer <token>`), or the
/// 401 that refuses it.
pub fn authenticate<'t>(tokens: &'t Tokens, headers: &HeaderMap) -> Result<&'t Token, Answer> {
    let challenge = |message: &str, outcome: &'static str| {
        let mut answer = Answer::error(StatusCode::UNAUTHORIZED, "unauthenticated", message);
        answer.outcome = outcome;
        answer.with_header(header::WWW_AUTHENTICATE, "Bearer realm=\"baton\"")
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(challenge(
            "an API token is required: send `Authorization: Bearer <token>`",
            "no_token",
        ));
    };
    let presented = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty());
    let Some(presented) = presented else {
        return Err(challenge(
            "the Authorization header must be `Bearer <token>`",
            "malformed_token",
        ));
    };
    tokens
        .identify(presented)
        .ok_or_else(|| challenge("the API token is not known", "unknown_token"))
}

/// `Ok` when `token` may do what `need` says, else the 403 naming what it lacks.
pub fn authorize(token: &Token, need: Need<'_>) -> Result<(), Answer> {
    if token.allows(need) {
        return Ok(());
    }
    let wanted = match need {
        Need::ReadKey(key) => {
            format!("read `{key}` (needs `read`, `lock:PREFIX` covering it, or `admin`)")
        }
        Need::ReadAll => "read across keys (needs `read` or `admin`)".to_owned(),
        Need::Lock(key) => format!("lock `{key}` (needs `lock:PREFIX` covering it, or `admin`)"),
        Need::Admin => "force unlock (needs `admin`)".to_owned(),
    };
    Err(Answer::error(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "token `{}` may not {wanted}; its scopes: {}",
            token.name,
            token.scope_names()
        ),
    ))
}
