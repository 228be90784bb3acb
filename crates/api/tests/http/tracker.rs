//! Tracker compatibility, proved with Tracker's own documented examples:
//! each shell snippet below is copied verbatim from Tracker's Locks Guide
//! and run with bash and curl against the binary on loopback. The only
//! changes are made here, in code: the guide's `http://localhost:8080`
//! becomes the server's address, the guide's sample id becomes the id the
//! server handed out, and every `curl` sends the token header, from a
//! `.curlrc` in the snippet's home directory (so the snippets' own quoting,
//! a `trap "curl …"` included, stays exactly as written).

use std::process::Command;

use baton_lock::LockStatus;
use serde_json::Value;

use crate::common::*;

const CREATE: &str = r#"curl -X POST http://localhost:8080/api/v1alpha1/lock \
  -H "Content-Type: application/json" \
  -d '{
    "service": "production-deployment",
    "who": "ci-pipeline-123"
  }'"#;

const GET: &str = r#"curl "http://localhost:8080/api/v1alpha1/lock/507f1f77bcf86cd799439011""#;

const UNLOCK: &str = r#"curl "http://localhost:8080/api/v1alpha1/unlock/507f1f77bcf86cd799439011""#;

const LIST_FIRST_10: &str = r#"# Get first 10 locks
curl "http://localhost:8080/api/v1alpha1/locks/list?per_page=10&page=1""#;

const LIST_ALL: &str = r#"# Get all locks
curl "http://localhost:8080/api/v1alpha1/locks/list?per_page=100""#;

const ACTIVE_LOCKS: &str = r#"# List all active locks
curl "http://localhost:8080/api/v1alpha1/locks/list" | jq '.locks'"#;

/// Use case 1, "Prevent Concurrent Deployments", with its `./deploy-app.sh`
/// standing for the caller's own deploy step.
const DEPLOY_SH: &str = r#"#!/bin/bash
# deploy.sh

# Try to acquire lock
LOCK_RESPONSE=$(curl -s -X POST http://localhost:8080/api/v1alpha1/lock \
  -H "Content-Type: application/json" \
  -d "{
    \"service\": \"production-deployment\",
    \"who\": \"${CI_PIPELINE_ID}\"
  }")

LOCK_ID=$(echo $LOCK_RESPONSE | jq -r '.id')

if [ "$LOCK_ID" == "null" ]; then
  echo "Deployment already in progress"
  exit 1
fi

# Perform deployment
echo "Deploying application..."
./deploy-app.sh

# Release lock
curl "http://localhost:8080/api/v1alpha1/unlock/${LOCK_ID}"
"#;

/// Best practice 3, "Always Release Locks" (the lock is released by the
/// trap when the script exits).
const TRAP_SH: &str = r#"#!/bin/bash

# Acquire lock
LOCK_ID=$(curl -s -X POST http://localhost:8080/api/v1alpha1/lock \
  -H "Content-Type: application/json" \
  -d '{"service":"deployment","who":"pipeline"}' | jq -r '.id')

# Ensure lock is released on exit
trap "curl http://localhost:8080/api/v1alpha1/unlock/${LOCK_ID}" EXIT

# Perform work
./deploy.sh
"#;

