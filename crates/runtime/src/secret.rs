//! Secrets: read once, from SSM Parameter Store in AWS or from the
//! environment in local runs, and kept in a type whose `Debug` prints a
//! placeholder and which has no `Display`, so a secret cannot reach a log
//! through a derived `Debug` or a format string.

use anyhow::Context as _;
use aws_sdk_ssm::error::DisplayErrorContext;

use crate::settings::Env;

/// Key material or a token that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that sends it (an HTTP header, an HMAC key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret::new(value)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where a secret comes from, for the start-up log line (never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The SSM parameter of this name (`{NAME}_PARAM`).
    Ssm(String),
    /// The environment variable of this name (`{NAME}`).
    Env(String),
    /// Neither is set.
    Absent,
}

impl SecretSource {
    /// Where the secret `name` is configured: `{name}_PARAM` names an SSM
    /// parameter (how the Lambdas are deployed: the environment holds only
    /// parameter names); else `{name}` holds the value (local runs).
    pub fn of(env: &Env, name: &str) -> SecretSource {
        if let Some(parameter) = env.var(&format!("{name}_PARAM")) {
            SecretSource::Ssm(parameter.trim().to_owned())
        } else if env.var(name).is_some() {
            SecretSource::Env(name.to_owned())
        } else {
            SecretSource::Absent
        }
    }

    /// Reads the secret. `ssm` is only used for [`SecretSource::Ssm`].
    pub async fn fetch(
        &self,
        env: &Env,
        ssm: Option<&aws_sdk_ssm::Client>,
    ) -> anyhow::Result<Option<Secret>> {
        match self {
            SecretSource::Absent => Ok(None),
            SecretSource::Env(name) => Ok(env.var(name).map(Secret::new)),
            SecretSource::Ssm(parameter) => {
                let ssm = ssm.with_context(|| {
                    format!("SSM parameter {parameter} is named but no SSM client was built")
                })?;
                let out = ssm
                    .get_parameter()
                    .name(parameter)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(&e)))
                    .with_context(|| format!("reading SSM parameter {parameter}"))?;
                let value = out
                    .parameter
                    .and_then(|p| p.value)
                    .and_then(|v| trimmed(&v))
                    .with_context(|| format!("SSM parameter {parameter} has no value"))?;
                Ok(Some(Secret::new(value)))
            }
        }
    }
}

/// A parameter's value without the whitespace around it (`None` when
/// nothing else is left). A value written with `aws ssm put-parameter
/// --value "$(cat file)"` or pasted into the console easily carries a
/// trailing newline, which would make every HMAC and token it keys wrong
/// without saying why; environment values are trimmed the same way
/// ([`Env::var`]).
fn trimmed(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// Reads a required secret `name`, failing with what to set.
pub async fn required(
    env: &Env,
    ssm: Option<&aws_sdk_ssm::Client>,
    name: &str,
    what: &str,
) -> anyhow::Result<(Secret, SecretSource)> {
    let source = SecretSource::of(env, name);
    match source.fetch(env, ssm).await? {
        Some(secret) => Ok((secret, source)),
        None => anyhow::bail!(
            "{name} is not set: set {name}_PARAM to the name of an SSM parameter holding {what}, or {name} to the value itself"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            token: Secret,
        }
        let shown = format!("{:?}", Holder { token: s });
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn values_are_trimmed_and_blank_is_no_value() {
        assert_eq!(trimmed("s3cret\n").as_deref(), Some("s3cret"));
        assert_eq!(trimmed(" \ts3cret \r\n").as_deref(), Some("s3cret"));
        assert_eq!(trimmed("s3 cret").as_deref(), Some("s3 cret"));
        assert_eq!(trimmed(" \n"), None);
    }

    #[test]
    fn a_parameter_name_wins_over_a_value() {
        let env = Env::from_pairs(&[("TOKEN_PARAM", " /baton/token "), ("TOKEN", "v")]);
        assert_eq!(
            SecretSource::of(&env, "TOKEN"),
            SecretSource::Ssm("/baton/token".into())
        );
        let env = Env::from_pairs(&[("TOKEN", "v"), ("TOKEN_PARAM", "  ")]);
        assert_eq!(
            SecretSource::of(&env, "TOKEN"),
            SecretSource::Env("TOKEN".into())
        );
        assert_eq!(
            SecretSource::of(&Env::from_pairs(&[]), "TOKEN"),
            SecretSource::Absent
        );
    }

    #[tokio::test]
    async fn a_missing_required_secret_names_both_ways_to_set_it() {
        let err = required(
            &Env::from_pairs(&[]),
            None,
            "SLACK_BOT_TOKEN",
            "the bot token",
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("SLACK_BOT_TOKEN_PARAM") && err.contains("the bot token"),
            "{err}"
        );
        let (secret, source) = required(
            &Env::from_pairs(&[("SLACK_BOT_TOKEN", "xoxb-1")]),
            None,
            "SLACK_BOT_TOKEN",
            "the bot token",
        )
        .await
        .unwrap();
        assert_eq!(secret.expose(), "xoxb-1");
        assert_eq!(source, SecretSource::Env("SLACK_BOT_TOKEN".into()));
    }
}
