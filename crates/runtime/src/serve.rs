//! One HTTP/1.1 accept loop for every local server baton runs: the router's
//! `--listen` mode and the stand-ins tests and benchmarks put on loopback.
//! Each connection gets its own handler from `connection()`, so a handler
//! can keep per-connection state (a proxy's upstream connection).

use std::future::Future;
use std::net::SocketAddr;

use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Serves HTTP/1.1 on `listener` until the task is dropped. A failed accept
/// (the peer left before it was taken, too many open files) is skipped;
/// a connection that ends with an error ends alone.
pub async fn serve<C, H, F, B, E>(listener: TcpListener, connection: C)
where
    C: Fn() -> H,
    H: Fn(Request<Incoming>) -> F + Send + 'static,
    F: Future<Output = Result<Response<B>, E>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = connection();
        tokio::spawn(async move {
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(handler))
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

/// Why `--listen` refused an address.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// Not `IP:PORT`.
    #[error("--listen wants IP:PORT (e.g. 127.0.0.1:3000), got `{0}`")]
    Unparsable(String),
    /// Not a loopback address.
    #[error(
        "--listen only binds loopback addresses (127.0.0.0/8 or ::1), got {0}; put a tunnel or proxy in front for anything else"
    )]
    NotLoopback(SocketAddr),
}

/// Parses a `--listen` value, allowing loopback addresses only: the plain
/// HTTP server is for local use, and anything public belongs behind a tunnel.
pub fn parse_listen_addr(value: &str) -> Result<SocketAddr, ListenError> {
    let addr: SocketAddr = value
        .parse()
        .map_err(|_| ListenError::Unparsable(value.to_string()))?;
    if !addr.ip().is_loopback() {
        return Err(ListenError::NotLoopback(addr));
    }
    Ok(addr)
}
