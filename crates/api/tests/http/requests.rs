//! What each API call costs in DynamoDB requests, counted at the wire by a
//! proxy between `baton-api` and DynamoDB Local: every lock operation stays
//! the lock library's one request, and a Tracker id is found with one
//! `GetItem`, never a scan.

use baton_testkit::{FaultProxy, TestTable};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn each_call_is_one_dynamodb_request_and_nothing_scans() {
    // The server's table, reached only through the counting proxy.
    let table = TestTable::create().await;
    let proxy = FaultProxy::passthrough(&table.endpoint)
        .await
        .expect("proxy");
    let api = Server::start_on(table, &proxy.url()).await;
    let key = deploy_key();
    let count = |label: &str, want: &[&str]| {
        let seen = proxy.operations();
        proxy.clear();
        assert_eq!(seen, want, "{label}");
    };
    count("start-up reads nothing", &[]);

    let got = api
        .call(
            "POST",
            &format!("/v1/locks/{key}/acquire"),
            Some(CI),
            Some(json!({"owner": "o", "ttl": "5m"})),
        )
        .await;
    assert_eq!(got.status, 200, "{}", got.text);
    count("acquire", &["UpdateItem"]);
    let held = api
        .call(
            "POST",
            &format!("/v1/locks/{key}/acquire"),
            Some(CI),
            Some(json!({"owner": "p", "ttl": "5m"})),
        )
        .await;
    assert_eq!(held.status, 409);
    count(
        "acquire of a held key (the holder comes with the refusal)",
        &["UpdateItem"],
    );
    api.call("GET", &format!("/v1/locks/{key}"), Some(READER), None)
        .await;
    count("status", &["GetItem"]);
    api.call("GET", "/v1/locks", Some(READER), None).await;
    count("list", &["Query"]);
    let lock_id = got.json["lockId"].as_str().unwrap();
    api.call(
        "POST",
        &format!("/v1/locks/{key}/renew"),
        Some(CI),
        Some(json!({"lockId": lock_id, "ttl": "5m"})),
    )
    .await;
    count("renew", &["UpdateItem"]);
    api.call(
        "POST",
        &format!("/v1/locks/{key}/release"),
        Some(CI),
        Some(json!({"lockId": lock_id})),
    )
    .await;
    count("release", &["UpdateItem"]);
    let refused = api
        .call(
            "POST",
            &format!("/v1/locks/{key}/acquire"),
            Some(READER),
            Some(json!({"owner": "o", "ttl": "5m"})),
        )
        .await;
    assert_eq!(refused.status, 403);
    count("a refused call sends nothing", &[]);

    let made = api
        .call(
            "POST",
            "/api/v1alpha1/lock",
            Some(TRACKER),
            Some(json!({"service": "svc", "who": "me"})),
        )
        .await;
    count("Tracker create", &["UpdateItem"]);
    let id = made.json["id"].as_str().unwrap().to_owned();
    api.call(
        "GET",
        &format!("/api/v1alpha1/lock/{id}"),
        Some(TRACKER),
        None,
    )
    .await;
    count("Tracker get by id", &["GetItem"]);
    api.call(
        "GET",
        &format!("/api/v1alpha1/unlock/{id}"),
        Some(TRACKER),
        None,
    )
    .await;
    count("Tracker unlock by id", &["UpdateItem"]);
    api.call("GET", "/api/v1alpha1/locks/list", Some(TRACKER), None)
        .await;
    count("Tracker list (one page of up to 1000)", &["Query"]);
    api.call("GET", &format!("/v1/history/{key}"), Some(READER), None)
        .await;
    count("history of a key", &["Query"]);
}
