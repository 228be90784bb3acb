//! The committed OpenAPI document and the routes the API serves are the
//! same set, both ways: every documented operation is routed to the route
//! whose template it is, every route's template is documented, and nothing
//! else (another method, a path beside a documented one) is served.

use std::collections::BTreeSet;

use baton_api::openapi::DOCUMENT;
use baton_api::route::{API_ROUTES, Miss, route};
use lambda_http::http::Method;
use serde_json::Value;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

fn documented() -> BTreeSet<(String, String)> {
    let doc: Value = serde_json::from_str(DOCUMENT).expect("openapi.json is JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            assert!(
                op["responses"]["200"].is_object(),
                "{method} {path} documents its 200"
            );
            assert!(op["summary"].is_string(), "{method} {path} has a summary");
            ops.insert((method.to_uppercase(), path.clone()));
        }
    }
    ops
}

/// A concrete path for a template.
fn instance(template: &str) -> String {
    template
        .replace("{key}", "deploy/prod%20eu")
        .replace("{id}", "3f2b.ZGVwbG95L3Byb2Q")
}

#[test]
fn every_route_is_documented_and_every_documented_operation_is_routed() {
    let served: BTreeSet<(String, String)> = API_ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let documented = documented();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in openapi.json: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "in openapi.json but not served: {unserved:?}"
    );

    for (method, template) in &documented {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let routed = route(&m, &instance(template))
            .unwrap_or_else(|miss| panic!("{method} {template} is not routed: {miss:?}"));
        assert_eq!(
            routed.template(),
            Some((method.as_str(), template.as_str())),
            "{method} {template} reaches another route: {routed:?}"
        );
    }
}

#[test]
fn nothing_undocumented_is_served() {
    let documented = documented();
    let paths: BTreeSet<String> = documented.iter().map(|(_, p)| instance(p)).collect();
    for path in &paths {
        for method in METHODS {
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            match route(&m, path) {
                Ok(r) => {
                    let (dm, dp) = r.template().expect("not an asset");
                    assert!(
                        documented.contains(&(dm.to_owned(), dp.to_owned())),
                        "{method} {path} is served as undocumented {dm} {dp}"
                    );
                    assert_eq!(dm, method, "{path}: served for {method}");
                }
                Err(Miss::Method { .. } | Miss::NotFound) => {}
                Err(other) => panic!("{method} {path}: {other:?}"),
            }
        }
    }
    for stray in [
        "/v1",
        "/v1/lock",
        "/api/v1alpha1",
        "/api/v1alpha1/locks",
        "/v1/openapi.yaml",
    ] {
        for method in METHODS {
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            assert_eq!(route(&m, stray), Err(Miss::NotFound), "{method} {stray}");
        }
    }
}
