//! A running `baton-api --listen 127.0.0.1:0` against its own table on
//! DynamoDB Local, four tokens with different scopes, and an HTTP client.

use std::process::Stdio;
use std::time::Duration;

use baton_lock::{LockClient, LockRecord};
use baton_testkit::{TestTable, fast_options};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// `read`: the dashboard's token.
pub const READER: &str = "reader-3a9c1f0e7b5d4e2a8c6f";
/// `lock:deploy/`: a pipeline that may take only deploy keys.
pub const CI: &str = "ci-5b2e8d1c9a7f4e3b6d0a";
/// `admin`.
pub const OPS: &str = "ops-8f1d3b6a2c9e4d7f0b5e";
/// `read` and `lock:` (every key): the Tracker scripts' token.
pub const TRACKER: &str = "tracker-2c7a9e4f1b8d3a6c5e0f";

/// The token document for the four tokens above, hashes only.
pub fn tokens_json() -> String {
    let entry = |name: &str, token: &str, scopes: &str| {
        format!(
            r#"{{"name": "{name}", "sha256": "{}", "scopes": {scopes}}}"#,
            baton_api::hash_hex(token)
        )
    };
    format!(
        r#"{{"tokens": [{}, {}, {}, {}]}}"#,
        entry("reader", READER, r#"["read"]"#),
        entry("ci", CI, r#"["lock:deploy/"]"#),
        entry("ops", OPS, r#"["admin"]"#),
        entry("tracker", TRACKER, r#"["read", "lock:"]"#),
    )
}

/// The API binary on loopback; killed on drop.
pub struct Server {
    pub base: String,
    pub table: TestTable,
    http: reqwest::Client,
    _child: Child,
}

/// One answer: status, a header or two, and the body as JSON (or
/// `Value::Null` when it is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Server {
    /// A server on a fresh table.
    pub async fn start() -> Server {
        Self::start_with(&[]).await
    }

    /// A server on a fresh table with extra environment variables.
    pub async fn start_with(extra: &[(&str, &str)]) -> Server {
        Self::start_logged(extra, None).await
    }

    /// A server on `table` that reaches DynamoDB through `endpoint` (a
    /// counting or fault-injecting proxy in front of DynamoDB Local).
    pub async fn start_on(table: TestTable, endpoint: &str) -> Server {
        table.create_history().await;
        let (base, child) = spawn(&table, &[("AWS_ENDPOINT_URL_DYNAMODB", endpoint)], None).await;
        Server::around(table, base, child)
    }

    fn around(table: TestTable, base: String, child: Child) -> Server {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("reqwest client");
        Server {
            base,
            table,
            http,
            _child: child,
        }
    }

    /// A server whose log lines (`RUST_LOG=info`) go to the file `log`.
    pub async fn start_logged(extra: &[(&str, &str)], log: Option<&std::path::Path>) -> Server {
        let table = TestTable::create().await;
        table.create_history().await;
        let (base, child) = spawn(&table, extra, log).await;
        Server::around(table, base, child)
    }

    /// A lock client on the server's table, reading DynamoDB Local directly.
    pub fn locks(&self) -> LockClient {
        self.table.client(fast_options())
    }

    /// Fills the history table from the lock table's stream, with the
    /// stream consumer's own code (`baton-history`), as its Lambda does.
    pub async fn record_history(&self) {
        self.table.record_history().await;
    }

    /// The key's record as DynamoDB Local has it now.
    pub async fn record(&self, key: &str) -> Option<LockRecord> {
        self.locks().status(key).await.expect("read DynamoDB Local")
    }

    /// `method path` with `token` (if any) and a JSON `body` (if any).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let body = body.map(|b| b.to_string().into_bytes());
        self.raw(method, path, token, body, &[]).await
    }

    /// [`Server::call`] with raw body bytes and extra headers.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.expect("request reached baton-api");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }
}

/// Starts the binary and reads the address from its first stdout line.
pub async fn spawn(
    table: &TestTable,
    extra: &[(&str, &str)],
    log: Option<&std::path::Path>,
) -> (String, Child) {
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).expect("log file")),
        None => Stdio::inherit(),
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_baton-api"))
        .args(["--listen", "127.0.0.1:0"])
        .env_clear()
        .env("BATON_TABLE", &table.name)
        .env("BATON_API_TOKENS", tokens_json())
        .env("AWS_ENDPOINT_URL_DYNAMODB", &table.endpoint)
        .env("AWS_ACCESS_KEY_ID", "baton")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", if log.is_some() { "info" } else { "warn" })
        .envs(extra.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn baton-api");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .expect("baton-api printed its address within 30 s")
    .expect("read stdout");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    (addr, child)
}

/// A key under `deploy/` no other test uses.
pub fn deploy_key() -> String {
    baton_testkit::unique_name("deploy/app")
}

/// Polls `check` every 20 ms until it is true or `within` passes: for
/// waiting on another task's visible effect, never a fixed sleep.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
