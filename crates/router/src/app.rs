//! Building the router from the environment, once per cold start.
//!
//! | variable | meaning |
//! |---|---|
//! | `BATON_QUEUE_URL` | the command queue (FIFO when it ends in `.fifo`) |
//! | `BATON_CONFIG` | path of the command config TOML; unset = the built-in config |
//! | `SLACK_SIGNING_SECRET_PARAM` / `SLACK_SIGNING_SECRET` | see [`crate::secrets`] |
//! | `GITHUB_WEBHOOK_SECRET_PARAM` / `GITHUB_WEBHOOK_SECRET` | see [`crate::secrets`] |
//! | `AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL_SSM`, `AWS_REGION`… | the AWS SDK's usual settings |
//!
//! Anything wrong (no queue URL, an invalid config, a missing secret, an
//! unreadable SSM parameter) fails the cold start with a message naming it,
//! rather than surfacing later as a confusing Slack reply.

use anyhow::Context as _;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use baton_chatops::Config;
use tracing::info;

use crate::queue::{self, SqsQueue};
use crate::routes::Router;
use crate::secrets::Secrets;

/// Environment variable: the command queue URL.
pub const QUEUE_URL_ENV: &str = "BATON_QUEUE_URL";
/// Environment variable: path of the command config TOML.
pub const CONFIG_ENV: &str = "BATON_CONFIG";

/// Reads and validates the command config: the file at `path`, else the
/// built-in one.
pub fn load_config(path: Option<&str>) -> anyhow::Result<Config> {
    match path.map(str::trim).filter(|p| !p.is_empty()) {
        None => Ok(Config::builtin()),
        Some(path) => {
            let source = std::fs::read_to_string(path)
                .with_context(|| format!("reading the command config {path} ({CONFIG_ENV})"))?;
            Config::from_toml_str(&source)
                .with_context(|| format!("invalid command config {path} ({CONFIG_ENV})"))
        }
    }
}

/// The HTTP client for AWS SDK clients: rustls with the ring provider (no
/// aws-lc in the build); it speaks plain HTTP too, for local servers.
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The shared AWS SDK config: the standard environment chain with
/// [`http_client`].
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .load()
        .await
}

/// An SQS client with the router's tight timeouts and retries
/// ([`queue::timeout_config`], [`queue::retry_config`]).
pub fn sqs_client(sdk: &SdkConfig) -> aws_sdk_sqs::Client {
    let conf = aws_sdk_sqs::config::Builder::from(sdk)
        .timeout_config(queue::timeout_config())
        .retry_config(queue::retry_config())
        .build();
    aws_sdk_sqs::Client::from_conf(conf)
}

/// Everything the router needs, from the environment.
pub async fn router_from_env() -> anyhow::Result<Router<SqsQueue>> {
    let env = |k: &str| std::env::var(k).ok();
    let queue_url = env(QUEUE_URL_ENV)
        .filter(|v| !v.trim().is_empty())
        .with_context(|| format!("{QUEUE_URL_ENV} is not set"))?;
    let config_path = env(CONFIG_ENV);
    let config = load_config(config_path.as_deref())?;
    let sdk = sdk_config().await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let (secrets, sources) = Secrets::load(&ssm, env).await?;
    let queue = SqsQueue::new(sqs_client(&sdk), queue_url);
    info!(
        queue_url = queue.url(),
        fifo = queue.is_fifo(),
        config = config_path.as_deref().unwrap_or("built-in"),
        commands = ?config.command_names(),
        slack_secret = ?sources[0],
        github_secret = ?sources[1],
        "router ready"
    );
    Ok(Router::new(config, secrets, queue))
}
