//! Bad input, by property: whatever method, path, query, headers and body
//! a caller sends, the API answers (never panics) with a status it
//! documents and, for every refusal, a JSON body with an `error` name and a
//! message; what can be written and read back (keys in paths, Tracker ids)
//! comes back as it was given; and a refused request changes no record.
//!
//! The whole handler runs here on the memory store, the lock library's
//! second adapter, so thousands of requests take a second; the HTTP tests
//! (`tests/http`) prove the same routes on DynamoDB Local through the
//! binary. `PROPTEST_CASES` raises the case counts for a longer hunt.

use std::time::Duration;

use baton_api::route::{Action, Route, route};
use baton_api::tracker_id::TrackerId;
use baton_api::wire::{AcquireBody, ReleaseBody, TrackerLockBody, parse_body};
use baton_api::{Api, Settings, Tokens, hash_hex};
use baton_lock::{AcquireRequest, LockStore, MemoryStore};
use bytes::Bytes;
use lambda_http::http::{Method, Request};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use serde_json::Value;

const TOKEN: &str = "prop-token";
const READ_ONLY: &str = "prop-reader";

fn api() -> Api<MemoryStore> {
    let json = format!(
        r#"{{"tokens": [{{"name": "p", "sha256": "{}", "scopes": ["lock:held/", "read"]}},
                        {{"name": "r", "sha256": "{}", "scopes": ["read"]}}]}}"#,
        hash_hex(TOKEN),
        hash_hex(READ_ONLY)
    );
    Api::new(
        MemoryStore::new(),
        Tokens::parse(&json).expect("token document"),
        Settings {
            max_wait: Duration::from_millis(50),
            ..Settings::default()
        },
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::DELETE),
        Just(Method::PATCH),
    ]
}

/// Paths near the real ones (so the handlers, not only the 404, are hit),
/// with arbitrary keys, actions, ids and query strings.
fn path() -> impl Strategy<Value = String> {
    let segment = "[a-zA-Z0-9%._~/ -]{0,12}";
    let action = prop_oneof![
        Just("acquire"),
        Just("release"),
        Just("renew"),
        Just("force-unlock"),
        Just("explode"),
    ];
    prop_oneof![
        (segment, action).prop_map(|(k, a)| format!("/v1/locks/held/{k}/{a}")),
        segment.prop_map(|k| format!("/v1/locks/{k}")),
        "[a-zA-Z0-9=&%_]{0,30}".prop_map(|q| format!("/v1/locks?{q}")),
        "[a-zA-Z0-9=&%_]{0,30}".prop_map(|q| format!("/api/v1alpha1/locks/list?{q}")),
        "[a-zA-Z0-9._-]{0,40}".prop_map(|id| format!("/api/v1alpha1/lock/{id}")),
        "[a-zA-Z0-9._-]{0,40}".prop_map(|id| format!("/api/v1alpha1/unlock/{id}")),
        Just("/api/v1alpha1/lock".to_owned()),
        Just("/v1/openapi.json".to_owned()),
        Just("/".to_owned()),
        "/[a-z0-9/]{0,20}",
    ]
}

/// Bodies near the real ones: objects with known and unknown fields of any
/// JSON type, and raw bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        Just("owner".to_owned()),
        Just("ttl".to_owned()),
        Just("wait".to_owned()),
        Just("queue".to_owned()),
        Just("maxQueue".to_owned()),
        Just("lockId".to_owned()),
        Just("reason".to_owned()),
        Just("status".to_owned()),
        Just("service".to_owned()),
        Just("who".to_owned()),
        "[a-zA-Z]{1,8}",
    ];
    let value = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[0-9]{1,3}(ms|s|m|h)".prop_map(Value::String),
        ".{0,20}".prop_map(Value::String),
        Just(Value::String("COMPLETED".into())),
    ];
    prop_oneof![
        proptest::collection::btree_map(field, value, 0..6).prop_map(|m| {
            serde_json::to_vec(&m.into_iter().collect::<serde_json::Map<_, _>>()).unwrap()
        }),
        proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

fn token() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some(format!("Bearer {TOKEN}"))),
        Just(Some(format!("Bearer {READ_ONLY}"))),
        Just(Some(format!("bearer  {TOKEN} "))),
        ".{0,20}".prop_map(Some),
    ]
}

