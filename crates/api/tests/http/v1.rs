//! Every `/v1` route through the binary over HTTP, against DynamoDB Local,
//! and what each refusal leaves behind in the table (nothing).

use std::time::Duration;

use baton_lock::LockStatus;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn acquire_status_renew_release_through_http() {
    let api = Server::start().await;
    let key = deploy_key();
    let path = format!("/v1/locks/{key}");

    let got = api
        .call(
            "POST",
            &format!("{path}/acquire"),
            Some(CI),
            Some(json!({"owner": "jenkins-42", "purpose": "deploy v2", "ttl": "10m", "environment": "prod"})),
        )
        .await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.json["grant"], "new");
    assert_eq!(got.json["state"], "held");
    let lock_id = got.json["lockId"]
        .as_str()
        .expect("the holder gets its lock id")
        .to_owned();
    let fence = got.json["fence"].as_u64().unwrap();

    let stored = api.record(&key).await.expect("the grant is in DynamoDB");
    assert_eq!(stored.lock_id, lock_id);
    assert_eq!(stored.locked_by, "jenkins-42");
    assert_eq!(
        stored.host.as_deref(),
        Some("api-token:ci"),
        "the token is recorded as the source"
    );
    assert_eq!(stored.purpose.as_deref(), Some("deploy v2"));
    assert_eq!(stored.environment.as_deref(), Some("prod"));

    // Anyone with read sees the holder, never its lock id.
    let seen = api.call("GET", &path, Some(READER), None).await;
    assert_eq!(seen.status, 200, "{}", seen.text);
    assert_eq!(seen.json["state"], "held");
    assert_eq!(seen.json["lockedBy"], "jenkins-42");
    assert_eq!(seen.json["fence"], fence);
    assert!(seen.json.get("lockId").is_none(), "{}", seen.text);
    assert!(!seen.text.contains(&lock_id), "{}", seen.text);

    // A second owner meets the holder: 409 with who holds it.
    let held = api
        .call(
            "POST",
            &format!("{path}/acquire"),
            Some(CI),
            Some(json!({"owner": "jenkins-43", "ttl": "10m"})),
        )
        .await;
    assert_eq!(held.status, 409, "{}", held.text);
    assert_eq!(held.json["error"], "held");
    assert_eq!(held.json["holder"]["lockedBy"], "jenkins-42");
    assert!(
        !held.text.contains(&lock_id),
        "a refusal never shows the holder's lock id"
    );

    let before = api.record(&key).await.unwrap();
    let renewed = api
        .call(
            "POST",
            &format!("{path}/renew"),
            Some(CI),
            Some(json!({"lockId": lock_id, "ttl": "1h"})),
        )
        .await;
    assert_eq!(renewed.status, 200, "{}", renewed.text);
    let after = api.record(&key).await.unwrap();
    assert!(after.expires_at > before.expires_at + 1800, "{after:?}");
    assert_eq!(after.fence, fence, "a renewal keeps the fence");

    // The wrong lock id: 403 and nothing changes.
    let wrong = api
        .call(
            "POST",
            &format!("{path}/release"),
            Some(CI),
            Some(json!({"lockId": "not-the-lock-id"})),
        )
        .await;
    assert_eq!(wrong.status, 403, "{}", wrong.text);
    assert_eq!(wrong.json["error"], "not_owner");
    assert_eq!(api.record(&key).await.unwrap(), after);

    let released = api
        .call(
            "POST",
            &format!("{path}/release"),
            Some(CI),
            Some(json!({"lockId": lock_id, "status": "FAILED", "reason": "smoke test failed"})),
        )
        .await;
    assert_eq!(released.status, 200, "{}", released.text);
    assert_eq!(released.json["status"], "FAILED");
    let ended = api.record(&key).await.unwrap();
    assert_eq!(ended.status, LockStatus::Failed);
    assert_eq!(ended.released_by.as_deref(), Some("api-token:ci"));
    assert_eq!(ended.release_reason.as_deref(), Some("smoke test failed"));

    let again = api
        .call(
            "POST",
            &format!("{path}/release"),
            Some(CI),
            Some(json!({"lockId": lock_id})),
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.json["error"], "already_ended");

    let seen = api.call("GET", &path, Some(READER), None).await;
    assert_eq!(seen.json["state"], "ended");
}

