//! The dashboard: one static page, a script and a stylesheet, bundled into
//! the binary. The files are public and carry no data; the page asks for a
//! token (kept in `sessionStorage`, or taken from the URL fragment, which
//! browsers never send to a server) and reads every lock through the
//! authenticated `/v1` routes. A query string would land in access logs,
//! and a cookie would let other sites' pages make requests with it.
//!
//! The script builds the page with `textContent` only, never HTML from
//! data: a purpose or owner name is whatever a caller wrote.

use crate::answer::Answer;
use crate::route::Asset;

/// The page.
pub const HTML: &str = include_str!("../dashboard/index.html");
/// Its script.
pub const SCRIPT: &str = include_str!("../dashboard/dashboard.js");
/// Its stylesheet.
pub const STYLE: &str = include_str!("../dashboard/dashboard.css");

/// Scripts and styles from this origin only, no inline code, no framing,
/// and requests only to this origin: a script injected through a lock's
/// fields would have nowhere to run and nowhere to send a token.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One of the dashboard's files.
pub fn asset(asset: Asset) -> Answer {
    let answer = match asset {
        Asset::Html => Answer::asset("text/html; charset=utf-8", HTML),
        Asset::Script => Answer::asset("text/javascript; charset=utf-8", SCRIPT),
        Asset::Style => Answer::asset("text/css; charset=utf-8", STYLE),
    };
    answer.with_header(lambda_http::http::header::CONTENT_SECURITY_POLICY, CSP)
}
