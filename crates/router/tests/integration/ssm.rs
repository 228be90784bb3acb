//! Secrets from SSM Parameter Store (moto's SSM on the same local server).

use baton_router::Secrets;
use baton_router::secrets::{GITHUB_ENV, GITHUB_PARAM_ENV, SLACK_ENV, SLACK_PARAM_ENV, Source};

use crate::common::*;

#[tokio::test]
async fn secrets_load_from_secure_string_parameters_before_env_values() {
    let ssm = ssm_client(&sqs_endpoint());
    let prefix = format!("/baton-test/{}", uuid::Uuid::new_v4().simple());
    let slack_param = format!("{prefix}/slack/signing-secret");
    for (name, value) in [(&slack_param, "from-ssm-slack")] {
        ssm.put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .expect("PutParameter on the local server");
    }
    let env = {
        let slack_param = slack_param.clone();
        move |k: &str| match k {
            k if k == SLACK_PARAM_ENV => Some(slack_param.clone()),
            // The parameter wins over a direct value.
            k if k == SLACK_ENV => Some("from-env".to_string()),
            k if k == GITHUB_ENV => Some("gh-from-env".to_string()),
            _ => None,
        }
    };
    let (secrets, sources) = Secrets::load(&ssm, env).await.expect("secrets load");
    assert_eq!(secrets.slack_signing.expose(), b"from-ssm-slack");
    assert_eq!(secrets.github_webhook.unwrap().expose(), b"gh-from-env");
    assert_eq!(sources, [Source::Ssm(slack_param), Source::Env(GITHUB_ENV)]);
}

#[tokio::test]
async fn a_missing_parameter_fails_the_cold_start_naming_it() {
    let ssm = ssm_client(&sqs_endpoint());
    let missing = format!("/baton-test/{}/absent", uuid::Uuid::new_v4().simple());
    let env = {
        let missing = missing.clone();
        move |k: &str| match k {
            k if k == SLACK_ENV => Some("s".to_string()),
            k if k == GITHUB_PARAM_ENV => Some(missing.clone()),
            _ => None,
        }
    };
    let err = Secrets::load(&ssm, env)
        .await
        .expect_err("missing parameter");
    let text = format!("{err:#}");
    assert!(text.contains(&missing), "{text}");
}
