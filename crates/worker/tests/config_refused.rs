//! A command config that breaks a rule stops `baton-worker` before it
//! handles anything, and the message names the field: checked through the
//! binary, the way an operator meets it (`baton-worker --event`, or a cold
//! start that fails).

use baton_testkit::unique_name;

const BUILD: &str = r#"
[commands."/build"]
lock_ttl = "10m"
components = ["router"]
environments = ["plt"]
[commands."/build".pipeline]
repo = "acme/platform"
workflow = "build.yml"
ref = "main"
"#;

/// Runs `baton-worker --event` on an empty batch with `config` as its
/// command config; the exit code and stderr.
fn run_with(config: &str) -> (Option<i32>, String) {
    let dir = std::env::temp_dir();
    let config_path = dir.join(format!("{}.toml", unique_name("baton-config")));
    let event_path = dir.join(format!("{}.json", unique_name("baton-event")));
    std::fs::write(&config_path, config).expect("write the config");
    std::fs::write(&event_path, r#"{"Records": []}"#).expect("write the event");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_baton-worker"))
        .arg("--event")
        .arg(&event_path)
        .env_clear()
        .env("BATON_CONFIG", &config_path)
        .env("BATON_TABLE", "baton-locks")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "baton")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // Nothing listens here: a config error must stop the start first.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("SLACK_BOT_TOKEN", "xoxb-binary")
        .env("GITHUB_TOKEN", "ghp-binary")
        .output()
        .expect("run baton-worker");
    let _ = std::fs::remove_file(&config_path);
    let _ = std::fs::remove_file(&event_path);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_valid_config_starts() {
    let (code, stderr) = run_with(BUILD);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn two_commands_that_would_share_a_lock_key_stop_the_start() {
    let config = format!(
        "{}{}",
        BUILD.replace("\"router\"", "\"x-router\""),
        BUILD.replace("/build", "/build-x")
    );
    let (code, stderr) = run_with(&config);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(r#"commands."/build-x".components: `/build-x router plt` and `/build x-router plt` would take the same lock "build-x-router-plt""#),
        "{stderr}"
    );
}

#[test]
fn a_workflow_or_ref_that_could_leave_its_api_path_stops_the_start() {
    let (code, stderr) = run_with(&BUILD.replace("\"build.yml\"", "\"../../../user/repos\""));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            r#"commands."/build".pipeline.workflow: "../../../user/repos" is not a workflow"#
        ),
        "{stderr}"
    );
    let (code, stderr) = run_with(&BUILD.replace("ref = \"main\"", "ref = \"main?x=1\""));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(r#"commands."/build".pipeline.ref: "main?x=1" is not a git ref"#),
        "{stderr}"
    );
}
