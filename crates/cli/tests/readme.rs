//! The README's CI examples and the install script, run as written: the
//! GitHub Actions `run:` line and the Azure DevOps `inlineScript` execute in
//! bash with `baton` on PATH against DynamoDB Local, and
//! `scripts/install-baton.sh` runs with a stand-in `cargo` that records how
//! it was called (a real `cargo install` of the workspace takes too long for
//! a test; the stand-in proves the command and the cache reuse).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use baton_testkit::{TestTable, unique_name};

const BIN: &str = env!("CARGO_BIN_EXE_baton");
const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn readme() -> String {
    std::fs::read_to_string(Path::new(REPO).join("README.md")).expect("README.md")
}

fn scratch(prefix: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique_name(prefix));
    std::fs::create_dir_all(dir.join("scripts")).expect("scratch dir");
    dir
}

/// A deploy script that records the grant it ran under.
fn write_deploy_script(dir: &Path) {
    let script = dir.join("scripts/deploy.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"$BATON_LOCK_KEY $BATON_FENCE\" > deployed\n",
    )
    .expect("deploy.sh");
    let mut perms = std::fs::metadata(&script).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).expect("chmod");
}

/// bash -c SCRIPT in `dir`, with baton's directory first on PATH and
/// DynamoDB Local as the endpoint (what the credentials step provides).
fn bash(dir: &Path, script: &str, table: &TestTable) -> Output {
    let bin_dir = Path::new(BIN).parent().expect("bin dir");
    Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env_clear()
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("HOME", dir)
        .env("AWS_ENDPOINT_URL_DYNAMODB", &table.endpoint)
        .env("AWS_ACCESS_KEY_ID", "baton")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_REGION", "ca-central-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("BATON_TABLE", &table.name)
        .output()
        .expect("bash")
}

fn table() -> TestTable {
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(TestTable::create())
}

fn assert_deployed(dir: &Path, out: &Output) {
    assert!(out.status.success(), "{out:?}");
    let seen = std::fs::read_to_string(dir.join("deployed")).expect("deploy.sh ran");
    assert!(seen.starts_with("deploy-api-prod "), "{seen}");
}

#[test]
fn the_github_actions_example_runs_as_written() {
    let text = readme();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("run: baton run"))
        .expect("the README's GitHub Actions step");
    assert!(
        text.contains("env: { BATON_TABLE: baton-locks }"),
        "the step sets the table"
    );
    let script = line
        .trim_start()
        .trim_start_matches("run: ")
        .replace("${{ github.sha }}", "0123abc");
    let (dir, table) = (scratch("readme-gha"), table());
    write_deploy_script(&dir);
    let out = bash(&dir, &script, &table);
    assert_deployed(&dir, &out);
}

#[test]
fn the_azure_devops_example_runs_as_written() {
    let text = readme();
    let mut lines = text.lines().skip_while(|l| !l.contains("inlineScript: |"));
    let head = lines.next().expect("the README's inlineScript");
    let indent = head.len() - head.trim_start().len();
    let script: Vec<&str> = lines
        .take_while(|l| l.len() - l.trim_start().len() > indent && !l.trim().is_empty())
        .map(str::trim)
        .collect();
    assert!(
        script.iter().any(|l| l.starts_with("baton run")),
        "{script:?}"
    );
    let (dir, table) = (scratch("readme-azdo"), table());
    let script = script.join("\n").replace("baton-locks", &table.name);
    write_deploy_script(&dir);
    let out = bash(&dir, &script, &table);
    assert_deployed(&dir, &out);
}

/// Runs the install script with a stand-in `cargo` first on PATH that logs
/// its arguments and "installs" the test's baton binary into `--root`.
fn install(dir: &Path, envs: &[(&str, &str)]) -> Output {
    let fake = dir.join("fake-bin");
    std::fs::create_dir_all(&fake).expect("fake bin");
    let cargo = fake.join("cargo");
    std::fs::write(
        &cargo,
        format!(
            "#!/bin/bash\necho \"$*\" >> \"{log}\"\nwhile [ $# -gt 0 ]; do [ \"$1\" = --root ] && root=$2; shift; done\nmkdir -p \"$root/bin\" && cp \"{bin}\" \"$root/bin/baton\"\n",
            log = dir.join("cargo.log").display(),
            bin = BIN
        ),
    )
    .expect("fake cargo");
    let mut perms = std::fs::metadata(&cargo).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&cargo, perms).expect("chmod");
    let mut cmd = Command::new("bash");
    cmd.arg(Path::new(REPO).join("scripts/install-baton.sh"))
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", fake.display()))
        .env("HOME", dir)
        .env("BATON_INSTALL_ROOT", dir.join("root"))
        .env("GITHUB_PATH", dir.join("github_path"));
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("install script")
}

#[test]
fn the_install_script_builds_once_and_reuses_the_cached_binary() {
    let dir = scratch("install");
    let first = install(
        &dir,
        &[("BATON_INSTALL_FROM", "path"), ("BATON_VERSION", "v0.1.0")],
    );
    assert!(first.status.success(), "{first:?}");
    let log = std::fs::read_to_string(dir.join("cargo.log")).expect("cargo ran");
    let repo = std::fs::canonicalize(REPO).expect("repo");
    assert_eq!(
        log.trim(),
        format!(
            "install --locked --path {}/crates/cli --root {} --force",
            repo.display(),
            dir.join("root").display()
        )
    );
    let path_file = std::fs::read_to_string(dir.join("github_path")).expect("GITHUB_PATH");
    assert_eq!(path_file.trim(), dir.join("root/bin").display().to_string());
    assert!(
        String::from_utf8_lossy(&first.stdout).contains("baton 0.1.0"),
        "{first:?}"
    );

    // Same version: the cached binary is reused, cargo is not called again.
    let second = install(
        &dir,
        &[("BATON_INSTALL_FROM", "path"), ("BATON_VERSION", "v0.1.0")],
    );
    assert!(second.status.success(), "{second:?}");
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("reusing"),
        "{second:?}"
    );
    let log = std::fs::read_to_string(dir.join("cargo.log")).expect("log");
    assert_eq!(log.lines().count(), 1, "cargo ran again: {log}");

    // A new version builds again; Azure DevOps gets its PATH logging command.
    let third = install(
        &dir,
        &[
            ("BATON_INSTALL_FROM", "path"),
            ("BATON_VERSION", "v0.2.0"),
            ("TF_BUILD", "True"),
        ],
    );
    assert!(third.status.success(), "{third:?}");
    assert!(
        String::from_utf8_lossy(&third.stdout).contains(&format!(
            "##vso[task.prependpath]{}",
            dir.join("root/bin").display()
        )),
        "{third:?}"
    );
}

#[test]
fn the_install_script_builds_the_action_ref_from_git() {
    let dir = scratch("install-git");
    let out = install(
        &dir,
        &[
            ("BATON_VERSION", "v0.1.0"),
            ("BATON_REPO", "https://github.com/acme/baton"),
            ("BATON_INSTALL_DRY_RUN", "1"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("cargo install --locked --git https://github.com/acme/baton --tag v0.1.0")
            && printed.trim_end().ends_with("baton-cli"),
        "{printed}"
    );
}
