//! Who is calling, according to AWS: the STS ARN behind the credentials
//! (`sts:GetCallerIdentity`, which needs no IAM grant), asked once per
//! process by the commands that make a grant or force-unlock one, and
//! recorded beside the owner and actor the caller declares for itself.
//! Against DynamoDB Local there is no AWS to ask, so it is skipped there.

use aws_config::SdkConfig;
use aws_sdk_sts::error::DisplayErrorContext;

use crate::failure::{ERROR, Failure};
use crate::identity::Env;

/// `auto` (the default), `ask` or `skip`.
pub const CALLER_IDENTITY_ENV: &str = "BATON_CALLER_IDENTITY";

/// Whether this process asks STS who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Ask,
    Skip,
}

/// Decides from the environment. `skip` never asks and `ask` always does;
/// `auto` asks when DynamoDB is AWS's, i.e. unless an endpoint override
/// (`AWS_ENDPOINT_URL_DYNAMODB` or `AWS_ENDPOINT_URL`, as for DynamoDB
/// Local) points elsewhere, or when an STS endpoint is set explicitly
/// (`AWS_ENDPOINT_URL_STS`). Anything else is a usage error: a typo must
/// not silently turn the record off.
pub fn lookup(env: &impl Env) -> Result<Lookup, Failure> {
    let setting = env.get(CALLER_IDENTITY_ENV);
    match setting.as_deref().map(str::trim) {
        None | Some("auto") => {
            let local_dynamodb = env.get("AWS_ENDPOINT_URL_DYNAMODB").is_some()
                || env.get("AWS_ENDPOINT_URL").is_some();
            let sts_set = env.get("AWS_ENDPOINT_URL_STS").is_some();
            Ok(if local_dynamodb && !sts_set {
                Lookup::Skip
            } else {
                Lookup::Ask
            })
        }
        Some("ask") => Ok(Lookup::Ask),
        Some("skip") => Ok(Lookup::Skip),
        Some(other) => Err(Failure::usage(format!(
            "{CALLER_IDENTITY_ENV} is `{other}`; it takes auto, ask or skip"
        ))),
    }
}

/// The caller's ARN, or `None` when `lookup` says not to ask. A failed
/// lookup stops the command (exit 1) before it writes anything: a grant
/// recorded without the identity it should carry is worse than none.
pub async fn resolve(config: &SdkConfig, lookup: Lookup) -> Result<Option<String>, Failure> {
    if lookup == Lookup::Skip {
        return Ok(None);
    }
    let failed = |detail: String| {
        Failure::new(
            ERROR,
            "caller_identity",
            format!(
                "cannot tell who is calling (sts:GetCallerIdentity): {detail}; \
                 set {CALLER_IDENTITY_ENV}=skip to go without"
            ),
        )
    };
    let out = aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| failed(DisplayErrorContext(&e).to_string()))?;
    match out.arn() {
        Some(arn) if !arn.trim().is_empty() => Ok(Some(arn.to_owned())),
        _ => Err(failed("the answer named no ARN".into())),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn asks_aws_and_skips_dynamodb_local() {
        let aws = HashMap::from([("AWS_REGION", "ca-central-1")]);
        assert_eq!(lookup(&aws).unwrap(), Lookup::Ask);
        let local = HashMap::from([("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000")]);
        assert_eq!(lookup(&local).unwrap(), Lookup::Skip);
        let all_local = HashMap::from([("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")]);
        assert_eq!(lookup(&all_local).unwrap(), Lookup::Skip);
        let sts_too = HashMap::from([
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000"),
            ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9000"),
        ]);
        assert_eq!(lookup(&sts_too).unwrap(), Lookup::Ask);
    }

    #[test]
    fn the_setting_overrides_and_a_typo_is_refused() {
        let skip = HashMap::from([(CALLER_IDENTITY_ENV, "skip")]);
        assert_eq!(lookup(&skip).unwrap(), Lookup::Skip);
        let ask = HashMap::from([
            (CALLER_IDENTITY_ENV, "ask"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000"),
        ]);
        assert_eq!(lookup(&ask).unwrap(), Lookup::Ask);
        let typo = HashMap::from([(CALLER_IDENTITY_ENV, "off")]);
        let err = lookup(&typo).unwrap_err();
        assert_eq!(err.code, crate::failure::USAGE);
        assert!(err.message.contains("auto, ask or skip"), "{}", err.message);
    }
}
