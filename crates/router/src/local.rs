//! `--listen`: serve the router over plain HTTP/1.1 on a loopback address,
//! for development behind a tunnel, the demo and the end-to-end tests.
//!
//! Requests go through the same [`Router::handle`] as Lambda events. Bodies
//! are read up to [`MAX_BODY`] bytes; a larger one is answered 413 without
//! reading the rest.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use lambda_http::http::{self, StatusCode};
use tokio::net::TcpListener;
use tracing::warn;

use crate::queue::Enqueue;
use crate::routes::{MAX_BODY, Router};

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

/// Serves `router` on `listener` until the task is dropped.
pub async fn serve<Q: Enqueue + 'static>(listener: TcpListener, router: Arc<Router<Q>>) {
    baton_runtime::serve::serve(listener, || {
        let router = router.clone();
        move |req| {
            let router = router.clone();
            async move { Ok::<_, Infallible>(handle(&router, req).await) }
        }
    })
    .await;
}

async fn handle<Q: Enqueue>(
    router: &Router<Q>,
    req: http::Request<hyper::body::Incoming>,
) -> http::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let status = if e.is::<http_body_util::LengthLimitError>() {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            warn!(
                path = parts.uri.path(),
                status = status.as_u16(),
                "request body refused"
            );
            let mut resp = http::Response::new(Full::new(Bytes::new()));
            *resp.status_mut() = status;
            return resp;
        }
    };
    router
        .handle(http::Request::from_parts(parts, bytes))
        .await
        .map(|s| Full::new(Bytes::from(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_accepted() {
        assert_eq!(parse_listen_addr("127.0.0.1:0").unwrap().port(), 0);
        assert!(parse_listen_addr("[::1]:3000").is_ok());
        assert!(matches!(
            parse_listen_addr("0.0.0.0:3000"),
            Err(ListenError::NotLoopback(_))
        ));
        assert!(matches!(
            parse_listen_addr("192.168.1.2:80"),
            Err(ListenError::NotLoopback(_))
        ));
        assert!(matches!(
            parse_listen_addr("localhost:80"),
            Err(ListenError::Unparsable(_))
        ));
    }
}
