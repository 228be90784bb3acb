//! The command config both Lambdas share: the TOML file named by
//! `BATON_CONFIG`, or the built-in one when it is unset.

use anyhow::Context as _;
use baton_chatops::Config;

use crate::settings::Env;

/// The setting that names the command config file.
pub const CONFIG_ENV: &str = "BATON_CONFIG";

/// Reads and validates the command config; an unreadable or invalid file
/// fails the start with its path.
pub fn command_config(env: &Env) -> anyhow::Result<Config> {
    match env.var(CONFIG_ENV) {
        None => Ok(Config::builtin()),
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("{CONFIG_ENV}: cannot read the command config {path}"))?;
            Config::from_toml_str(&text)
                .with_context(|| format!("{CONFIG_ENV}: invalid command config {path}"))
        }
    }
}

/// Where the command config came from, for the start-up log line.
pub fn config_source(env: &Env) -> String {
    env.var(CONFIG_ENV).unwrap_or_else(|| "built-in".into())
}
