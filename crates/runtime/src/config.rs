//! The command config both Lambdas share: the TOML file named by
//! `BATON_CONFIG`, or the built-in one when it is unset.

use anyhow::Context as _;
use baton_chatops::Config;

use crate::settings::Env;

/// The setting that names the command config file.
pub const CONFIG_ENV: &str = "BATON_CONFIG";

/// The setting that names the Slack workspaces a deployment serves
/// (comma-separated `T…`/`E…` ids). Terraform sets it on both functions
/// from one required variable, so a deployment is never open to every
/// workspace the app is installed in by omission.
pub const ALLOWED_TEAMS_ENV: &str = "BATON_ALLOWED_TEAMS";

/// Reads and validates the command config, restricted to the deployment's
/// workspaces when `BATON_ALLOWED_TEAMS` is set; an unreadable or invalid
/// file, or a list that disagrees with the file's, fails the start.
pub fn command_config(env: &Env) -> anyhow::Result<Config> {
    let config = match env.var(CONFIG_ENV) {
        None => Config::builtin(),
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("{CONFIG_ENV}: cannot read the command config {path}"))?;
            Config::from_toml_str(&text)
                .with_context(|| format!("{CONFIG_ENV}: invalid command config {path}"))?
        }
    };
    match env.var(ALLOWED_TEAMS_ENV) {
        None => Ok(config),
        Some(list) => {
            let teams: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect();
            config
                .restricted_to_teams(&teams)
                .with_context(|| format!("{ALLOWED_TEAMS_ENV}: cannot serve {list:?}"))
        }
    }
}

/// Where the command config came from, for the start-up log line.
pub fn config_source(env: &Env) -> String {
    env.var(CONFIG_ENV).unwrap_or_else(|| "built-in".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn teams(env: &[(&str, &str)]) -> anyhow::Result<Vec<String>> {
        command_config(&Env::from_pairs(env)).map(|c| c.allowed_teams().to_vec())
    }

    #[test]
    fn the_deployments_workspaces_restrict_every_command() {
        assert_eq!(
            teams(&[]).unwrap(),
            Vec::<String>::new(),
            "the built-in config alone"
        );
        assert_eq!(
            teams(&[(ALLOWED_TEAMS_ENV, "T0ACME, E0GRID")]).unwrap(),
            vec!["E0GRID".to_owned(), "T0ACME".to_owned()]
        );
        let config = command_config(&Env::from_pairs(&[(ALLOWED_TEAMS_ENV, "T0ACME")])).unwrap();
        assert!(config.team_allowed("T0ACME", None));
        assert!(!config.team_allowed("T0EVIL", None));
    }

    #[test]
    fn a_bad_or_empty_list_stops_the_start_naming_the_setting() {
        for bad in ["acme", " , ", "T0ACME,U0USER"] {
            let err = teams(&[(ALLOWED_TEAMS_ENV, bad)]).unwrap_err();
            assert!(
                format!("{err:#}").contains(ALLOWED_TEAMS_ENV),
                "{bad}: {err:#}"
            );
        }
    }

    #[test]
    fn a_config_listing_other_workspaces_than_the_deployment_is_refused() {
        let dir = std::env::temp_dir().join(format!("baton-teams-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        let text = format!("allowed_teams = [\"T0ACME\"]\n\n{}", Config::BUILTIN_TOML);
        std::fs::write(&path, text).unwrap();
        let file = path.to_str().unwrap();
        let err = teams(&[(CONFIG_ENV, file), (ALLOWED_TEAMS_ENV, "T0OTHER")]).unwrap_err();
        assert!(
            format!("{err:#}").contains("list the same workspaces"),
            "{err:#}"
        );
        assert_eq!(
            teams(&[(CONFIG_ENV, file), (ALLOWED_TEAMS_ENV, "T0ACME")]).unwrap(),
            vec!["T0ACME".to_owned()]
        );
    }
}
