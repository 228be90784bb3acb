//! A Lambda Runtime API on loopback, enough for a function built on
//! `lambda_runtime` to start, poll, take events and answer: `GET /2018-06-01/runtime/invocation/next`
//! (held open until an event is queued), `POST …/invocation/{id}/response`,
//! `POST …/invocation/{id}/error` and `POST …/init/error`. It records when
//! each poll arrived, which is what "ready for the first event" means.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::Notify;

const PREFIX: &str = "/2018-06-01/runtime";

/// What the function did so far.
#[derive(Default)]
pub struct LambdaState {
    /// When each `GET …/next` arrived.
    pub polls: Vec<Instant>,
    pending: VecDeque<(String, Bytes)>,
    /// `(request id, when, body)` of each response.
    pub responses: Vec<(String, Instant, Bytes)>,
    /// `(path, body)` of each error report.
    pub errors: Vec<(String, Bytes)>,
}

/// The running API; stops when dropped.
pub struct LambdaRuntimeApi {
    addr: SocketAddr,
    state: Arc<Mutex<LambdaState>>,
    changed: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl LambdaRuntimeApi {
    /// Starts on `127.0.0.1:0` with no invocation queued.
    pub async fn start() -> std::io::Result<LambdaRuntimeApi> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(LambdaState::default()));
        let changed = Arc::new(Notify::new());
        let (task_state, task_changed) = (Arc::clone(&state), Arc::clone(&changed));
        let task = tokio::spawn(baton_runtime::serve::serve(listener, move || {
            let (state, changed) = (Arc::clone(&task_state), Arc::clone(&task_changed));
            move |req| serve(req, Arc::clone(&state), Arc::clone(&changed))
        }));
        Ok(LambdaRuntimeApi {
            addr,
            state,
            changed,
            task,
        })
    }

    /// `127.0.0.1:PORT`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Queues an invocation for the next poll.
    pub fn invoke(&self, request_id: &str, payload: Bytes) {
        if let Ok(mut s) = self.state.lock() {
            s.pending.push_back((request_id.to_owned(), payload));
        }
        self.changed.notify_waiters();
    }

    /// Reads the state.
    pub fn with<T>(&self, f: impl FnOnce(&LambdaState) -> T) -> Option<T> {
        self.state.lock().ok().map(|s| f(&s))
    }

    /// Waits until `ready` holds, or `timeout`; returns whether it holds.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        ready: impl Fn(&LambdaState) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.with(&ready).unwrap_or(false) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.with(&ready).unwrap_or(false);
            }
        }
    }
}

impl Drop for LambdaRuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    req: Request<Incoming>,
    state: Arc<Mutex<LambdaState>>,
    changed: Arc<Notify>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let arrived = Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    if method == Method::GET && path == format!("{PREFIX}/invocation/next") {
        if let Ok(mut s) = state.lock() {
            s.polls.push(arrived);
        }
        changed.notify_waiters();
        loop {
            let notified = changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some((id, payload)) = state.lock().ok().and_then(|mut s| s.pending.pop_front()) {
                return Ok(invocation(&id, payload));
            }
            notified.await;
        }
    }
    if method != Method::POST {
        return Ok(plain(StatusCode::NOT_FOUND, "unknown runtime API route"));
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let invocation_id = path
        .strip_prefix(&format!("{PREFIX}/invocation/"))
        .and_then(|rest| rest.strip_suffix("/response"));
    if let Some(id) = invocation_id {
        if let Ok(mut s) = state.lock() {
            s.responses.push((id.to_owned(), Instant::now(), body));
        }
    } else if path.ends_with("/error") {
        if let Ok(mut s) = state.lock() {
            s.errors.push((path.clone(), body));
        }
    } else {
        return Ok(plain(StatusCode::NOT_FOUND, "unknown runtime API route"));
    }
    changed.notify_waiters();
    Ok(plain(StatusCode::ACCEPTED, r#"{"status":"OK"}"#))
}

fn invocation(request_id: &str, payload: Bytes) -> Response<Full<Bytes>> {
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64 + 30_000)
        .unwrap_or_default();
    let mut response = Response::new(Full::new(payload));
    let headers = response.headers_mut();
    let pairs = [
        ("content-type", "application/json".to_owned()),
        ("lambda-runtime-aws-request-id", request_id.to_owned()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:baton-worker".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            format!(
                "Root=1-{:08x}-{};Parent=0000000000000001;Sampled=0",
                deadline / 1000,
                uuid::Uuid::new_v4().simple()
            ),
        ),
    ];
    for (name, value) in pairs {
        if let Ok(value) = hyper::header::HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}