#[tokio::test]
async fn keys_never_locked_are_404_and_request_ids_are_idempotent() {
    let api = Server::start().await;
    let key = deploy_key();
    let absent = api
        .call("GET", &format!("/v1/locks/{key}"), Some(READER), None)
        .await;
    assert_eq!(absent.status, 404, "{}", absent.text);
    assert_eq!(absent.json["state"], "absent");
    let release = api
        .call(
            "POST",
            &format!("/v1/locks/{key}/release"),
            Some(CI),
            Some(json!({"lockId": "x"})),
        )
        .await;
    assert_eq!(release.status, 404, "{}", release.text);
    assert_eq!(release.json["error"], "not_found");

    let body = json!({"owner": "run-7", "ttl": "5m", "requestId": "run-7-attempt-1"});
    let first = api
        .call(
            "POST",
            &format!("/v1/locks/{key}/acquire"),
            Some(CI),
            Some(body.clone()),
        )
        .await;
    let second = api
        .call(
            "POST",
            &format!("/v1/locks/{key}/acquire"),
            Some(CI),
            Some(body),
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.json["grant"], "existing");
    assert_eq!(first.json["lockId"], second.json["lockId"]);
    assert_eq!(first.json["fence"], second.json["fence"]);
}

#[tokio::test]
async fn waiting_times_out_with_the_holder_and_queueing_is_handed_the_key() {
    let api = Server::start().await;
    let key = deploy_key();
    let acquire = format!("/v1/locks/{key}/acquire");
    let first = api
        .call(
            "POST",
            &acquire,
            Some(CI),
            Some(json!({"owner": "first", "ttl": "10m"})),
        )
        .await;
    let first_id = first.json["lockId"].as_str().unwrap().to_owned();

    let timed_out = api
        .call(
            "POST",
            &acquire,
            Some(CI),
            Some(json!({"owner": "patient", "ttl": "10m", "wait": "600ms"})),
        )
        .await;
    assert_eq!(timed_out.status, 409, "{}", timed_out.text);
    assert_eq!(timed_out.json["error"], "wait_timed_out");
    assert_eq!(timed_out.json["holder"]["lockedBy"], "first");

    let too_long = api
        .call(
            "POST",
            &acquire,
            Some(CI),
            Some(json!({"owner": "x", "ttl": "10m", "wait": "1h"})),
        )
        .await;
    assert_eq!(too_long.status, 400, "{}", too_long.text);
    assert_eq!(too_long.json["field"], "wait");
    let no_wait = api
        .call(
            "POST",
            &acquire,
            Some(CI),
            Some(json!({"owner": "x", "ttl": "10m", "queue": true})),
        )
        .await;
    assert_eq!(no_wait.json["field"], "queue", "{}", no_wait.text);

    // A queued acquire waits in the key's line, visible to readers...
    let queued = {
        let base = api.base.clone();
        let acquire = acquire.clone();
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{base}{acquire}"))
                .bearer_auth(CI)
                .json(&json!({"owner": "second", "ttl": "10m", "wait": "20s", "queue": true}))
                .send()
                .await
                .expect("queued acquire answered")
        })
    };
    let in_line = eventually(Duration::from_secs(10), || async {
        let seen = api
            .call("GET", &format!("/v1/locks/{key}"), Some(READER), None)
            .await;
        seen.json["waiting"] == 1 && seen.json["waiters"][0]["owner"] == "second"
    })
    .await;
    assert!(in_line, "the queued acquire joined the line");

    // ...and the holder's release hands the key straight to it.
    let released = api
        .call(
            "POST",
            &format!("/v1/locks/{key}/release"),
            Some(CI),
            Some(json!({"lockId": first_id})),
        )
        .await;
    assert_eq!(released.status, 200, "{}", released.text);
    assert_eq!(released.json["handedTo"]["lockedBy"], "second");
    assert!(released.json["handedTo"].get("lockId").is_none());
    let resp = queued.await.unwrap();
    assert_eq!(resp.status(), 200);
    let granted: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(granted["lockedBy"], "second");
    let stored = api.record(&key).await.unwrap();
    assert_eq!(stored.lock_id, granted["lockId"].as_str().unwrap());
    assert!(stored.waiters.is_empty());
}

