//! [`Api`]: one request in, one answer out. Routing, authentication and
//! the request's log line live here; what each route does lives in
//! [`crate::v1`], [`crate::tracker`] and [`crate::dashboard`].
//!
//! Generic over [`LockStore`], so the same handler runs on DynamoDB in
//! production and in the HTTP tests, and on the memory store where a test
//! only needs the decisions.

use std::time::{Duration, Instant};

use baton_lock::{HistoryClient, LockStore};
use bytes::Bytes;
use lambda_http::http::{self, StatusCode, header};
use tracing::{info, warn};

use crate::answer::Answer;
use crate::auth;
use crate::route::{self, Miss, Route};
use crate::tokens::Tokens;
use crate::{dashboard, history, openapi, tracker, v1};

/// Largest request body read. The biggest body the API takes is an
/// acquire with every optional text field filled (about 10 KiB); anything
/// larger is refused with 413 before it is parsed.
pub const MAX_BODY: usize = 64 * 1024;

/// Tunables read at start-up (see `crate::app`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Lease of a lock taken through the Tracker paths, which have no TTL
    /// field: Tracker locks never expired, baton leases do, so this is long.
    pub tracker_ttl: Duration,
    /// The longest `wait` an acquire may ask for: the request stays open
    /// that long, and a Lambda behind a Function URL must answer in time.
    pub max_wait: Duration,
    /// With `queue`: how long a handed-off turn waits to be claimed.
    pub claim_window: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            tracker_ttl: Duration::from_secs(12 * 3600),
            max_wait: Duration::from_secs(25),
            claim_window: Duration::from_secs(15),
        }
    }
}

/// The API over one lock store.
#[derive(Debug, Clone)]
pub struct Api<S: LockStore> {
    pub(crate) store: S,
    pub(crate) tokens: Tokens,
    pub(crate) settings: Settings,
    /// The history table's reader; `None` answers the history routes 404.
    pub(crate) history: Option<HistoryClient>,
}

impl<S: LockStore> Api<S> {
    /// An API answering with `store`, accepting `tokens`.
    pub fn new(store: S, tokens: Tokens, settings: Settings) -> Api<S> {
        Api {
            store,
            tokens,
            settings,
            history: None,
        }
    }

    /// The same API reading ended grants from `history`.
    pub fn with_history(mut self, history: HistoryClient) -> Api<S> {
        self.history = Some(history);
        self
    }

    /// The store this API answers from.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Answers one request, logging one line about it: the route's
    /// template (never the raw path: a Tracker path carries a lock id, which
    /// releases the lock), the key when there is one, the caller's token
    /// name (never the token), status and outcome.
    pub async fn handle(&self, req: http::Request<Bytes>) -> http::Response<String> {
        let started = Instant::now();
        let routed = route::route(req.method(), req.uri().path());
        let (template, key) = match &routed {
            Ok(r) => (
                r.template().map_or("asset", |(_, path)| path),
                r.key().map(str::to_owned),
            ),
            Err(_) => ("unrouted", None),
        };
        let (answer, caller) = self.answer(&req, routed).await;
        let status = answer.status.as_u16();
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if answer.status.is_server_error() {
            warn!(method = %req.method(), route = template, key, status, outcome = answer.outcome, caller, elapsed_ms, "request failed");
        } else {
            info!(method = %req.method(), route = template, key, status, outcome = answer.outcome, caller, elapsed_ms, "request");
        }
        answer.into_response()
    }

    /// Answers a Lambda (Function URL / API Gateway) event.
    pub async fn handle_lambda(
        &self,
        req: lambda_http::Request,
    ) -> http::Response<lambda_http::Body> {
        let (parts, body) = req.into_parts();
        let bytes = match body {
            lambda_http::Body::Text(s) => Bytes::from(s),
            lambda_http::Body::Binary(b) => Bytes::from(b),
            _ => Bytes::new(),
        };
        self.handle(http::Request::from_parts(parts, bytes))
            .await
            .map(lambda_http::Body::Text)
    }

    async fn answer(
        &self,
        req: &http::Request<Bytes>,
        routed: Result<Route, Miss>,
    ) -> (Answer, Option<String>) {
        let route = match routed {
            Ok(route) => route,
            Err(miss) => return (missed(miss), None),
        };
        if let Route::Asset(asset) = route {
            // The dashboard's files are the same for everyone and carry no
            // data: every lock it shows comes through authenticated /v1 calls.
            return (dashboard::asset(asset), None);
        }
        let token = match auth::authenticate(&self.tokens, req.headers()) {
            Ok(token) => token,
            Err(answer) => return (answer, None),
        };
        let caller = Some(token.name.clone());
        if req.body().len() > MAX_BODY {
            let answer = Answer::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the body is over {MAX_BODY} bytes"),
            );
            return (answer, caller);
        }
        let query = req.uri().query();
        let body = req.body();
        let answer = match route {
            Route::Asset(asset) => dashboard::asset(asset),
            Route::OpenApi => openapi::answer(token),
            Route::List => v1::list(self, token, query).await,
            Route::Status { key } => v1::status(self, token, &key).await,
            Route::History => history::recent(self, token, query).await,
            Route::KeyHistory { key } => history::for_key(self, token, &key, query).await,
            Route::Lock { key, action } => v1::act(self, token, &key, action, body).await,
            Route::TrackerCreate => tracker::create(self, token, body).await,
            Route::TrackerGet { id } => tracker::get(self, token, &id).await,
            Route::TrackerUnlock { id } => tracker::unlock(self, token, &id).await,
            Route::TrackerList => tracker::list(self, token, query).await,
        };
        (answer, caller)
    }
}

fn missed(miss: Miss) -> Answer {
    match miss {
        Miss::NotFound => Answer::error(StatusCode::NOT_FOUND, "not_found", "no such path"),
        Miss::Method { allow } => Answer::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this path takes {allow}"),
        )
        .with_header(header::ALLOW, allow),
        Miss::BadKey(message) => Answer::bad_input("key", message),
    }
}
