//! The router's two secrets, loaded once per cold start.
//!
//! For each secret, in order:
//! 1. `<NAME>_PARAM` names an SSM parameter (normally a `SecureString`):
//!    read it with decryption. This is how the Lambda is deployed; the
//!    environment holds only parameter names.
//! 2. `<NAME>` holds the secret itself: for local runs (`--listen`, tests).
//!
//! `SLACK_SIGNING_SECRET` is required. `GITHUB_WEBHOOK_SECRET` is optional:
//! without it `/github/webhook` answers 404, as if the route did not exist.
//! Values are never logged; [`Secret`]'s `Debug` prints a placeholder.

use anyhow::{Context as _, bail};
use aws_sdk_ssm::error::DisplayErrorContext;

/// Environment variable: the Slack signing secret itself.
pub const SLACK_ENV: &str = "SLACK_SIGNING_SECRET";
/// Environment variable: name of the SSM parameter holding it.
pub const SLACK_PARAM_ENV: &str = "SLACK_SIGNING_SECRET_PARAM";
/// Environment variable: the GitHub webhook secret itself.
pub const GITHUB_ENV: &str = "GITHUB_WEBHOOK_SECRET";
/// Environment variable: name of the SSM parameter holding it.
pub const GITHUB_PARAM_ENV: &str = "GITHUB_WEBHOOK_SECRET_PARAM";

/// Key material that must never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<Vec<u8>>) -> Secret {
        Secret(value.into())
    }

    /// The key bytes, for HMAC.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The secrets the routes verify requests with.
#[derive(Debug, Clone)]
pub struct Secrets {
    /// Slack's signing secret (app settings → Basic Information).
    pub slack_signing: Secret,
    /// The secret configured on the GitHub webhook; `None` disables the route.
    pub github_webhook: Option<Secret>,
}

/// Where one secret came from, for the cold-start log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An SSM parameter of this name.
    Ssm(String),
    /// The environment variable of this name.
    Env(&'static str),
    /// Not configured.
    Absent,
}

impl Secrets {
    /// Loads both secrets, reading SSM parameters concurrently. `env` looks
    /// up an environment variable (`|k| std::env::var(k).ok()` in
    /// production); `ssm` is only called when a `*_PARAM` variable is set.
    pub async fn load(
        ssm: &aws_sdk_ssm::Client,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<(Secrets, [Source; 2])> {
        let slack_src = source(&env, SLACK_PARAM_ENV, SLACK_ENV);
        let github_src = source(&env, GITHUB_PARAM_ENV, GITHUB_ENV);
        let (slack, github) =
            tokio::join!(fetch(ssm, &env, &slack_src), fetch(ssm, &env, &github_src));
        let Some(slack_signing) = slack? else {
            bail!(
                "no Slack signing secret: set {SLACK_PARAM_ENV} (SSM parameter name) or {SLACK_ENV}"
            );
        };
        let secrets = Secrets {
            slack_signing,
            github_webhook: github?,
        };
        Ok((secrets, [slack_src, github_src]))
    }
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

fn source(
    env: &impl Fn(&str) -> Option<String>,
    param_var: &str,
    value_var: &'static str,
) -> Source {
    if let Some(name) = non_empty(env(param_var)) {
        Source::Ssm(name.trim().to_string())
    } else if non_empty(env(value_var)).is_some() {
        Source::Env(value_var)
    } else {
        Source::Absent
    }
}

async fn fetch(
    ssm: &aws_sdk_ssm::Client,
    env: &impl Fn(&str) -> Option<String>,
    src: &Source,
) -> anyhow::Result<Option<Secret>> {
    match src {
        Source::Absent => Ok(None),
        Source::Env(var) => Ok(non_empty(env(var)).map(Secret::new)),
        Source::Ssm(name) => {
            let out = ssm
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(&e)))
                .with_context(|| format!("reading SSM parameter {name}"))?;
            let value = out
                .parameter
                .and_then(|p| p.value)
                .filter(|v| !v.is_empty())
                .with_context(|| format!("SSM parameter {name} has no value"))?;
            Ok(Some(Secret::new(value)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn offline_ssm() -> aws_sdk_ssm::Client {
        // Never called in these tests: no *_PARAM variable is set.
        let conf = aws_sdk_ssm::Config::builder()
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .build();
        aws_sdk_ssm::Client::from_conf(conf)
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[tokio::test]
    async fn env_values_are_used_for_local_runs() {
        let env = env_of(&[(SLACK_ENV, "s3cret"), (GITHUB_ENV, "gh")]);
        let (s, src) = Secrets::load(&offline_ssm(), env).await.unwrap();
        assert_eq!(s.slack_signing.expose(), b"s3cret");
        assert_eq!(s.github_webhook.unwrap().expose(), b"gh");
        assert_eq!(src, [Source::Env(SLACK_ENV), Source::Env(GITHUB_ENV)]);
    }

    #[tokio::test]
    async fn github_secret_is_optional_slack_is_not() {
        let (s, src) = Secrets::load(&offline_ssm(), env_of(&[(SLACK_ENV, "s")]))
            .await
            .unwrap();
        assert!(s.github_webhook.is_none());
        assert_eq!(src[1], Source::Absent);

        let err = Secrets::load(
            &offline_ssm(),
            env_of(&[(GITHUB_ENV, "gh"), (SLACK_ENV, "  ")]),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains(SLACK_PARAM_ENV), "{err}");
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
    }
}
