//! The OpenAPI document of `/v1`, committed as `crates/api/openapi.json`
//! and served at `GET /v1/openapi.json` (any valid token): one file that
//! the tests hold to the routes the API serves, in both directions.

use lambda_http::http::StatusCode;

use crate::answer::Answer;
use crate::tokens::Token;

/// The document as committed.
pub const DOCUMENT: &str = include_str!("../openapi.json");

/// `GET /v1/openapi.json`.
pub fn answer(_token: &Token) -> Answer {
    match serde_json::from_str(DOCUMENT) {
        Ok(doc) => Answer::ok("openapi", doc),
        Err(e) => Answer::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "openapi_invalid",
            format!("the bundled OpenAPI document does not parse: {e}"),
        ),
    }
}
