//! Building AWS SDK clients the same way everywhere: the standard
//! `aws-config` chain (credentials, region, `AWS_ENDPOINT_URL_*`,
//! `AWS_MAX_ATTEMPTS`, `AWS_RETRY_MODE`), one rustls+ring HTTPS client, and
//! attempt timeouts so a hung request is retried instead of stalling a Lambda.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// Per-attempt timeout for DynamoDB-sized requests; the SDK retries an
/// attempt that exceeds it (the retry is safe: every lock write is
/// conditional and recognised by its lock id).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Upper bound for one operation including retries.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client all baton SDK clients share: rustls with the ring provider
/// (no aws-lc build, smaller Lambda zips). It speaks plain HTTP too, for the
/// local servers tests and the demo use.
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Timeouts baton uses unless a client overrides them.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// Loads the shared SDK config from the environment, once per process.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .timeout_config(timeout_config())
        .load()
        .await
}
