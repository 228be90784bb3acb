//! The router's secrets, loaded once per cold start, each from the SSM
//! parameter named by `<NAME>_PARAM` (how the Lambda is deployed) or else
//! from `<NAME>` itself (local runs); see [`baton_runtime::secret`].
//!
//! `SLACK_SIGNING_SECRET` is required; `SLACK_SIGNING_SECRET_PREVIOUS`, a
//! second signing secret accepted as well while one is rotated, is
//! optional. `GITHUB_WEBHOOK_SECRET` and
//! `AZURE_DEVOPS_HOOK_SECRET` are optional: without one, its route
//! (`/github/webhook`, `/azure-devops/hook`) answers 404, as if it did not
//! exist.

use baton_runtime::secret::required;
use baton_runtime::{Env, Secret, SecretSource};

/// Environment variable: the Slack signing secret itself.
pub const SLACK_ENV: &str = "SLACK_SIGNING_SECRET";
/// Environment variable: name of the SSM parameter holding it.
pub const SLACK_PARAM_ENV: &str = "SLACK_SIGNING_SECRET_PARAM";
/// Environment variable: a second Slack signing secret, accepted besides
/// [`SLACK_ENV`] so a rotation has no moment in which either is refused.
pub const SLACK_PREVIOUS_ENV: &str = "SLACK_SIGNING_SECRET_PREVIOUS";
/// Environment variable: name of the SSM parameter holding it.
pub const SLACK_PREVIOUS_PARAM_ENV: &str = "SLACK_SIGNING_SECRET_PREVIOUS_PARAM";
/// Environment variable: the GitHub webhook secret itself.
pub const GITHUB_ENV: &str = "GITHUB_WEBHOOK_SECRET";
/// Environment variable: name of the SSM parameter holding it.
pub const GITHUB_PARAM_ENV: &str = "GITHUB_WEBHOOK_SECRET_PARAM";
/// Environment variable: the Azure DevOps service hooks' shared secret.
pub const AZURE_ENV: &str = "AZURE_DEVOPS_HOOK_SECRET";
/// Environment variable: name of the SSM parameter holding it.
pub const AZURE_PARAM_ENV: &str = "AZURE_DEVOPS_HOOK_SECRET_PARAM";

/// The secrets the routes verify requests with.
#[derive(Debug, Clone)]
pub struct Secrets {
    /// Slack's signing secret (app settings → Basic Information).
    pub slack_signing: Secret,
    /// A second signing secret accepted as well during a rotation (the one
    /// being replaced, or the next one set ahead of the switch); `None`
    /// outside a rotation.
    pub slack_signing_previous: Option<Secret>,
    /// The secret configured on the GitHub webhook; `None` disables the route.
    pub github_webhook: Option<Secret>,
    /// The credential Azure DevOps service hooks send; `None` disables the
    /// route.
    pub azure_hook: Option<Secret>,
}

impl Secrets {
    /// Loads the secrets, reading SSM parameters concurrently; `ssm` is
    /// only called when a `*_PARAM` variable is set. The sources are, in
    /// order: the Slack signing secret, the previous one, the GitHub
    /// webhook secret and the Azure DevOps hook secret.
    pub async fn load(
        ssm: &aws_sdk_ssm::Client,
        env: &Env,
    ) -> anyhow::Result<(Secrets, [SecretSource; 4])> {
        let previous_source = SecretSource::of(env, SLACK_PREVIOUS_ENV);
        let github_source = SecretSource::of(env, GITHUB_ENV);
        let azure_source = SecretSource::of(env, AZURE_ENV);
        let (slack, previous, github, azure) = tokio::join!(
            required(env, Some(ssm), SLACK_ENV, "the Slack app's signing secret"),
            previous_source.fetch(env, Some(ssm)),
            github_source.fetch(env, Some(ssm)),
            azure_source.fetch(env, Some(ssm))
        );
        let (slack_signing, slack_source) = slack?;
        let secrets = Secrets {
            slack_signing,
            slack_signing_previous: previous?,
            github_webhook: github?,
            azure_hook: azure?,
        };
        Ok((
            secrets,
            [slack_source, previous_source, github_source, azure_source],
        ))
    }

    /// The signing secrets a Slack request may be signed with: the current
    /// one first, then the previous one when a rotation is under way.
    pub fn slack_signing_keys(&self) -> Vec<&[u8]> {
        std::iter::once(&self.slack_signing)
            .chain(self.slack_signing_previous.as_ref())
            .map(|s| s.expose().as_bytes())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offline_ssm() -> aws_sdk_ssm::Client {
        // Never called in these tests: no *_PARAM variable is set.
        let conf = aws_sdk_ssm::Config::builder()
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .build();
        aws_sdk_ssm::Client::from_conf(conf)
    }

    #[tokio::test]
    async fn env_values_are_used_for_local_runs() {
        let env = Env::from_pairs(&[
            (SLACK_ENV, "s3cret"),
            (SLACK_PREVIOUS_ENV, "old"),
            (GITHUB_ENV, "gh"),
            (AZURE_ENV, "az"),
        ]);
        let (s, src) = Secrets::load(&offline_ssm(), &env).await.unwrap();
        assert_eq!(s.slack_signing.expose(), "s3cret");
        assert_eq!(s.slack_signing_keys(), vec![&b"s3cret"[..], &b"old"[..]]);
        assert_eq!(s.github_webhook.unwrap().expose(), "gh");
        assert_eq!(s.azure_hook.unwrap().expose(), "az");
        assert_eq!(
            src,
            [
                SecretSource::Env(SLACK_ENV.into()),
                SecretSource::Env(SLACK_PREVIOUS_ENV.into()),
                SecretSource::Env(GITHUB_ENV.into()),
                SecretSource::Env(AZURE_ENV.into())
            ]
        );
    }

    #[tokio::test]
    async fn github_secret_is_optional_slack_is_not() {
        let env = Env::from_pairs(&[(SLACK_ENV, "s")]);
        let (s, src) = Secrets::load(&offline_ssm(), &env).await.unwrap();
        assert!(s.github_webhook.is_none() && s.azure_hook.is_none());
        assert!(s.slack_signing_previous.is_none());
        assert_eq!(s.slack_signing_keys(), vec![&b"s"[..]]);
        assert_eq!(
            src[1..],
            [
                SecretSource::Absent,
                SecretSource::Absent,
                SecretSource::Absent
            ]
        );

        let env = Env::from_pairs(&[(GITHUB_ENV, "gh"), (SLACK_ENV, "  ")]);
        let err = Secrets::load(&offline_ssm(), &env).await.unwrap_err();
        assert!(err.to_string().contains(SLACK_PARAM_ENV), "{err}");
    }
}
