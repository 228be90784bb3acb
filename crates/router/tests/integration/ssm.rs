//! Secrets from SSM Parameter Store (moto's SSM on the same local server).

use baton_router::Secrets;
use baton_router::secrets::{
    AZURE_PARAM_ENV, GITHUB_ENV, GITHUB_PARAM_ENV, SLACK_ENV, SLACK_PARAM_ENV,
};
use baton_runtime::{Env, SecretSource};

use crate::common::*;

#[tokio::test]
async fn secrets_load_from_secure_string_parameters_before_env_values() {
    let ssm = ssm_client(&sqs_endpoint());
    let prefix = format!("/baton-test/{}", uuid::Uuid::new_v4().simple());
    let slack_param = format!("{prefix}/slack/signing-secret");
    let azure_param = format!("{prefix}/azure-devops/hook-secret");
    for (name, value) in [
        (&slack_param, "from-ssm-slack"),
        (&azure_param, "from-ssm-azure"),
    ] {
        ssm.put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .expect("PutParameter on the local server");
    }
    let env = Env::from_pairs(&[
        (SLACK_PARAM_ENV, &slack_param),
        // The parameter wins over a direct value.
        (SLACK_ENV, "from-env"),
        (GITHUB_ENV, "gh-from-env"),
        (AZURE_PARAM_ENV, &azure_param),
    ]);
    let (secrets, sources) = Secrets::load(&ssm, &env).await.expect("secrets load");
    assert_eq!(secrets.slack_signing.expose(), "from-ssm-slack");
    assert_eq!(secrets.github_webhook.unwrap().expose(), "gh-from-env");
    assert_eq!(secrets.azure_hook.unwrap().expose(), "from-ssm-azure");
    assert_eq!(
        sources,
        [
            SecretSource::Ssm(slack_param),
            SecretSource::Absent,
            SecretSource::Env(GITHUB_ENV.into()),
            SecretSource::Ssm(azure_param)
        ]
    );
}

#[tokio::test]
async fn a_missing_parameter_fails_the_cold_start_naming_it() {
    let ssm = ssm_client(&sqs_endpoint());
    let missing = format!("/baton-test/{}/absent", uuid::Uuid::new_v4().simple());
    let env = Env::from_pairs(&[(SLACK_ENV, "s"), (GITHUB_PARAM_ENV, &missing)]);
    let err = Secrets::load(&ssm, &env)
        .await
        .expect_err("missing parameter");
    let text = format!("{err:#}");
    assert!(text.contains(&missing), "{text}");
}
