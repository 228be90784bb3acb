//! [`Answer`]: a response before it becomes a transport's type (a hyper
//! response for `--listen`, a Lambda response in AWS), and the JSON error
//! shape every refusal uses:
//!
//! ```json
//! {"error": "held", "message": "lock `deploy/prod` is held by …", "field": "ttl", "holder": {…}}
//! ```
//!
//! `error` is a stable machine name, `message` says what to do, `field`
//! names the request field at fault (bad input only), and a conflict
//! carries the record that explains it.

use lambda_http::http::{self, HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};

/// Body of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Sent as `application/json`.
    Json(Value),
    /// A bundled dashboard file with its content type.
    Static {
        content_type: &'static str,
        text: &'static str,
    },
}

/// One response: status, body, extra headers and what happened (for the
/// request's log line).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Body,
    /// Stable name of what happened (`acquired`, `held`, `unauthenticated`…).
    pub outcome: &'static str,
    /// Extra headers (`Allow`, `WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(header::HeaderName, &'static str)>,
}

impl Answer {
    /// A JSON answer.
    pub fn json(status: StatusCode, outcome: &'static str, body: Value) -> Answer {
        Answer {
            status,
            body: Body::Json(body),
            outcome,
            headers: Vec::new(),
        }
    }

    /// 200 with `body`.
    pub fn ok(outcome: &'static str, body: Value) -> Answer {
        Answer::json(StatusCode::OK, outcome, body)
    }

    /// A refusal in the common error shape.
    pub fn error(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Answer {
        Answer::json(
            status,
            kind,
            json!({"error": kind, "message": message.into()}),
        )
    }

    /// A 400 naming the request field at fault.
    pub fn bad_input(field: &str, message: impl Into<String>) -> Answer {
        let message = message.into();
        Answer::json(
            StatusCode::BAD_REQUEST,
            "bad_input",
            json!({"error": "bad_input", "field": field, "message": format!("{field}: {message}")}),
        )
    }

    /// A bundled static file.
    pub fn asset(content_type: &'static str, text: &'static str) -> Answer {
        Answer {
            status: StatusCode::OK,
            body: Body::Static { content_type, text },
            outcome: "asset",
            headers: Vec::new(),
        }
    }

    /// The same answer with one more header.
    pub fn with_header(mut self, name: header::HeaderName, value: &'static str) -> Answer {
        self.headers.push((name, value));
        self
    }

    /// The same answer with `field` set to `value` in its JSON object.
    pub fn with_field(mut self, field: &str, value: Value) -> Answer {
        if let Body::Json(Value::Object(map)) = &mut self.body {
            map.insert(field.to_owned(), value);
        }
        self
    }

    /// The JSON object of the body, if it is one (for tests and logging).
    pub fn object(&self) -> Option<&Map<String, Value>> {
        match &self.body {
            Body::Json(Value::Object(map)) => Some(map),
            _ => None,
        }
    }

    /// The HTTP response. Every answer says `nosniff` and forbids framing;
    /// JSON is never cached (it holds lock ids and live state).
    pub fn into_response(self) -> http::Response<String> {
        let (content_type, body, cache) = match self.body {
            Body::Json(v) => ("application/json", v.to_string(), "no-store"),
            Body::Static { content_type, text } => (content_type, text.to_owned(), "no-cache"),
        };
        let mut response = http::Response::new(body);
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        for (name, value) in self.headers {
            headers.insert(name, HeaderValue::from_static(value));
        }
        response
    }
}
