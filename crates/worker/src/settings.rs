//! The worker's settings, all read here at cold start. A bad setting stops
//! the init with a message naming it and what it should hold, never a
//! per-message surprise. The README's settings table lists each one.

use std::time::Duration;

use baton_chatops::{Config, PipelineKind};
use baton_runtime::secret;
use baton_runtime::{Env, Secret, SecretSource};

use crate::worker::WorkerSettings;

/// The lock table name from `BATON_TABLE`.
pub fn table_name(env: &Env) -> anyhow::Result<String> {
    env.required("BATON_TABLE", "the name of the DynamoDB lock table")
}

/// The history table `history` reads: `BATON_HISTORY_TABLE`, or the lock
/// table's name + `-history`.
pub fn history_table(env: &Env, lock_table: &str) -> String {
    env.var("BATON_HISTORY_TABLE")
        .unwrap_or_else(|| baton_lock::schema::history::table_for(lock_table))
}

/// All settings, with secrets fetched once (all at the same time).
pub async fn from_env(env: &Env, sdk: &aws_config::SdkConfig) -> anyhow::Result<WorkerSettings> {
    let config = baton_runtime::config::command_config(env)?;
    let needs_ssm = [SLACK_TOKEN, GITHUB_TOKEN, AZURE_PAT]
        .iter()
        .any(|name| matches!(SecretSource::of(env, name), SecretSource::Ssm(_)));
    let ssm = needs_ssm.then(|| aws_sdk_ssm::Client::new(sdk));
    let ((slack_bot_token, _), (github_token, _), azure_pat) = tokio::try_join!(
        secret::required(
            env,
            ssm.as_ref(),
            SLACK_TOKEN,
            "the Slack bot token (xoxb-…)"
        ),
        secret::required(
            env,
            ssm.as_ref(),
            GITHUB_TOKEN,
            "a GitHub token that may dispatch, read and cancel workflow runs"
        ),
        azure_pat(env, ssm.as_ref(), &config)
    )?;
    Ok(WorkerSettings {
        config,
        locking_enabled: env.switch_on("ENABLE_DISTRIBUTED_LOCK"),
        slack_api_url: env.url("SLACK_API_URL", "https://slack.com/api")?,
        slack_response_url_prefix: env
            .url("SLACK_RESPONSE_URL_PREFIX", "https://hooks.slack.com/")?,
        slack_bot_token,
        github_api_url: env.url("GITHUB_API_URL", "https://api.github.com")?,
        github_web_url: env.url("GITHUB_SERVER_URL", "https://github.com")?,
        github_token,
        azure_api_url: env.url("AZURE_DEVOPS_URL", crate::azure::DEFAULT_URL)?,
        azure_pat,
        max_receives: env.number("BATON_MAX_RECEIVES", 5)?,
        default_budget: env.duration("BATON_BATCH_BUDGET", Duration::from_secs(30))?,
        http_timeout: env.duration("BATON_HTTP_TIMEOUT", Duration::from_secs(3))?,
        max_command_age: env.duration("BATON_MAX_COMMAND_AGE", Duration::from_secs(15 * 60))?,
        reconcile_lease: env.duration("BATON_RECONCILE_LEASE", Duration::from_secs(5 * 60))?,
        handoff_grace: env.duration("BATON_HANDOFF_GRACE", Duration::from_secs(60))?,
    })
}

/// The Azure DevOps personal access token: required when a command starts
/// an Azure pipeline (so a missing one stops the cold start, not a
/// `/deploy` hours later), read if set otherwise.
async fn azure_pat(
    env: &Env,
    ssm: Option<&aws_sdk_ssm::Client>,
    config: &Config,
) -> anyhow::Result<Option<Secret>> {
    if config
        .commands()
        .any(|c| c.pipeline.kind() == PipelineKind::AzurePipelines)
    {
        let what = "an Azure DevOps personal access token allowed Build (read & execute)";
        let (pat, _) = secret::required(env, ssm, AZURE_PAT, what).await?;
        return Ok(Some(pat));
    }
    SecretSource::of(env, AZURE_PAT).fetch(env, ssm).await
}

const SLACK_TOKEN: &str = "SLACK_BOT_TOKEN";
const GITHUB_TOKEN: &str = "GITHUB_TOKEN";
const AZURE_PAT: &str = "AZURE_DEVOPS_PAT";

#[cfg(test)]
mod tests {
    use super::*;

    /// An SDK config that is never used to call AWS: no `*_PARAM` is set.
    fn offline_sdk() -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build()
    }

    /// A command config file whose `/deploy` starts an Azure pipeline.
    fn azure_config_file() -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!(
            "baton-azure-config-{}-{}.toml",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::write(
            &path,
            r#"[commands."/deploy"]
lock_ttl = "30m"
components = ["api"]
environments = ["prod"]
[commands."/deploy".pipeline]
kind = "azure-pipelines"
organization = "acme"
project = "Platform"
pipeline_id = 42
"#,
        )
        .expect("writing a temporary config");
        path
    }

    #[tokio::test]
    async fn an_azure_command_without_a_pat_stops_the_cold_start_naming_it() {
        let path = azure_config_file();
        let config = path.to_string_lossy().into_owned();
        let base = [
            ("BATON_CONFIG", config.as_str()),
            (SLACK_TOKEN, "xoxb-1"),
            (GITHUB_TOKEN, "ghp-1"),
        ];
        let err = from_env(&Env::from_pairs(&base), &offline_sdk())
            .await
            .expect_err("no PAT");
        assert!(err.to_string().contains("AZURE_DEVOPS_PAT_PARAM"), "{err}");

        let mut with_pat = base.to_vec();
        with_pat.push((AZURE_PAT, "pat-1"));
        with_pat.push(("AZURE_DEVOPS_URL", "http://127.0.0.1:9/tfs"));
        let settings = from_env(&Env::from_pairs(&with_pat), &offline_sdk())
            .await
            .expect("settings");
        assert_eq!(
            settings.azure_pat.map(|p| p.expose().to_owned()).as_deref(),
            Some("pat-1")
        );
        assert_eq!(settings.azure_api_url, "http://127.0.0.1:9/tfs");
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn without_azure_commands_the_pat_is_optional() {
        let env = Env::from_pairs(&[(SLACK_TOKEN, "xoxb-1"), (GITHUB_TOKEN, "ghp-1")]);
        let settings = from_env(&env, &offline_sdk()).await.expect("settings");
        assert!(settings.azure_pat.is_none());
        assert_eq!(settings.azure_api_url, crate::azure::DEFAULT_URL);
    }
}
