//! Every refusal through the binary: no token, an unknown or malformed
//! token, a token without the scope, bad input, unknown paths, methods and
//! oversized bodies, and a store that does not answer. After each refusal
//! of a write, DynamoDB Local is read to show nothing changed.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn no_anonymous_access_and_nothing_changes_on_refusal() {
    let api = Server::start().await;
    let key = deploy_key();
    let acquire = format!("/v1/locks/{key}/acquire");
    let body = json!({"owner": "intruder", "ttl": "10m"});

    for (token, why) in [
        (None, "no_token"),
        (Some("not-a-known-token"), "unknown"),
        (
            Some(baton_api::hash_hex(CI).as_str()),
            "a hash is not a token",
        ),
    ] {
        let r = api.call("POST", &acquire, token, Some(body.clone())).await;
        assert_eq!(r.status, 401, "{why}: {}", r.text);
        assert_eq!(r.json["error"], "unauthenticated", "{why}");
        assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"baton\"");
    }
    let basic = api
        .raw(
            "GET",
            "/v1/locks",
            None,
            None,
            &[("authorization", "Basic cmVhZGVyOng=")],
        )
        .await;
    assert_eq!(basic.status, 401, "{}", basic.text);
    for path in ["/v1/locks", "/v1/openapi.json", "/api/v1alpha1/locks/list"] {
        let r = api.call("GET", path, None, None).await;
        assert_eq!(r.status, 401, "{path} needs a token: {}", r.text);
    }
    assert!(
        api.record(&key).await.is_none(),
        "no refused acquire wrote anything"
    );

    // Under-scoped: a reader may not lock; ci may lock only deploy/ keys.
    let r = api
        .call("POST", &acquire, Some(READER), Some(body.clone()))
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.json["error"], "forbidden");
    let other = baton_testkit::unique_name("db/main");
    let r = api
        .call(
            "POST",
            &format!("/v1/locks/{other}/acquire"),
            Some(CI),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(
        r.json["message"].as_str().unwrap().contains("lock:deploy/"),
        "{}",
        r.text
    );
    assert!(api.record(&key).await.is_none() && api.record(&other).await.is_none());
    let r = api
        .call("GET", &format!("/v1/locks/{other}"), Some(CI), None)
        .await;
    assert_eq!(r.status, 403, "ci reads only its own prefix: {}", r.text);

    // A held key: the reader can neither release nor renew it.
    let held = api
        .call(
            "POST",
            &acquire,
            Some(CI),
            Some(json!({"owner": "ci", "ttl": "10m"})),
        )
        .await;
    let lock_id = held.json["lockId"].as_str().unwrap().to_owned();
    let before = api.record(&key).await.unwrap();
    for action in ["release", "renew"] {
        let r = api
            .call(
                "POST",
                &format!("/v1/locks/{key}/{action}"),
                Some(READER),
                Some(json!({"lockId": lock_id, "ttl": "1h"})),
            )
            .await;
        assert_eq!(r.status, 403, "{action}: {}", r.text);
    }
    let r = api
        .call(
            "POST",
            &format!("/v1/locks/{key}/force-unlock"),
            Some(TRACKER),
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_eq!(
        r.status, 403,
        "lock: on every key is still not admin: {}",
        r.text
    );
    assert_eq!(
        api.record(&key).await.unwrap(),
        before,
        "refusals changed nothing"
    );
}

#[tokio::test]
async fn bad_input_is_400_naming_the_field() {
    let api = Server::start().await;
    let key = deploy_key();
    let acquire = format!("/v1/locks/{key}/acquire");
    let cases = [
        (
            json!({"owner": "a", "ttl": "10m", "colour": "red"}),
            "colour",
        ),
        (json!({"ttl": "10m"}), "owner"),
        (json!({"owner": "", "ttl": "10m"}), "owner"),
        (json!({"owner": "a"}), "ttl"),
        (json!({"owner": "a", "ttl": "soon"}), "ttl"),
        (json!({"owner": "a", "ttl": "0s"}), "ttl"),
        (json!({"owner": "a", "ttl": 600}), "ttl"),
        (
            json!({"owner": "a", "ttl": "10m", "wait": "a while"}),
            "wait",
        ),
        (json!({"owner": "a", "ttl": "10m", "queue": "yes"}), "queue"),
        (
            json!({"owner": "a", "ttl": "10m", "purpose": "x".repeat(2000)}),
            "purpose",
        ),
        (json!(["owner", "a"]), "body"),
    ];
    for (body, field) in cases {
        let r = api
            .call("POST", &acquire, Some(CI), Some(body.clone()))
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(r.json["error"], "bad_input", "{body}");
        assert_eq!(r.json["field"], field, "{body}: {}", r.text);
        assert!(
            r.json["message"].as_str().unwrap().starts_with(field),
            "{}",
            r.text
        );
    }
    for raw in [
        &b"{not json"[..],
        b"",
        b"{\"owner\": \"a\", \"ttl\": \"1m\"} trailing",
    ] {
        let r = api
            .raw("POST", &acquire, Some(CI), Some(raw.to_vec()), &[])
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.json["field"], "body", "{}", r.text);
    }
    let r = api
        .call(
            "POST",
            "/v1/locks/deploy%2Fx%01y/acquire",
            Some(CI),
            Some(json!({"owner": "a", "ttl": "1m"})),
        )
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (400, Some("key")),
        "{}",
        r.text
    );
    let r = api
        .call("GET", "/v1/locks/deploy%FF", Some(READER), None)
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (400, Some("key")),
        "{}",
        r.text
    );
    let r = api
        .call(
            "POST",
            &format!("/v1/locks/{key}/release"),
            Some(CI),
            Some(json!({"lockId": "x", "status": "DONE"})),
        )
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (400, Some("status")),
        "{}",
        r.text
    );
    assert!(
        api.record(&key).await.is_none(),
        "no bad request wrote anything"
    );
}

