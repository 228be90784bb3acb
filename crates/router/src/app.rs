//! Building the router from the environment, once per cold start.
//!
//! | variable | meaning |
//! |---|---|
//! | `BATON_QUEUE_URL` | the command queue (FIFO when it ends in `.fifo`) |
//! | `BATON_CONFIG` | path of the command config TOML; unset = the built-in config |
//! | `SLACK_SIGNING_SECRET_PARAM` / `SLACK_SIGNING_SECRET` | see [`crate::secrets`] |
//! | `SLACK_SIGNING_SECRET_PREVIOUS_PARAM` / `SLACK_SIGNING_SECRET_PREVIOUS` | see [`crate::secrets`] |
//! | `GITHUB_WEBHOOK_SECRET_PARAM` / `GITHUB_WEBHOOK_SECRET` | see [`crate::secrets`] |
//! | `AZURE_DEVOPS_HOOK_SECRET_PARAM` / `AZURE_DEVOPS_HOOK_SECRET` | see [`crate::secrets`] |
//! | `AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL_SSM`, `AWS_REGION`… | the AWS SDK's usual settings |
//!
//! Anything wrong (no queue URL, an invalid config, a missing secret, an
//! unreadable SSM parameter) fails the cold start with a message naming it,
//! rather than surfacing later as a confusing Slack reply.

use aws_config::SdkConfig;
use baton_runtime::config::{command_config, config_source};
use baton_runtime::{Env, sdk};
use tracing::info;

use crate::queue::{self, SqsQueue};
use crate::routes::Router;
use crate::secrets::Secrets;

/// Environment variable: the command queue URL.
pub const QUEUE_URL_ENV: &str = "BATON_QUEUE_URL";

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
    let env = Env::process();
    let queue_url = env.required(QUEUE_URL_ENV, "the URL of the SQS command queue")?;
    let config = command_config(&env)?;
    let sdk = sdk::sdk_config().await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let (secrets, sources) = Secrets::load(&ssm, &env).await?;
    let queue = SqsQueue::new(sqs_client(&sdk), queue_url);
    info!(
        queue_url = queue.url(),
        fifo = queue.is_fifo(),
        config = config_source(&env),
        commands = ?config.command_names(),
        slack_secret = ?sources[0],
        slack_previous_secret = ?sources[1],
        github_secret = ?sources[2],
        azure_hook_secret = ?sources[3],
        "router ready"
    );
    Ok(Router::new(config, secrets, queue))
}
