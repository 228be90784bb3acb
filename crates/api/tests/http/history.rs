//! `GET /v1/history[/{key}]` through the binary: grants ended through the
//! API, recorded in the history table from the lock table's stream by the
//! stream consumer's code, read back newest first without their lock ids.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn ended_grants_are_read_back_per_key_and_across_keys() {
    let api = Server::start().await;
    let key = deploy_key();
    let mut fences = Vec::new();
    for (owner, status) in [("run-1", "COMPLETED"), ("run-2", "FAILED")] {
        let got = api
            .call(
                "POST",
                &format!("/v1/locks/{key}/acquire"),
                Some(CI),
                Some(json!({"owner": owner, "ttl": "5m", "purpose": "deploy"})),
            )
            .await;
        assert_eq!(got.status, 200, "{}", got.text);
        let released = api
            .call(
                "POST",
                &format!("/v1/locks/{key}/release"),
                Some(CI),
                Some(json!({"lockId": got.json["lockId"], "status": status, "reason": "done"})),
            )
            .await;
        assert_eq!(released.status, 200, "{}", released.text);
        fences.push(got.json["fence"].as_u64().unwrap());
    }

    api.record_history().await;
    let page = api
        .call("GET", &format!("/v1/history/{key}"), Some(READER), None)
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    let entries = page.json["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{}", page.text);
    assert_eq!(entries[0]["lockedBy"], "run-2", "newest first");
    assert_eq!(entries[0]["outcome"], "FAILED");
    assert_eq!(entries[0]["endedBy"], "api-token:ci");
    assert_eq!(entries[0]["fence"], fences[1]);
    assert_eq!(entries[1]["outcome"], "COMPLETED");
    assert_eq!(entries[1]["nextHolder"], "run-2");
    assert!(
        entries.iter().all(|e| e.get("lockId").is_none()),
        "{}",
        page.text
    );

    let one = api
        .call(
            "GET",
            &format!("/v1/history/{key}?pageSize=1"),
            Some(CI),
            None,
        )
        .await;
    assert_eq!(
        one.status, 200,
        "a lock scope reads its own keys' history: {}",
        one.text
    );
    assert_eq!(one.json["entries"].as_array().unwrap().len(), 1);
    let token = one.json["nextPageToken"].as_str().expect("a second page");
    let two = api
        .call(
            "GET",
            &format!("/v1/history/{key}?pageSize=1&pageToken={token}"),
            Some(CI),
            None,
        )
        .await;
    assert_eq!(two.json["entries"][0]["lockedBy"], "run-1", "{}", two.text);

    let recent = api
        .call("GET", "/v1/history?since=1h", Some(READER), None)
        .await;
    assert_eq!(recent.status, 200, "{}", recent.text);
    let keys: Vec<_> = recent.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["lockKey"].clone())
        .collect();
    assert_eq!(keys, [json!(key), json!(key)]);

    let r = api.call("GET", "/v1/history", Some(CI), None).await;
    assert_eq!(r.status, 403, "across keys needs read: {}", r.text);
    let r = api.call("GET", "/v1/history/db/main", Some(CI), None).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = api
        .call("GET", "/v1/history?since=lately", Some(READER), None)
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (400, Some("since")),
        "{}",
        r.text
    );
    let r = api.call("GET", "/v1/history", None, None).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn without_a_history_table_the_history_routes_are_404() {
    let api = Server::start_with(&[("BATON_HISTORY_TABLE", "no-such-history-table")]).await;
    for path in ["/v1/history", "/v1/history/deploy/x"] {
        let r = api.call("GET", path, Some(READER), None).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert_eq!(r.json["error"], "history_not_configured", "{path}");
    }
}
