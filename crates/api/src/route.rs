//! Which route a request is for, from its method and path.
//!
//! | method | path | route |
//! |---|---|---|
//! | GET | `/`, `/dashboard.js`, `/dashboard.css` | the dashboard's static files |
//! | GET | `/v1/openapi.json` | the OpenAPI document |
//! | GET | `/v1/locks` | list held locks (paginated) |
//! | GET | `/v1/locks/{key}` | one key's record |
//! | GET | `/v1/history` | ended grants across keys, newest first |
//! | GET | `/v1/history/{key}` | one key's ended grants, newest first |
//! | POST | `/v1/locks/{key}/acquire` (`release`, `renew`, `force-unlock`) | a lock operation |
//! | POST | `/api/v1alpha1/lock` | Tracker: create a lock |
//! | GET | `/api/v1alpha1/lock/{id}` | Tracker: get a lock |
//! | GET | `/api/v1alpha1/unlock/{id}` | Tracker: release a lock |
//! | GET | `/api/v1alpha1/locks/list` | Tracker: list locks |
//!
//! Keys may contain `/` (`deploy/prod`): everything between `/v1/locks/`
//! and the action is the key, each segment percent-decoded. A `GET` reads
//! the whole rest as the key, so a key whose last segment is an action's
//! name is still readable; to act on one, encode its last `/` as `%2F`.

use lambda_http::http::Method;
use percent_encoding::percent_decode_str;

/// A lock operation under `/v1/locks/{key}/…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Acquire,
    Release,
    Renew,
    ForceUnlock,
}

impl Action {
    fn of(segment: &str) -> Option<Action> {
        match segment {
            "acquire" => Some(Action::Acquire),
            "release" => Some(Action::Release),
            "renew" => Some(Action::Renew),
            "force-unlock" => Some(Action::ForceUnlock),
            _ => None,
        }
    }
}

/// A dashboard file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    Html,
    Script,
    Style,
}

/// Every route the API serves (the OpenAPI test walks this list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Asset(Asset),
    OpenApi,
    List,
    Status { key: String },
    History,
    KeyHistory { key: String },
    Lock { key: String, action: Action },
    TrackerCreate,
    TrackerGet { id: String },
    TrackerUnlock { id: String },
    TrackerList,
}

/// Every route but the dashboard's files, as `(method, path template)`:
/// exactly the operations of the OpenAPI document (a test holds them equal).
pub const API_ROUTES: [(&str, &str); 13] = [
    ("GET", "/v1/openapi.json"),
    ("GET", "/v1/locks"),
    ("GET", "/v1/locks/{key}"),
    ("GET", "/v1/history"),
    ("GET", "/v1/history/{key}"),
    ("POST", "/v1/locks/{key}/acquire"),
    ("POST", "/v1/locks/{key}/release"),
    ("POST", "/v1/locks/{key}/renew"),
    ("POST", "/v1/locks/{key}/force-unlock"),
    ("POST", "/api/v1alpha1/lock"),
    ("GET", "/api/v1alpha1/lock/{id}"),
    ("GET", "/api/v1alpha1/unlock/{id}"),
    ("GET", "/api/v1alpha1/locks/list"),
];

impl Route {
    /// The lock key a `/v1` route names, for the request's log line.
    pub fn key(&self) -> Option<&str> {
        match self {
            Route::Status { key } | Route::KeyHistory { key } | Route::Lock { key, .. } => {
                Some(key)
            }
            _ => None,
        }
    }

    /// The `(method, path template)` this route answers, as in
    /// [`API_ROUTES`]; `None` for the dashboard's files. Exhaustive, so a
    /// new route cannot be added without a template (and so, by the
    /// OpenAPI test, without documentation).
    pub fn template(&self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            Route::Asset(_) => return None,
            Route::OpenApi => ("GET", "/v1/openapi.json"),
            Route::List => ("GET", "/v1/locks"),
            Route::Status { .. } => ("GET", "/v1/locks/{key}"),
            Route::History => ("GET", "/v1/history"),
            Route::KeyHistory { .. } => ("GET", "/v1/history/{key}"),
            Route::Lock { action, .. } => match action {
                Action::Acquire => ("POST", "/v1/locks/{key}/acquire"),
                Action::Release => ("POST", "/v1/locks/{key}/release"),
                Action::Renew => ("POST", "/v1/locks/{key}/renew"),
                Action::ForceUnlock => ("POST", "/v1/locks/{key}/force-unlock"),
            },
            Route::TrackerCreate => ("POST", "/api/v1alpha1/lock"),
            Route::TrackerGet { .. } => ("GET", "/api/v1alpha1/lock/{id}"),
            Route::TrackerUnlock { .. } => ("GET", "/api/v1alpha1/unlock/{id}"),
            Route::TrackerList => ("GET", "/api/v1alpha1/locks/list"),
        })
    }
}

