//! A loopback HTTP proxy that counts and times requests at the wire and
//! injects faults.
//!
//! Every request is read whole, logged as a [`ProxiedRequest`], and handed to
//! a rule that picks a [`FaultAction`]: forward it, answer it without
//! forwarding, forward it and then lose the response (the write lands but the
//! client never hears), drop the connection, or delay it. The log records
//! when each request arrived and when the upstream's whole answer was in
//! hand, so the time a caller spent waiting on the upstream can be told from
//! its own. Each client connection gets its own kept-alive upstream
//! connection: the proxy adds no connection setup the client would not have
//! done itself.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct ProxiedRequest {
    /// Sequence number, from 0 when the proxy started, in arrival order.
    pub seq: usize,
    pub method: String,
    pub path: String,
    /// For DynamoDB, the operation from `X-Amz-Target` (e.g. `UpdateItem`).
    pub operation: String,
    pub body: Bytes,
    /// When the request head reached the proxy.
    pub arrived: Instant,
    /// When the upstream's whole answer was in hand (it is sent on at once);
    /// `None` while in flight, when it was not forwarded, or when the log was
    /// taken before the answer came.
    pub answered: Option<Instant>,
}

impl ProxiedRequest {
    /// The DynamoDB operation, or the path when there is none.
    pub fn label(&self) -> &str {
        if self.operation.is_empty() {
            &self.path
        } else {
            &self.operation
        }
    }

    /// From arrival to the upstream's answer, when it was answered.
    pub fn took(&self) -> Option<Duration> {
        self.answered
            .map(|answered| answered.saturating_duration_since(self.arrived))
    }
}

/// What to do with one request.
#[derive(Debug, Clone)]
pub enum FaultAction {
    Forward,
    /// Answer without forwarding.
    Respond {
        status: u16,
        content_type: &'static str,
        body: String,
    },
    /// Forward (so a write lands), then answer with this status instead of
    /// the real response: the ambiguous write.
    ForwardThenRespond {
        status: u16,
        body: String,
    },
    /// Forward, then close the connection without answering.
    ForwardThenDrop,
    /// Close the connection without forwarding.
    Drop,
    /// Wait, then forward (to exceed a client's timeout).
    Delay(Duration),
}

impl FaultAction {
    /// A DynamoDB-style error answer with the given `__type` short name,
    /// e.g. `ThrottlingException` (HTTP 400) or `InternalServerError` (500).
    pub fn dynamodb_error(status: u16, error_type: &str) -> FaultAction {
        FaultAction::Respond {
            status,
            content_type: "application/x-amz-json-1.0",
            body: format!(
                r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{error_type}","message":"injected by baton-testkit"}}"#
            ),
        }
    }
}

type Rule = dyn Fn(&ProxiedRequest) -> FaultAction + Send + Sync;

/// The requests seen since the last `take` or `clear`, and how many ever.
#[derive(Default)]
struct Log {
    requests: Vec<ProxiedRequest>,
    seen: usize,
}

