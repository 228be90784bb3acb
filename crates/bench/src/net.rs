//! Loopback plumbing: the loopback-only guard and a kept-alive HTTP/1.1
//! connection.

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

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

/// One kept-alive HTTP/1.1 connection to a loopback server, on hyper's
/// connection-level client: nothing sits between the caller and the socket
/// but hyper, so a round trip it times is the server's plus the wire's.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    authority: String,
}

impl Connection {
    /// Connects to `url`'s `host:port` (loopback only), Nagle off like
    /// every other loopback connection here.
    pub async fn open(url: &str) -> anyhow::Result<Connection> {
        ensure_loopback(url)?;
        let authority = url.trim_start_matches("http://");
        let authority = authority.split('/').next().unwrap_or(authority).to_owned();
        let stream = TcpStream::connect(&authority)
            .await
            .with_context(|| format!("connect {authority}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Connection { sender, authority })
    }

    /// POSTs `body` to `path` and returns the status and the whole answer.
    pub async fn post(
        &mut self,
        path: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut request = Request::post(path).header("host", &self.authority);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        self.sender.ready().await?;
        let response = self
            .sender
            .send_request(request.body(Full::new(body))?)
            .await
            .with_context(|| format!("POST {path} to {}", self.authority))?;
        let status = response.status();
        Ok((status, response.into_body().collect().await?.to_bytes()))
    }
}
