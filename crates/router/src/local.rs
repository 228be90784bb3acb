//! `--listen`: serve the router over plain HTTP/1.1 on a loopback address,
//! for development behind a tunnel, the demo and the end-to-end tests.
//!
//! Requests go through the same [`Router::handle`] as Lambda events. Bodies
//! are read up to [`MAX_BODY`] bytes; a larger one is answered 413 without
//! reading the rest.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use lambda_http::http::{self, StatusCode};
use tokio::net::TcpListener;
use tracing::warn;

use crate::queue::Enqueue;
use crate::routes::{MAX_BODY, Router};

pub use baton_runtime::serve::{ListenError, parse_listen_addr};

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

/// The router as an HTTP function: the binary's `main` runs it under the
/// Lambda runtime or on loopback.
impl<Q: Enqueue + 'static> baton_runtime::http_main::HttpFunction for Router<Q> {
    async fn handle_lambda(&self, req: lambda_http::Request) -> http::Response<lambda_http::Body> {
        Router::handle_lambda(self, req).await
    }

    async fn serve_local(self: Arc<Self>, listener: TcpListener) {
        serve(listener, self).await;
    }
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