/// Why a request matched no route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// No such path: 404.
    NotFound,
    /// The path exists for other methods: 405 with `Allow`.
    Method { allow: &'static str },
    /// A path segment that is not valid percent-encoded UTF-8: 400.
    BadKey(String),
}

/// The route for `method` and `path` (without the query).
pub fn route(method: &Method, path: &str) -> Result<Route, Miss> {
    let get = |r: Route| expect(method, Method::GET, "GET", r);
    match path {
        "/" | "/index.html" => return get(Route::Asset(Asset::Html)),
        "/dashboard.js" => return get(Route::Asset(Asset::Script)),
        "/dashboard.css" => return get(Route::Asset(Asset::Style)),
        "/v1/openapi.json" => return get(Route::OpenApi),
        "/v1/locks" | "/v1/locks/" => return get(Route::List),
        "/v1/history" | "/v1/history/" => return get(Route::History),
        "/api/v1alpha1/lock" => return expect(method, Method::POST, "POST", Route::TrackerCreate),
        "/api/v1alpha1/locks/list" => return get(Route::TrackerList),
        _ => {}
    }
    if let Some(id) = one_segment(path, "/api/v1alpha1/lock/") {
        return get(Route::TrackerGet { id });
    }
    if let Some(id) = one_segment(path, "/api/v1alpha1/unlock/") {
        return get(Route::TrackerUnlock { id });
    }
    if let Some(rest) = path.strip_prefix("/v1/history/") {
        return get(Route::KeyHistory { key: decode(rest)? });
    }
    let Some(rest) = path.strip_prefix("/v1/locks/") else {
        return Err(Miss::NotFound);
    };
    if *method == Method::GET {
        return Ok(Route::Status { key: decode(rest)? });
    }
    if *method != Method::POST {
        return Err(Miss::Method { allow: "GET, POST" });
    }
    match rest.rsplit_once('/') {
        Some((key, action)) if !key.is_empty() => match Action::of(action) {
            Some(action) => Ok(Route::Lock {
                key: decode(key)?,
                action,
            }),
            None => Err(Miss::NotFound),
        },
        _ => Err(Miss::Method { allow: "GET" }),
    }
}

fn expect(method: &Method, wanted: Method, allow: &'static str, r: Route) -> Result<Route, Miss> {
    if *method == wanted {
        Ok(r)
    } else {
        Err(Miss::Method { allow })
    }
}

/// The single non-empty segment after `prefix`, as sent (ids are URL-safe).
fn one_segment(path: &str, prefix: &str) -> Option<String> {
    path.strip_prefix(prefix)
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .map(str::to_owned)
}

/// A key from its path segments, each percent-decoded.
fn decode(raw: &str) -> Result<String, Miss> {
    raw.split('/')
        .map(|segment| {
            percent_decode_str(segment)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| Miss::BadKey("the key is not valid UTF-8 once percent-decoded".into()))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|segments| segments.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_slashes_and_encoded_segments() {
        assert_eq!(
            route(&Method::POST, "/v1/locks/deploy/prod/acquire"),
            Ok(Route::Lock {
                key: "deploy/prod".into(),
                action: Action::Acquire
            })
        );
        assert_eq!(
            route(&Method::GET, "/v1/locks/deploy/prod/release"),
            Ok(Route::Status {
                key: "deploy/prod/release".into()
            })
        );
        assert_eq!(
            route(&Method::POST, "/v1/locks/x%2Frelease/release"),
            Ok(Route::Lock {
                key: "x/release".into(),
                action: Action::Release
            })
        );
        assert_eq!(
            route(&Method::GET, "/v1/locks/a%20b"),
            Ok(Route::Status { key: "a b".into() })
        );
        assert!(matches!(
            route(&Method::GET, "/v1/locks/%FF"),
            Err(Miss::BadKey(_))
        ));
    }

    #[test]
    fn unknown_paths_and_methods() {
        assert_eq!(route(&Method::GET, "/v2/locks"), Err(Miss::NotFound));
        assert_eq!(
            route(&Method::POST, "/v1/locks/x/explode"),
            Err(Miss::NotFound)
        );
        assert_eq!(
            route(&Method::DELETE, "/v1/locks/x"),
            Err(Miss::Method { allow: "GET, POST" })
        );
        assert_eq!(
            route(&Method::GET, "/api/v1alpha1/lock"),
            Err(Miss::Method { allow: "POST" })
        );
        assert_eq!(
            route(&Method::POST, "/v1/locks"),
            Err(Miss::Method { allow: "GET" })
        );
        assert_eq!(
            route(&Method::GET, "/api/v1alpha1/unlock/a/b"),
            Err(Miss::NotFound)
        );
    }
}
