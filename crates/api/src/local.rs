//! `--listen`: the API over plain HTTP/1.1 on a loopback address, for the
//! demo, local use and the tests. Requests go through the same
//! [`Api::handle`] as Lambda events; a body over [`MAX_BODY`] is answered
//! 413 without reading the rest.

use std::convert::Infallible;
use std::sync::Arc;

use baton_lock::LockStore;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use lambda_http::http::{self, StatusCode};
use tokio::net::TcpListener;

use crate::answer::Answer;
use crate::api::{Api, MAX_BODY};

/// Serves `api` on `listener` until the task is dropped.
pub async fn serve<S: LockStore>(listener: TcpListener, api: Arc<Api<S>>) {
    baton_runtime::serve::serve(listener, || {
        let api = api.clone();
        move |req| {
            let api = api.clone();
            async move { Ok::<_, Infallible>(handle(&api, req).await) }
        }
    })
    .await;
}

/// The API as an HTTP function: the binary's `main` runs it under the
/// Lambda runtime or on loopback.
impl<S: LockStore> baton_runtime::http_main::HttpFunction for Api<S> {
    async fn handle_lambda(&self, req: lambda_http::Request) -> http::Response<lambda_http::Body> {
        Api::handle_lambda(self, req).await
    }

    async fn serve_local(self: Arc<Self>, listener: TcpListener) {
        serve(listener, self).await;
    }
}

async fn handle<S: LockStore>(
    api: &Api<S>,
    req: http::Request<hyper::body::Incoming>,
) -> http::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let answer = if e.is::<http_body_util::LengthLimitError>() {
                Answer::error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("the body is over {MAX_BODY} bytes"),
                )
            } else {
                Answer::error(
                    StatusCode::BAD_REQUEST,
                    "bad_body",
                    "the body could not be read",
                )
            };
            tracing::warn!(
                path = parts.uri.path(),
                status = answer.status.as_u16(),
                "request body refused"
            );
            return answer.into_response().map(|s| Full::new(Bytes::from(s)));
        }
    };
    api.handle(http::Request::from_parts(parts, bytes))
        .await
        .map(|s| Full::new(Bytes::from(s)))
}
