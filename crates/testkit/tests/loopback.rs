//! The loopback stand-ins seen from a plain HTTP client: the Lambda Runtime
//! API hands out a queued invocation and records the answer; a proxy with
//! latency counts it in the time it records for each request.

use std::time::Duration;

use baton_testkit::{FaultProxy, HttpRecorder, LambdaRuntimeApi};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

async fn connect(authority: &str) -> SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(authority).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    method: &str,
    path: &str,
    body: &'static str,
) -> (u16, hyper::HeaderMap, Bytes) {
    sender.ready().await.unwrap();
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status.as_u16(), parts.headers, body)
}

#[tokio::test]
async fn lambda_runtime_api_hands_out_an_invocation_and_records_the_answer() {
    let api = LambdaRuntimeApi::start().await.unwrap();
    let mut client = connect(&api.host()).await;
    api.invoke("req-1", Bytes::from_static(br#"{"Records":[]}"#));

    let (status, headers, payload) = send(
        &mut client,
        "GET",
        "/2018-06-01/runtime/invocation/next",
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(&payload[..], br#"{"Records":[]}"#);
    assert_eq!(headers["lambda-runtime-aws-request-id"], "req-1");
    assert!(headers.contains_key("lambda-runtime-deadline-ms"));

    let (status, _, _) = send(
        &mut client,
        "POST",
        "/2018-06-01/runtime/invocation/req-1/response",
        r#"{"batchItemFailures":[]}"#,
    )
    .await;
    assert_eq!(status, 202);
    assert!(
        api.wait_until(Duration::from_secs(5), |s| !s.responses.is_empty())
            .await
    );
    let (polls, id, body) = api
        .with(|s| {
            let (id, _, body) = s.responses[0].clone();
            (s.polls.len(), id, body)
        })
        .unwrap();
    assert_eq!((polls, id.as_str()), (1, "req-1"));
    assert_eq!(&body[..], br#"{"batchItemFailures":[]}"#);

    let (status, _, _) = send(&mut client, "POST", "/2018-06-01/runtime/init/error", "{}").await;
    assert_eq!(status, 202);
    assert_eq!(api.with(|s| s.errors.len()), Some(1));
}

#[tokio::test]
async fn proxy_with_latency_times_each_request() {
    let recorder = HttpRecorder::start().await.unwrap();
    let latency = Duration::from_millis(30);
    let proxy = FaultProxy::with_latency(&recorder.url(), latency)
        .await
        .unwrap();
    let mut client = connect(proxy.url().trim_start_matches("http://")).await;
    for _ in 0..3 {
        let (status, _, _) = send(&mut client, "POST", "/api/chat.postMessage", "{}").await;
        assert_eq!(status, 200);
    }
    let seen = proxy.take();
    assert_eq!(seen.len(), 3);
    for request in &seen {
        assert_eq!(request.label(), "/api/chat.postMessage");
        assert!(request.took().unwrap() >= latency, "{request:?}");
    }
    assert!(proxy.requests().is_empty(), "take forgets what it returns");
    assert_eq!(recorder.requests_to("/api/").len(), 3);
}
