//! Building the API from the environment, once per cold start.
//!
//! | variable | meaning |
//! |---|---|
//! | `BATON_TABLE` | the lock table |
//! | `BATON_HISTORY_TABLE` | the history table `GET /v1/history` reads (default: the lock table's name + `-history`) |
//! | `BATON_API_TOKENS_PARAM` / `BATON_API_TOKENS` | the token document (see [`crate::tokens`]): the name of an SSM SecureString parameter holding it, or (local runs) the JSON itself |
//! | `BATON_API_TRACKER_TTL` | lease of locks taken through the Tracker paths (default `12h`) |
//! | `BATON_API_MAX_WAIT` | the longest `wait` an acquire may ask for (default `25s`) |
//! | `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_REGION`… | the AWS SDK's usual settings |
//!
//! A missing table, an unreadable or invalid token document fails the cold
//! start with a message naming the setting, rather than a 500 later.

use std::time::Duration;

use anyhow::Context as _;
use baton_lock::LockClient;
use baton_runtime::secret::required;
use baton_runtime::{Env, SecretSource, sdk};
use tracing::info;

use crate::api::{Api, Settings};
use crate::tokens::Tokens;

/// Environment variable: the token document (or `…_PARAM`: its SSM parameter).
pub const TOKENS_ENV: &str = "BATON_API_TOKENS";

/// The settings from `env`, defaults filled in.
pub fn settings(env: &Env) -> anyhow::Result<Settings> {
    let defaults = Settings::default();
    let settings = Settings {
        tracker_ttl: env.duration("BATON_API_TRACKER_TTL", defaults.tracker_ttl)?,
        max_wait: env.duration("BATON_API_MAX_WAIT", defaults.max_wait)?,
        ..defaults
    };
    if settings.tracker_ttl < Duration::from_secs(1) {
        anyhow::bail!("BATON_API_TRACKER_TTL must be at least 1s");
    }
    Ok(settings)
}

/// Reads and checks the token document.
pub async fn tokens(env: &Env, ssm: Option<&aws_sdk_ssm::Client>) -> anyhow::Result<Tokens> {
    let (document, source) = required(
        env,
        ssm,
        TOKENS_ENV,
        "the API token document (JSON: {\"tokens\": [{\"name\", \"sha256\", \"scopes\"}]})",
    )
    .await?;
    Tokens::parse(document.expose()).with_context(|| match source {
        SecretSource::Ssm(p) => format!("the token document in SSM parameter {p}"),
        _ => format!("the token document in {TOKENS_ENV}"),
    })
}

/// Everything the API needs, from the process environment.
pub async fn api_from_env() -> anyhow::Result<Api<LockClient>> {
    let env = Env::process();
    let table = env.required("BATON_TABLE", "the name of the DynamoDB lock table")?;
    let settings = settings(&env)?;
    let sdk = sdk::sdk_config().await;
    let ssm = matches!(SecretSource::of(&env, TOKENS_ENV), SecretSource::Ssm(_))
        .then(|| aws_sdk_ssm::Client::new(&sdk));
    let tokens = tokens(&env, ssm.as_ref()).await?;
    let history_table = env
        .var("BATON_HISTORY_TABLE")
        .unwrap_or_else(|| baton_lock::schema::history::table_for(&table));
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let history = crate::history::client(ddb.clone(), history_table);
    let client = LockClient::new(ddb, table);
    info!(
        table = client.table(),
        history_table = history.table(),
        tokens = tokens.len(),
        tracker_ttl = %humantime::format_duration(settings.tracker_ttl),
        max_wait = %humantime::format_duration(settings.max_wait),
        "api ready"
    );
    Ok(Api::new(client, tokens, settings).with_history(history))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_settings_name_themselves() {
        let err = settings(&Env::from_pairs(&[("BATON_API_MAX_WAIT", "forever")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("BATON_API_MAX_WAIT"), "{err}");
        let err = tokens(&Env::from_pairs(&[]), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("BATON_API_TOKENS_PARAM"), "{err}");
        let err = tokens(&Env::from_pairs(&[(TOKENS_ENV, "{\"tokens\": []}")]), None)
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("lists no tokens"), "{err:#}");
    }
}
