//! Loopback plumbing: a proxy that times every request it forwards, a
//! minimal keep-alive HTTP/1.1 client, and the loopback-only guard.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Refuses anything that is not a plain-HTTP loopback URL: the bench never
/// leaves the machine.
pub fn ensure_loopback(url: &str) -> anyhow::Result<()> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url}: only http:// loopback URLs are used"))?;
    let host = if rest.starts_with('[') {
        rest.split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default()
    } else {
        rest.split([':', '/']).next().unwrap_or_default().to_owned()
    };
    if host.starts_with("127.") || host == "localhost" || host == "[::1]" {
        Ok(())
    } else {
        bail!(
            "{url} is not a loopback address; the bench only talks to 127.0.0.0/8, localhost or [::1]"
        )
    }
}

/// `host:port` of an `http://host:port[/…]` URL.
pub fn authority(url: &str) -> String {
    url.trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// One request as the timing proxy saw it.
#[derive(Debug, Clone)]
pub struct Timed {
    /// DynamoDB operation (from `X-Amz-Target`) or the request path.
    pub label: String,
    /// From the request head arriving at the proxy…
    pub start: Instant,
    /// …to the upstream's whole response being in hand (it is sent on at once).
    pub end: Instant,
}

impl Timed {
    pub fn took(&self) -> std::time::Duration {
        self.end.saturating_duration_since(self.start)
    }
}

/// A loopback proxy that forwards every request to one upstream and records
/// how long the upstream took to answer it. Each client connection gets its
/// own kept-alive upstream connection, so the proxy adds no connection setup
/// the client would not have done itself. Stops when dropped.
pub struct TimingProxy {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Timed>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TimingProxy {
    /// Starts on `127.0.0.1:0` in front of `upstream`. Each request first
    /// waits `latency` (counted as request time; zero for none), standing in
    /// for the network a real service sits behind.
    pub async fn start(
        upstream: &str,
        latency: std::time::Duration,
    ) -> anyhow::Result<TimingProxy> {
        ensure_loopback(upstream)?;
        let upstream = authority(upstream);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let task_log = Arc::clone(&log);
        let task = tokio::spawn(baton_runtime::serve::serve(listener, move || {
            let (log, upstream) = (Arc::clone(&task_log), upstream.clone());
            // One upstream connection per client connection, kept alive.
            let conn: Arc<tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>> = Arc::default();
            move |req| {
                forward(
                    req,
                    upstream.clone(),
                    latency,
                    Arc::clone(&conn),
                    Arc::clone(&log),
                )
            }
        }));
        Ok(TimingProxy { addr, log, task })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests seen since the last call, in order of completion.
    pub fn take(&self) -> Vec<Timed> {
        self.log
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }
}

impl Drop for TimingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    req: Request<Incoming>,
    upstream: String,
    latency: std::time::Duration,
    conn: Arc<tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>>,
    log: Arc<Mutex<Vec<Timed>>>,
) -> Result<Response<Full<Bytes>>, BoxError> {
    let start = Instant::now();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let label = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .map_or_else(|| req.uri().path().to_owned(), str::to_owned);
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let mut guard = conn.lock().await;
    let sender = match guard.take() {
        Some(sender) if !sender.is_closed() => guard.insert(sender),
        _ => guard.insert(connect(&upstream).await?),
    };
    sender.ready().await?;
    let response = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await?;
    let (rparts, rbody) = response.into_parts();
    let rbody = rbody.collect().await?.to_bytes();
    drop(guard);
    let end = Instant::now();
    if let Ok(mut l) = log.lock() {
        l.push(Timed { label, start, end });
    }
    Ok(Response::from_parts(rparts, Full::new(rbody)))
}

async fn connect(authority: &str) -> Result<SendRequest<Full<Bytes>>, BoxError> {
    let stream = TcpStream::connect(authority).await?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// A kept-alive HTTP/1.1 connection to one loopback server.
pub struct HttpClient {
    authority: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl HttpClient {
    pub fn new(url: &str) -> anyhow::Result<HttpClient> {
        ensure_loopback(url)?;
        Ok(HttpClient {
            authority: authority(url),
            sender: None,
        })
    }

    /// Sends one request (reconnecting if the server closed the connection)
    /// and returns its status and whole body.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let sender = match self.sender.take() {
            Some(s) if !s.is_closed() => self.sender.insert(s),
            _ => self.sender.insert(
                connect(&self.authority)
                    .await
                    .map_err(|e| anyhow::anyhow!("connect {}: {e}", self.authority))?,
            ),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.authority);
        for (k, v) in headers {
            request = request.header(*k, v);
        }
        sender.ready().await?;
        let response = sender.send_request(request.body(Full::new(body))?).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}
