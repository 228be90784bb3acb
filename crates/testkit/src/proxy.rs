//! A loopback HTTP proxy that counts requests at the wire and injects faults.
//!
//! Every request is read whole, logged as a [`ProxiedRequest`], and handed to
//! a rule that picks a [`FaultAction`]: forward it, answer it without
//! forwarding, forward it and then lose the response (the write lands but the
//! client never hears), drop the connection, or delay it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct ProxiedRequest {
    /// Sequence number, from 0, in arrival order.
    pub seq: usize,
    pub method: String,
    pub path: String,
    /// For DynamoDB, the operation from `X-Amz-Target` (e.g. `UpdateItem`).
    pub operation: String,
    pub body: Bytes,
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

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<ProxiedRequest>>>,
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
        let log = Arc::new(Mutex::new(Vec::new()));
        let rule: Arc<Rule> = Arc::new(rule);
        let task_log = Arc::clone(&log);
        let task = tokio::spawn(baton_runtime::serve::serve(listener, move || {
            let (log, rule, upstream) =
                (Arc::clone(&task_log), Arc::clone(&rule), upstream.clone());
            move |req| handle(req, Arc::clone(&log), Arc::clone(&rule), upstream.clone())
        }));
        Ok(FaultProxy { addr, log, task })
    }

    /// A proxy that forwards everything (a wire-level request counter).
    pub async fn passthrough(upstream: &str) -> std::io::Result<FaultProxy> {
        Self::start(upstream, |_| FaultAction::Forward).await
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request seen so far.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Operations seen so far, in order (e.g. `["UpdateItem", "UpdateItem"]`).
    pub fn operations(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.operation).collect()
    }

    /// Forgets the requests seen so far.
    pub fn clear(&self) {
        if let Ok(mut l) = self.log.lock() {
            l.clear();
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
    log: Arc<Mutex<Vec<ProxiedRequest>>>,
    rule: Arc<Rule>,
    upstream: String,
) -> Result<Response<Full<Bytes>>, Dropped> {
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
            seq: log.len(),
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            operation,
            body: body.clone(),
        };
        log.push(seen.clone());
        seen
    };
    let forward = |parts: hyper::http::request::Parts, body: Bytes| {
        let upstream = upstream.clone();
        async move {
            let stream = TcpStream::connect(&upstream).await.map_err(|_| Dropped)?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|_| Dropped)?;
            tokio::spawn(conn);
            let response = sender
                .send_request(Request::from_parts(parts, Full::new(body)))
                .await
                .map_err(|_| Dropped)?;
            let (rparts, rbody) = response.into_parts();
            let rbody = rbody.collect().await.map_err(|_| Dropped)?.to_bytes();
            Ok::<_, Dropped>(Response::from_parts(rparts, Full::new(rbody)))
        }
    };
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