const DOCUMENTED: [u16; 11] = [200, 400, 401, 403, 404, 405, 409, 413, 429, 500, 503];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_request_gets_a_documented_answer(
        method in method(),
        path in path(),
        auth in token(),
        body in body(),
    ) {
        let api = api();
        let rt = runtime();
        let held = rt.block_on(api_store_seed(&api));
        let mut req = Request::builder().method(method.clone()).uri(&path);
        if let Some(auth) = &auth {
            req = req.header("authorization", auth.as_str());
        }
        let Ok(req) = req.body(Bytes::from(body)) else {
            // Not a request a client could send (a header value with a newline).
            return Ok(());
        };
        let resp = rt.block_on(api.handle(req));
        let status = resp.status().as_u16();
        prop_assert!(DOCUMENTED.contains(&status), "{method} {path}: {status}");
        let is_asset = resp.headers()["content-type"].to_str().unwrap_or("").starts_with("text/");
        if !is_asset {
            let json: Value = serde_json::from_str(resp.body())
                .map_err(|e| TestCaseError::fail(format!("{method} {path}: not JSON ({e}): {}", resp.body())))?;
            if status >= 400 {
                let tracker_miss = json.get("success") == Some(&Value::Bool(false));
                prop_assert!(json["error"].is_string(), "{}", resp.body());
                prop_assert!(tracker_miss || json["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", resp.body());
            }
        }
        // Without the lock's scope, or refused before the store was asked
        // (a queued acquire that timed out did join and leave the line),
        // the record that existed before is untouched.
        let refused_early = [400, 401, 403, 404, 405, 413].contains(&status);
        if refused_early || auth.as_deref() != Some(&format!("Bearer {TOKEN}")) {
            let now = rt.block_on(api_store(&api).status("held/key")).unwrap();
            prop_assert_eq!(now.as_ref(), Some(&held));
        }
    }

    #[test]
    fn keys_in_paths_come_back_as_given(key in "[^\\x00-\\x1f\\x7f]{1,40}") {
        let encoded: Vec<String> = key
            .split('/')
            .map(|s| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string())
            .collect();
        let path = format!("/v1/locks/{}/release", encoded.join("/"));
        if key.split('/').next().is_some_and(str::is_empty) || key.ends_with('/') {
            // Empty first or last segments: still decoded, never a panic.
            let _ = route(&Method::POST, &path);
        } else {
            prop_assert_eq!(
                route(&Method::POST, &path),
                Ok(Route::Lock { key: key.clone(), action: Action::Release })
            );
            let read = format!("/v1/locks/{}", encoded.join("/"));
            prop_assert_eq!(route(&Method::GET, &read), Ok(Route::Status { key }));
        }
    }

    #[test]
    fn tracker_ids_carry_their_key(lock_id in "[0-9a-f-]{1,36}", key in ".{1,60}") {
        let id = TrackerId::encode(&lock_id, &key);
        prop_assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "{}", id);
        let back = TrackerId::decode(&id).unwrap();
        prop_assert!(back.names(&lock_id));
        prop_assert_eq!(back.key, key);
    }

    #[test]
    fn body_parsers_refuse_with_a_field_and_a_message(body in body()) {
        for refusal in [
            parse_body::<AcquireBody>(&body).err(),
            parse_body::<ReleaseBody>(&body).err(),
            parse_body::<TrackerLockBody>(&body).err(),
        ].into_iter().flatten() {
            prop_assert!(!refusal.field.is_empty() && !refusal.message.is_empty(), "{:?}", refusal);
        }
    }

    #[test]
    fn an_unknown_field_is_named(extra in "[a-z]{1,10}") {
        prop_assume!(!["owner", "who", "service", "ttl"].contains(&extra.as_str()));
        let body = format!(r#"{{"service": "s", "who": "w", "{extra}": 1}}"#);
        let refusal = parse_body::<TrackerLockBody>(body.as_bytes()).unwrap_err();
        prop_assert_eq!(refusal.field, extra);
    }
}

fn api_store(api: &Api<MemoryStore>) -> MemoryStore {
    api.store().clone()
}

/// A held key the requests may try to touch; returns its record.
async fn api_store_seed(api: &Api<MemoryStore>) -> baton_lock::LockRecord {
    let store = api_store(api);
    let grant = store
        .acquire(&AcquireRequest::new(
            "held/key",
            "holder",
            Duration::from_secs(600),
        ))
        .await
        .expect("seed grant");
    grant.record
}