/// Runs a guide snippet against `api` with `token`; returns its exit
/// status and stdout.
fn run(
    api: &Server,
    token: &str,
    snippet: &str,
    id: Option<&str>,
    env: &[(&str, &str)],
) -> (i32, String) {
    let mut script = snippet.replace("http://localhost:8080", &api.base);
    if let Some(id) = id {
        script = script.replace("507f1f77bcf86cd799439011", id);
    }
    let dir = std::env::temp_dir().join(baton_testkit::unique_name("tracker-guide"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(".curlrc"),
        format!("header = \"Authorization: Bearer {token}\"\nsilent\nshow-error\n"),
    )
    .unwrap();
    // The deploy steps the guide's scripts call: they only say they ran.
    for step in ["deploy-app.sh", "deploy.sh"] {
        let path = dir.join(step);
        std::fs::write(&path, format!("#!/bin/sh\necho \"{step} ran\"\n")).unwrap();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&path, perms).unwrap();
    }
    let out = Command::new("bash")
        .args(["-c", &script])
        .current_dir(&dir)
        .env("HOME", &dir)
        .env("CURL_HOME", &dir)
        .envs(env.iter().copied())
        .output()
        .expect("bash, curl and jq are installed (tests/tooling/prereqs.sh)");
    assert!(
        out.stderr.is_empty() || out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[tokio::test]
async fn the_guides_rest_examples_work_with_a_token() {
    let api = Server::start().await;

    let (code, out) = run(&api, TRACKER, CREATE, None, &[]);
    assert_eq!(code, 0);
    let created = json(&out);
    assert_eq!(created["service"], "production-deployment");
    assert_eq!(created["who"], "ci-pipeline-123");
    assert!(
        created["createdAt"].as_str().unwrap().starts_with("20"),
        "{created}"
    );
    let id = created["id"].as_str().expect("an id").to_owned();
    let stored = api
        .record("production-deployment")
        .await
        .expect("the lock is in DynamoDB");
    assert_eq!(stored.locked_by, "ci-pipeline-123");
    assert_eq!(stored.host.as_deref(), Some("api-token:tracker"));
    assert!(
        id.starts_with(&stored.lock_id),
        "the id carries the grant's lock id"
    );

    // "Error Response (Lock Already Exists)".
    let (_, out) = run(&api, TRACKER, CREATE, None, &[]);
    let exists = json(&out);
    assert_eq!(exists["error"], "lock already exists");
    assert_eq!(exists["existingLock"]["who"], "ci-pipeline-123");
    assert_eq!(exists["existingLock"]["createdAt"], created["createdAt"]);
    assert!(
        exists["existingLock"].get("id").is_none(),
        "another caller's id is its ownership token"
    );

    let (_, out) = run(&api, TRACKER, GET, Some(&id), &[]);
    assert_eq!(json(&out), created);

    for snippet in [LIST_FIRST_10, LIST_ALL] {
        let (_, out) = run(&api, TRACKER, snippet, None, &[]);
        let listed = json(&out);
        assert_eq!(listed["total"], 1, "{listed}");
        assert_eq!(listed["page"], 1);
        assert_eq!(listed["locks"][0]["service"], "production-deployment");
        assert_eq!(listed["locks"][0]["who"], "ci-pipeline-123");
    }
    let (_, out) = run(&api, TRACKER, LIST_FIRST_10, None, &[]);
    assert_eq!(json(&out)["perPage"], 10);
    let (_, out) = run(&api, TRACKER, LIST_ALL, None, &[]);
    assert_eq!(json(&out)["perPage"], 100);
    let (_, out) = run(&api, TRACKER, ACTIVE_LOCKS, None, &[]);
    assert_eq!(json(&out).as_array().map(Vec::len), Some(1), "{out}");

    let (_, out) = run(&api, TRACKER, UNLOCK, Some(&id), &[]);
    assert_eq!(
        json(&out),
        serde_json::json!({"success": true, "message": "Lock released successfully"})
    );
    let ended = api.record("production-deployment").await.unwrap();
    assert_eq!(ended.status, LockStatus::Completed);
    assert_eq!(ended.released_by.as_deref(), Some("api-token:tracker"));

    let (_, out) = run(&api, TRACKER, GET, Some(&id), &[]);
    assert_eq!(json(&out)["error"], "lock not found");
    let (_, out) = run(&api, TRACKER, LIST_ALL, None, &[]);
    assert_eq!(json(&out)["total"], 0);

    // The guide's sample id was never handed out here, and an id whose key
    // part names another key does not release that key's lock.
    let (_, out) = run(&api, TRACKER, GET, None, &[]);
    assert_eq!(json(&out)["error"], "lock not found");
}

#[tokio::test]
async fn the_guides_scripts_lock_deploy_and_release() {
    let api = Server::start().await;
    let (code, out) = run(
        &api,
        TRACKER,
        DEPLOY_SH,
        None,
        &[("CI_PIPELINE_ID", "pipeline-77")],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Deploying application...") && out.contains("deploy-app.sh ran"),
        "{out}"
    );
    assert!(out.contains("Lock released successfully"), "{out}");
    let record = api.record("production-deployment").await.unwrap();
    assert_eq!(
        (record.locked_by.as_str(), record.status),
        ("pipeline-77", LockStatus::Completed)
    );

    // While someone else holds it, the same script stops before deploying.
    let holder = api
        .call(
            "POST",
            "/api/v1alpha1/lock",
            Some(TRACKER),
            Some(serde_json::json!({"service": "production-deployment", "who": "someone-else"})),
        )
        .await;
    assert_eq!(holder.status, 200, "{}", holder.text);
    let (code, out) = run(
        &api,
        TRACKER,
        DEPLOY_SH,
        None,
        &[("CI_PIPELINE_ID", "pipeline-78")],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("Deployment already in progress") && !out.contains("ran"),
        "{out}"
    );
    assert_eq!(
        api.record("production-deployment").await.unwrap().locked_by,
        "someone-else"
    );

    let (code, out) = run(&api, TRACKER, TRAP_SH, None, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("deploy.sh ran") && out.contains("Lock released successfully"),
        "{out}"
    );
    let record = api.record("deployment").await.unwrap();
    assert_eq!(
        (record.locked_by.as_str(), record.status),
        ("pipeline", LockStatus::Completed)
    );
}

#[tokio::test]
async fn tracker_refusals() {
    let api = Server::start().await;
    // The guide's calls without a token are refused, and nothing is written.
    let r = api
        .call(
            "POST",
            "/api/v1alpha1/lock",
            None,
            Some(serde_json::json!({"service": "svc", "who": "me"})),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    // ci may lock only deploy/ keys.
    let r = api
        .call(
            "POST",
            "/api/v1alpha1/lock",
            Some(CI),
            Some(serde_json::json!({"service": "svc", "who": "me"})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(api.record("svc").await.is_none());
    for (body, field) in [
        (serde_json::json!({"service": "svc"}), "who"),
        (serde_json::json!({"service": "", "who": "me"}), "service"),
        (
            serde_json::json!({"service": "svc", "who": "me", "ttl": "1h"}),
            "ttl",
        ),
    ] {
        let r = api
            .call(
                "POST",
                "/api/v1alpha1/lock",
                Some(TRACKER),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (r.status, r.json["field"].as_str()),
            (400, Some(field)),
            "{body}: {}",
            r.text
        );
    }
    assert!(api.record("svc").await.is_none());

    let made = api
        .call(
            "POST",
            "/api/v1alpha1/lock",
            Some(CI),
            Some(serde_json::json!({"service": "deploy/web", "who": "me"})),
        )
        .await;
    let id = made.json["id"].as_str().unwrap().to_owned();
    let r = api
        .call(
            "GET",
            &format!("/api/v1alpha1/unlock/{id}"),
            Some(READER),
            None,
        )
        .await;
    assert_eq!(r.status, 403, "a reader may not unlock: {}", r.text);
    let before = api.record("deploy/web").await.unwrap();
    // The same lock id with another key's name: not found, nothing released.
    let (lock_id, _) = id.split_once('.').unwrap();
    let forged = baton_api::tracker_id::TrackerId::encode(lock_id, "deploy/other");
    let r = api
        .call(
            "GET",
            &format!("/api/v1alpha1/unlock/{forged}"),
            Some(CI),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(api.record("deploy/web").await.unwrap(), before);
    let r = api
        .call(
            "GET",
            "/api/v1alpha1/locks/list?per_page=0",
            Some(READER),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (400, Some("per_page")),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn the_log_names_the_token_and_never_shows_it_nor_a_lock_id() {
    let log = std::env::temp_dir().join(format!("{}.log", baton_testkit::unique_name("baton-api")));
    let api = Server::start_logged(&[], Some(&log)).await;
    let made = api
        .call(
            "POST",
            "/api/v1alpha1/lock",
            Some(TRACKER),
            Some(serde_json::json!({"service": "logged", "who": "me"})),
        )
        .await;
    let id = made.json["id"].as_str().unwrap().to_owned();
    let lock_id = id.split_once('.').unwrap().0.to_owned();
    api.call(
        "GET",
        &format!("/api/v1alpha1/lock/{id}"),
        Some(TRACKER),
        None,
    )
    .await;
    api.call(
        "GET",
        &format!("/api/v1alpha1/unlock/{id}"),
        Some(TRACKER),
        None,
    )
    .await;
    api.call("GET", "/v1/locks", Some("a-wrong-token"), None)
        .await;
    let mut text = String::new();
    let logged = eventually(std::time::Duration::from_secs(10), || {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        let done = text.lines().filter(|l| l.contains("\"request\"")).count() >= 4;
        async move { done }
    })
    .await;
    assert!(logged, "four request lines: {text}");
    assert!(
        text.contains("/api/v1alpha1/unlock/{id}"),
        "the route's template: {text}"
    );
    assert!(
        text.contains("\"caller\":\"tracker\""),
        "the token's name: {text}"
    );
    for secret in [lock_id.as_str(), TRACKER, "a-wrong-token"] {
        assert!(!text.contains(secret), "{secret} in the log: {text}");
    }
}