#[tokio::test]
async fn force_unlock_needs_admin_and_a_reason() {
    let api = Server::start().await;
    let key = deploy_key();
    let path = format!("/v1/locks/{key}/force-unlock");
    api.call(
        "POST",
        &format!("/v1/locks/{key}/acquire"),
        Some(CI),
        Some(json!({"owner": "stuck", "ttl": "1h"})),
    )
    .await;
    let before = api.record(&key).await.unwrap();

    let refused = api
        .call("POST", &path, Some(CI), Some(json!({"reason": "mine now"})))
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(refused.json["error"], "forbidden");
    assert!(refused.json["message"].as_str().unwrap().contains("admin"));
    assert_eq!(
        api.record(&key).await.unwrap(),
        before,
        "a refused force unlock changes nothing"
    );

    let no_reason = api.call("POST", &path, Some(OPS), Some(json!({}))).await;
    assert_eq!(no_reason.status, 400, "{}", no_reason.text);
    assert_eq!(no_reason.json["field"], "reason");
    let blank = api
        .call("POST", &path, Some(OPS), Some(json!({"reason": "  "})))
        .await;
    assert_eq!(blank.json["field"], "reason", "{}", blank.text);
    let other_grant = api
        .call(
            "POST",
            &path,
            Some(OPS),
            Some(json!({"reason": "r", "lockId": "an-older-grant"})),
        )
        .await;
    assert_eq!(other_grant.status, 409, "{}", other_grant.text);
    assert_eq!(other_grant.json["error"], "not_held");
    assert_eq!(api.record(&key).await.unwrap(), before);

    let done = api
        .call(
            "POST",
            &path,
            Some(OPS),
            Some(json!({"reason": "runner died"})),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.json["unlocked"], true);
    assert_eq!(done.json["lockedBy"], "stuck");
    assert!(done.json.get("lockId").is_none());
    let ended = api.record(&key).await.unwrap();
    assert!(ended.forced);
    assert_eq!(ended.status, LockStatus::Failed);
    assert_eq!(ended.released_by.as_deref(), Some("api-token:ops"));
    assert_eq!(ended.release_reason.as_deref(), Some("runner died"));

    let again = api
        .call("POST", &path, Some(OPS), Some(json!({"reason": "again"})))
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json["unlocked"], false);
}

#[tokio::test]
async fn list_pages_and_filters_the_held_locks() {
    let api = Server::start().await;
    let prefix = deploy_key();
    for (name, env) in [("a", "prod"), ("b", "dev"), ("c", "prod")] {
        let r = api
            .call(
                "POST",
                &format!("/v1/locks/{prefix}/{name}/acquire"),
                Some(OPS),
                Some(json!({"owner": name, "ttl": "10m", "environment": env})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/v1/locks?prefix={prefix}&pageSize=2");
        if let Some(t) = &token {
            path.push_str(&format!("&pageToken={t}"));
        }
        let page = api.call("GET", &path, Some(READER), None).await;
        assert_eq!(page.status, 200, "{}", page.text);
        pages += 1;
        for lock in page.json["locks"].as_array().unwrap() {
            assert!(lock.get("lockId").is_none(), "{lock}");
            assert_eq!(lock["state"], "held");
            keys.push(lock["lockKey"].as_str().unwrap().to_owned());
        }
        match page.json["nextPageToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(keys, ["a", "b", "c"].map(|n| format!("{prefix}/{n}")));
    assert!(pages >= 2, "two per page makes at least two pages");

    let prod = api
        .call(
            "GET",
            &format!("/v1/locks?prefix={prefix}&environment=prod"),
            Some(READER),
            None,
        )
        .await;
    let prod_keys: Vec<_> = prod.json["locks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["lockKey"].clone())
        .collect();
    assert_eq!(
        prod_keys,
        [json!(format!("{prefix}/a")), json!(format!("{prefix}/c"))]
    );

    let ci = api.call("GET", "/v1/locks", Some(CI), None).await;
    assert_eq!(ci.status, 403, "listing needs read: {}", ci.text);
    let bad = api
        .call("GET", "/v1/locks?pageSize=0", Some(READER), None)
        .await;
    assert_eq!(
        (bad.status, bad.json["field"].as_str()),
        (400, Some("pageSize"))
    );
    let unknown = api
        .call("GET", "/v1/locks?owner=x", Some(READER), None)
        .await;
    assert_eq!(
        (unknown.status, unknown.json["field"].as_str()),
        (400, Some("owner"))
    );
}

#[tokio::test]
async fn the_openapi_document_is_served_to_any_token() {
    let api = Server::start().await;
    let committed: serde_json::Value = serde_json::from_str(baton_api::openapi::DOCUMENT).unwrap();
    for token in [READER, CI, OPS] {
        let r = api.call("GET", "/v1/openapi.json", Some(token), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json, committed);
    }
}