/// A client connection's kept-alive connection to the upstream, parked here
/// between requests (a request that fails or is cancelled drops it).
type Upstream = Arc<Mutex<Option<SendRequest<Full<Bytes>>>>>;

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1:0` in front of `upstream` (an
    /// `http://host:port` URL) with `rule` deciding each request's fate.
    pub async fn start(
        upstream: &str,
        rule: impl Fn(&ProxiedRequest) -> FaultAction + Send + Sync + 'static,
    ) -> std::io::Result<FaultProxy> {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(Log::default()));
        let rule: Arc<Rule> = Arc::new(rule);
        let task_log = Arc::clone(&log);
        let task = tokio::spawn(baton_runtime::serve::serve(listener, move || {
            let (log, rule, upstream) =
                (Arc::clone(&task_log), Arc::clone(&rule), upstream.clone());
            let connection = Upstream::default();
            move |req| {
                handle(
                    req,
                    Arc::clone(&log),
                    Arc::clone(&rule),
                    upstream.clone(),
                    Arc::clone(&connection),
                )
            }
        }));
        Ok(FaultProxy { addr, log, task })
    }

    /// A proxy that forwards everything (a wire-level request counter).
    pub async fn passthrough(upstream: &str) -> std::io::Result<FaultProxy> {
        Self::start(upstream, |_| FaultAction::Forward).await
    }

    /// A proxy that forwards everything after `latency` (none when zero),
    /// standing in for the network a real service sits behind. The wait
    /// counts in each request's [`ProxiedRequest::took`].
    pub async fn with_latency(upstream: &str, latency: Duration) -> std::io::Result<FaultProxy> {
        Self::start(upstream, move |_| {
            if latency.is_zero() {
                FaultAction::Forward
            } else {
                FaultAction::Delay(latency)
            }
        })
        .await
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request seen so far.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        self.log
            .lock()
            .map(|l| l.requests.clone())
            .unwrap_or_default()
    }

    /// The requests seen so far, forgetting them.
    pub fn take(&self) -> Vec<ProxiedRequest> {
        self.log
            .lock()
            .map(|mut l| std::mem::take(&mut l.requests))
            .unwrap_or_default()
    }

    /// Operations seen so far, in order (e.g. `["UpdateItem", "UpdateItem"]`).
    pub fn operations(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.operation).collect()
    }

    /// Forgets the requests seen so far.
    pub fn clear(&self) {
        if let Ok(mut l) = self.log.lock() {
            l.requests.clear();
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug)]
struct Dropped;
impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}
impl std::error::Error for Dropped {}

async fn handle(
    req: Request<Incoming>,
    log: Arc<Mutex<Log>>,
    rule: Arc<Rule>,
    upstream: String,
    connection: Upstream,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let arrived = Instant::now();
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or_default()
        .to_owned();
    let seen = {
        let mut log = log.lock().map_err(|_| Dropped)?;
        let seen = ProxiedRequest {
            seq: log.seen,
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            operation,
            body: body.clone(),
            arrived,
            answered: None,
        };
        log.seen += 1;
        log.requests.push(seen.clone());
        seen
    };
    let forward = |parts, body| answer(&upstream, &connection, &log, seen.seq, parts, body);
    match rule(&seen) {
        FaultAction::Forward => forward(parts, body).await,
        FaultAction::Delay(d) => {
            tokio::time::sleep(d).await;
            forward(parts, body).await
        }
        FaultAction::Respond {
            status,
            content_type,
            body,
        } => Ok(plain(status, content_type, body)),
        FaultAction::ForwardThenRespond {
            status,
            body: answer,
        } => {
            let _ = forward(parts, body).await;
            Ok(plain(status, "application/x-amz-json-1.0", answer))
        }
        FaultAction::ForwardThenDrop => {
            let _ = forward(parts, body).await;
            Err(Dropped)
        }
        FaultAction::Drop => Err(Dropped),
    }
}

/// Forwards one request and notes in the log when its answer came.
async fn answer(
    upstream: &str,
    connection: &Upstream,
    log: &Mutex<Log>,
    seq: usize,
    parts: hyper::http::request::Parts,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let response = forward(upstream, connection, parts, body).await?;
    let answered = Instant::now();
    if let Ok(mut log) = log.lock()
        && let Some(entry) = log.requests.iter_mut().rev().find(|r| r.seq == seq)
    {
        entry.answered = Some(answered);
    }
    Ok(response)
}

/// Sends one request upstream on the client connection's kept-alive
/// upstream connection (opened when there is none or it was closed) and
/// reads the whole answer.
async fn forward(
    upstream: &str,
    connection: &Upstream,
    parts: hyper::http::request::Parts,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let parked = connection.lock().ok().and_then(|mut c| c.take());
    let mut sender = match parked {
        Some(sender) if !sender.is_closed() => sender,
        _ => {
            let stream = TcpStream::connect(upstream).await.map_err(|_| Dropped)?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|_| Dropped)?;
            tokio::spawn(conn);
            sender
        }
    };
    sender.ready().await.map_err(|_| Dropped)?;
    let response = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await
        .map_err(|_| Dropped)?;
    let (rparts, rbody) = response.into_parts();
    let rbody = rbody.collect().await.map_err(|_| Dropped)?.to_bytes();
    if let Ok(mut c) = connection.lock() {
        *c = Some(sender);
    }
    Ok(Response::from_parts(rparts, Full::new(rbody)))
}

fn plain(status: u16, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}
