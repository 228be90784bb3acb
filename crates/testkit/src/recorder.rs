//! A loopback HTTP server that stands in for Slack and GitHub: it records
//! every request and answers from a script, so tests see exactly what baton
//! sent over real HTTP and can make the far side fail on demand.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// One request as received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The query string, without its `?` (empty when there is none): some
    /// APIs (Azure DevOps' `api-version`) are addressed by it.
    pub query: String,
    pub headers: HashMap<String, String>,
    pub body: Bytes,
}

impl RecordedRequest {
    /// The body parsed as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    /// Wait this long before answering (to exceed a client timeout).
    pub delay: Duration,
    /// Hold the answer until this many requests to the same path prefix have
    /// arrived (at most 5 s, then answer 504): proves callers run concurrently
    /// without timing anything.
    pub gate: usize,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            body: body.into(),
            headers: Vec::new(),
            delay: Duration::ZERO,
            gate: 0,
        }
    }

    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply::new(status, body.to_string()).header("content-type", "application/json")
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    /// See [`Reply::gate`].
    pub fn gated(mut self, arrivals: usize) -> Reply {
        self.gate = arrivals;
        self
    }
}

/// A reply computed from the request itself (see [`HttpRecorder::handler`]).
pub type ReplyFuture = Pin<Box<dyn Future<Output = Reply> + Send>>;
type Handler = dyn Fn(RecordedRequest) -> ReplyFuture + Send + Sync;

#[derive(Default)]
struct State {
    requests: Vec<RecordedRequest>,
    /// Scripted replies per path prefix, used once each in order.
    scripted: Vec<(String, VecDeque<Reply>)>,
    /// Reply when nothing is scripted, per path prefix.
    defaults: Vec<(String, Reply)>,
    /// Computed replies per path prefix; they take precedence over scripts and defaults.
    handlers: Vec<(String, Arc<Handler>)>,
}

/// The running recorder; stops when dropped.
pub struct HttpRecorder {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpRecorder {
    /// Starts on `127.0.0.1:0`, answering `200 {"ok":true}` until told otherwise.
    pub async fn start() -> std::io::Result<HttpRecorder> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let arrived = Arc::new(Notify::new());
        let (task_state, task_arrived) = (Arc::clone(&state), Arc::clone(&arrived));
        let task = tokio::spawn(baton_runtime::serve::serve(listener, move || {
            let (state, arrived) = (Arc::clone(&task_state), Arc::clone(&task_arrived));
            move |req| answer(req, Arc::clone(&state), Arc::clone(&arrived))
        }));
        Ok(HttpRecorder {
            addr,
            state,
            arrived,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next requests whose path starts with `path_prefix` with
    /// `replies`, in order; afterwards the default applies again.
    pub fn script(&self, path_prefix: &str, replies: impl IntoIterator<Item = Reply>) {
        if let Ok(mut s) = self.state.lock() {
            s.scripted
                .push((path_prefix.to_owned(), replies.into_iter().collect()));
        }
    }

    /// The reply for `path_prefix` whenever nothing is scripted.
    pub fn default_reply(&self, path_prefix: &str, reply: Reply) {
        if let Ok(mut s) = self.state.lock() {
            s.defaults.retain(|(p, _)| p != path_prefix);
            s.defaults.push((path_prefix.to_owned(), reply));
        }
    }

    /// Answers every request whose path starts with `path_prefix` with what
    /// `handler` computes from it (after the request is recorded), ahead of
    /// scripted and default replies. For far sides whose answer depends on
    /// what was asked or on earlier requests (e.g. GitHub listing the runs
    /// that earlier dispatches started), or that must look at the world at the
    /// moment a request arrives.
    pub fn handler(
        &self,
        path_prefix: &str,
        handler: impl Fn(RecordedRequest) -> ReplyFuture + Send + Sync + 'static,
    ) {
        if let Ok(mut s) = self.state.lock() {
            s.handlers.retain(|(p, _)| p != path_prefix);
            s.handlers.push((path_prefix.to_owned(), Arc::new(handler)));
        }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state
            .lock()
            .map(|s| s.requests.clone())
            .unwrap_or_default()
    }

    /// Requests whose path starts with `path_prefix`.
    pub fn requests_to(&self, path_prefix: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.starts_with(path_prefix))
            .collect()
    }

    /// Waits until at least `count` requests to `path_prefix` arrived, or
    /// `timeout` passes; returns them either way.
    pub async fn wait_for(
        &self,
        path_prefix: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<RecordedRequest> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            tokio::pin!(notified);
            // Register before looking, so an arrival in between is not missed.
            notified.as_mut().enable();
            let seen = self.requests_to(path_prefix);
            if seen.len() >= count {
                return seen;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.requests_to(path_prefix);
            }
        }
    }
}

impl Drop for HttpRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

enum Answer {
    Ready(Reply),
    Computed(Arc<Handler>),
}

async fn answer(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers,
        body,
    };
    let (reply, prefix) = {
        let Ok(mut s) = state.lock() else {
            return Ok(build(&Reply::new(500, "recorder poisoned")));
        };
        s.requests.push(recorded.clone());
        let handler = s
            .handlers
            .iter()
            .find(|(p, _)| path.starts_with(p.as_str()))
            .map(|(_, h)| Arc::clone(h));
        match handler {
            Some(handler) => (Answer::Computed(handler), String::new()),
            None => {
                let (reply, prefix) = scripted_or_default(&mut s, &path);
                (Answer::Ready(reply), prefix)
            }
        }
    };
    arrived.notify_waiters();
    let reply = match reply {
        Answer::Ready(reply) => reply,
        Answer::Computed(handler) => handler(recorded).await,
    };
    if reply.gate > 0 && !gate_opens(&state, &arrived, &prefix, reply.gate).await {
        return Ok(build(&Reply::new(
            504,
            "gate timed out: the caller did not send requests concurrently",
        )));
    }
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    Ok(build(&reply))
}

/// The next scripted reply for `path`, else its default, with the path
/// prefix it was chosen by (for gates).
fn scripted_or_default(s: &mut State, path: &str) -> (Reply, String) {
    let scripted = s
        .scripted
        .iter_mut()
        .find(|(p, q)| path.starts_with(p.as_str()) && !q.is_empty())
        .and_then(|(_, q)| q.pop_front());
    let prefix = s
        .scripted
        .iter()
        .map(|(p, _)| p)
        .chain(s.defaults.iter().map(|(p, _)| p))
        .find(|p| path.starts_with(p.as_str()))
        .cloned()
        .unwrap_or_else(|| path.to_owned());
    let reply = scripted
        .or_else(|| {
            s.defaults
                .iter()
                .find(|(p, _)| path.starts_with(p.as_str()))
                .map(|(_, r)| r.clone())
        })
        .unwrap_or_else(|| Reply::json(200, serde_json::json!({"ok": true})));
    (reply, prefix)
}

/// Waits until `count` requests to `prefix` have arrived (up to 5 s).
async fn gate_opens(state: &Mutex<State>, arrived: &Notify, prefix: &str, count: usize) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let notified = arrived.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let seen = state
            .lock()
            .map(|s| {
                s.requests
                    .iter()
                    .filter(|r| r.path.starts_with(prefix))
                    .count()
            })
            .unwrap_or_default();
        if seen >= count {
            return true;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return false;
        }
    }
}

fn build(reply: &Reply) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(reply.body.clone())));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in &reply.headers {
        if let (Ok(n), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(n, v);
        }
    }
    response
}
