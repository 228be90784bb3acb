//! DynamoDB Local: where it is, a client for it, and a fresh table per test.

use std::time::Duration;

use aws_sdk_dynamodb::config::retry::{RetryConfig, RetryPartition, TokenBucket};
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use baton_lock::{LockClient, LockOptions};

/// Endpoint of DynamoDB Local: `BATON_TEST_DYNAMODB_ENDPOINT`, else
/// `AWS_ENDPOINT_URL_DYNAMODB`, else `http://127.0.0.1:8000`. Panics (this is
/// test code) when it is not a loopback address: tests never leave the machine.
pub fn dynamodb_endpoint() -> String {
    let endpoint = std::env::var("BATON_TEST_DYNAMODB_ENDPOINT")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL_DYNAMODB"))
        .unwrap_or_else(|_| "http://127.0.0.1:8000".to_owned());
    assert!(
        endpoint.starts_with("http://127.")
            || endpoint.starts_with("http://localhost")
            || endpoint.starts_with("http://[::1]"),
        "tests only talk to loopback; got DynamoDB endpoint {endpoint}"
    );
    endpoint
}

/// An SDK client for DynamoDB Local at `endpoint` with dummy credentials,
/// baton's HTTP client and timeouts, and `attempts` SDK attempts per request.
pub fn local_dynamodb_client(endpoint: &str, attempts: u32) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "baton",
            "local",
            None,
            None,
            "baton-testkit",
        ))
        .endpoint_url(endpoint)
        .http_client(baton_runtime::sdk::http_client())
        .timeout_config(baton_runtime::sdk::timeout_config())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(attempts)
                .with_initial_backoff(Duration::from_millis(5)),
        )
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Like [`local_dynamodb_client`], tuned for fault injection: each SDK
/// attempt times out after `attempt_timeout` (instead of
/// [`baton_runtime::sdk::ATTEMPT_TIMEOUT`]), so tests can delay requests past
/// the timeout without waiting seconds each time; and with
/// `unlimited_retries` the client gets a retry partition of its own without
/// a retry quota, so every one of the `attempts` is made however many faults
/// came before. (The SDK's default quota is shared by every client in the
/// process and stops retrying after a few dozen failures.)
pub fn local_dynamodb_client_tuned(
    endpoint: &str,
    attempts: u32,
    attempt_timeout: Duration,
    unlimited_retries: bool,
) -> aws_sdk_dynamodb::Client {
    let timeouts = baton_runtime::sdk::timeout_config()
        .to_builder()
        .operation_attempt_timeout(attempt_timeout)
        .build();
    let mut config = local_dynamodb_client(endpoint, attempts)
        .config()
        .to_builder()
        .timeout_config(timeouts);
    if unlimited_retries {
        config = config.retry_partition(
            RetryPartition::custom(unique_name("baton-test-retries"))
                .token_bucket(TokenBucket::unlimited())
                .build(),
        );
    }
    aws_sdk_dynamodb::Client::from_conf(config.build())
}

/// A name no other test uses, for tables and keys.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A freshly created lock table on DynamoDB Local.
pub struct TestTable {
    pub name: String,
    pub endpoint: String,
}

impl TestTable {
    /// Creates a uniquely named table through `baton-lock`'s own
    /// `create_table`, so tests exercise the same schema as production.
    pub async fn create() -> TestTable {
        let endpoint = dynamodb_endpoint();
        let name = unique_name("baton-test");
        let client = LockClient::new(local_dynamodb_client(&endpoint, 3), &name);
        if let Err(e) = client.create_table().await {
            panic!(
                "could not create a table on DynamoDB Local at {endpoint}: {e}\n\
                 (run the tests with `make test`, which starts DynamoDB Local)"
            );
        }
        TestTable { name, endpoint }
    }

    /// A lock client on this table with `options`, talking to DynamoDB Local directly.
    pub fn client(&self, options: LockOptions) -> LockClient {
        LockClient::with_options(
            local_dynamodb_client(&self.endpoint, 3),
            &self.name,
            options,
        )
    }

    /// A lock client on this table that reaches DynamoDB through `endpoint`
    /// (e.g. a [`crate::FaultProxy`]), with `attempts` SDK attempts.
    pub fn client_via(&self, endpoint: &str, attempts: u32, options: LockOptions) -> LockClient {
        LockClient::with_options(
            local_dynamodb_client(endpoint, attempts),
            &self.name,
            options,
        )
    }

    /// Like [`TestTable::client_via`], with the SDK client tuned as in
    /// [`local_dynamodb_client_tuned`].
    pub fn client_via_tuned(
        &self,
        endpoint: &str,
        attempts: u32,
        attempt_timeout: Duration,
        unlimited_retries: bool,
        options: LockOptions,
    ) -> LockClient {
        LockClient::with_options(
            local_dynamodb_client_tuned(endpoint, attempts, attempt_timeout, unlimited_retries),
            &self.name,
            options,
        )
    }
}

/// Options for fast tests: no skew margin and quick polling.
pub fn fast_options() -> LockOptions {
    LockOptions {
        clock_skew: Duration::ZERO,
        poll_initial: Duration::from_millis(20),
        poll_max: Duration::from_millis(200),
        line_poll: Duration::from_millis(20),
        ..LockOptions::default()
    }
}