#[tokio::test]
async fn unknown_paths_methods_and_oversized_bodies() {
    let api = Server::start().await;
    for path in [
        "/v2/locks",
        "/v1/lock",
        "/api/v1alpha1/nothing",
        "/v1/locks/deploy/x/explode",
    ] {
        let method = if path.ends_with("explode") {
            "POST"
        } else {
            "GET"
        };
        let r = api.call(method, path, Some(READER), None).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert_eq!(r.json["error"], "not_found", "{path}");
        assert_eq!(r.headers["content-type"], "application/json");
    }
    let r = api
        .call("DELETE", "/v1/locks/deploy/x", Some(OPS), None)
        .await;
    assert_eq!(r.status, 405, "{}", r.text);
    assert_eq!(r.headers["allow"], "GET, POST");
    let r = api.call("GET", "/api/v1alpha1/lock", Some(OPS), None).await;
    assert_eq!(
        (r.status, &r.headers["allow"]),
        (405, &"POST".parse().unwrap())
    );

    let key = deploy_key();
    let mut huge = br#"{"owner": "a", "ttl": "1m", "purpose": ""#.to_vec();
    huge.extend(std::iter::repeat_n(b'x', 70 * 1024));
    huge.extend(br#""}"#);
    let r = api
        .raw(
            "POST",
            &format!("/v1/locks/{key}/acquire"),
            Some(CI),
            Some(huge),
            &[],
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.json["error"], "too_large");
    assert!(api.record(&key).await.is_none());
}

#[tokio::test]
async fn a_store_that_does_not_answer_is_503() {
    // A loopback port nothing listens on: DynamoDB "unreachable".
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let endpoint = format!("http://{closed}");
    let api = Server::start_with(&[
        ("AWS_ENDPOINT_URL_DYNAMODB", &endpoint),
        ("AWS_MAX_ATTEMPTS", "2"),
    ])
    .await;
    let r = api
        .call("GET", "/v1/locks/deploy/x", Some(READER), None)
        .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.json["error"], "store_unavailable");
    assert_eq!(r.headers["retry-after"], "1");
    let r = api
        .call(
            "POST",
            "/v1/locks/deploy/x/acquire",
            Some(CI),
            Some(json!({"owner": "a", "ttl": "1m"})),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text);
}
