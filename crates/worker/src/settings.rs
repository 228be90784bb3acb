//! Reading the worker's settings from the environment at cold start. A bad
//! setting stops the init with a message naming it, never a per-message surprise.

use std::time::Duration;

use anyhow::{Context, bail};
use baton_chatops::Config;

use crate::worker::WorkerSettings;

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The lock table name from `BATON_TABLE`.
pub fn table_name() -> anyhow::Result<String> {
    var("BATON_TABLE").context("BATON_TABLE is not set: name the DynamoDB lock table")
}

/// `ENABLE_DISTRIBUTED_LOCK`: anything but false/0/no/off keeps locking on.
pub fn locking_enabled() -> bool {
    !matches!(
        var("ENABLE_DISTRIBUTED_LOCK")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref(),
        Some("false" | "0" | "no" | "off")
    )
}

/// The command config from the TOML file at `BATON_CONFIG`, or the built-in one.
pub fn command_config() -> anyhow::Result<Config> {
    match var("BATON_CONFIG") {
        None => Ok(Config::builtin()),
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("BATON_CONFIG: cannot read {path}"))?;
            Config::from_toml_str(&text).map_err(|e| anyhow::anyhow!("BATON_CONFIG {path}: {e}"))
        }
    }
}

/// A secret from SSM Parameter Store when `{name}_PARAM` names a parameter,
/// else from the `{name}` variable itself (local runs).
async fn secret(ssm: Option<&aws_sdk_ssm::Client>, name: &str) -> anyhow::Result<String> {
    if let Some(parameter) = var(&format!("{name}_PARAM")) {
        let Some(ssm) = ssm else {
            bail!("{name}_PARAM is set but no SSM client is available")
        };
        let out = ssm
            .get_parameter()
            .name(&parameter)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "{name}_PARAM: reading SSM parameter {parameter}: {}",
                    aws_sdk_ssm::error::DisplayErrorContext(e)
                )
            })?;
        return out
            .parameter()
            .and_then(|p| p.value())
            .map(str::to_owned)
            .with_context(|| format!("{name}_PARAM: SSM parameter {parameter} has no value"));
    }
    var(name)
        .with_context(|| format!("neither {name}_PARAM (an SSM parameter name) nor {name} is set"))
}

fn duration_var(name: &str, default: Duration) -> anyhow::Result<Duration> {
    match var(name) {
        None => Ok(default),
        Some(v) => {
            humantime::parse_duration(&v).with_context(|| format!("{name}: not a duration: {v}"))
        }
    }
}

/// All settings, with secrets fetched once (both at the same time).
pub async fn from_env(sdk: &aws_config::SdkConfig) -> anyhow::Result<WorkerSettings> {
    let config = command_config()?;
    let needs_ssm = var("SLACK_BOT_TOKEN_PARAM").is_some() || var("GITHUB_TOKEN_PARAM").is_some();
    let ssm = needs_ssm.then(|| aws_sdk_ssm::Client::new(sdk));
    let (slack_bot_token, github_token) = tokio::try_join!(
        secret(ssm.as_ref(), "SLACK_BOT_TOKEN"),
        secret(ssm.as_ref(), "GITHUB_TOKEN")
    )?;
    let max_receives = match var("BATON_MAX_RECEIVES") {
        None => 5,
        Some(v) => v
            .parse()
            .with_context(|| format!("BATON_MAX_RECEIVES: not a number: {v}"))?,
    };
    Ok(WorkerSettings {
        config,
        locking_enabled: locking_enabled(),
        slack_api_url: var("SLACK_API_URL").unwrap_or_else(|| "https://slack.com/api".into()),
        slack_response_url_prefix: var("SLACK_RESPONSE_URL_PREFIX")
            .unwrap_or_else(|| "https://hooks.slack.com/".into()),
        slack_bot_token,
        github_api_url: var("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into()),
        github_web_url: var("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into()),
        github_token,
        max_receives,
        default_budget: duration_var("BATON_BATCH_BUDGET", Duration::from_secs(30))?,
        http_timeout: duration_var("BATON_HTTP_TIMEOUT", Duration::from_secs(3))?,
        max_command_age: duration_var("BATON_MAX_COMMAND_AGE", Duration::from_secs(15 * 60))?,
        reconcile_lease: duration_var("BATON_RECONCILE_LEASE", Duration::from_secs(5 * 60))?,
    })
}
