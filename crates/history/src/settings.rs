//! The consumer's settings, read once at start-up.

use std::time::Duration;

use baton_runtime::Env;

/// Where the history goes and how long it stays.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The lock table whose stream is read (`BATON_TABLE`).
    pub lock_table: String,
    /// `BATON_HISTORY_TABLE`, by default the lock table's name + `-history`.
    pub history_table: String,
    /// `BATON_HISTORY_RETENTION` (e.g. `90d`): DynamoDB TTL after the end.
    pub retention: Duration,
}

impl Settings {
    /// Reads the settings, naming any that is missing or malformed.
    pub fn from_env(env: &Env) -> anyhow::Result<Self> {
        let lock_table = env.required("BATON_TABLE", "the name of the DynamoDB lock table")?;
        let history_table = env
            .var("BATON_HISTORY_TABLE")
            .unwrap_or_else(|| baton_lock::schema::history::table_for(&lock_table));
        Ok(Settings {
            retention: env.duration("BATON_HISTORY_RETENTION", baton_lock::DEFAULT_RETENTION)?,
            lock_table,
            history_table,
        })
    }
}
