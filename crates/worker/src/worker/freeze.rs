//! `freeze` and `unfreeze`: an admin's freeze is a record in the lock
//! table, which every run's acquire checks in the same request as its
//! grant; and what a run is told when a freeze refuses it or an admin
//! overrides one.

use std::time::Duration;

use baton_chatops::render;
use baton_chatops::{CommandConfig, CommandError, CommandMessage, Frozen, FrozenBy};
use baton_lock::{FreezeKey, FreezeRecord, FreezeRequest, LockError, LockStore};
use tokio::time::Instant;
use tracing::{info, warn};

use super::start::Run;
use super::{Outcome, Worker};
use crate::ports::{Chat, Pipeline};

/// The lock table's key for `environment`'s admin freeze of `config`'s
/// command.
pub(crate) fn freeze_key(
    config: &CommandConfig,
    environment: &str,
) -> Result<FreezeKey, LockError> {
    FreezeKey::new(&config.freeze_scope(environment))
}

/// An admin's freeze record as the chatops renderer sees it.
pub(crate) fn admin_frozen(environment: &str, record: &FreezeRecord) -> Frozen {
    Frozen {
        environment: environment.to_owned(),
        until_ms: record.until_ms,
        reason: record.reason.clone(),
        by: FrozenBy::Admin {
            user: record.by.clone(),
        },
    }
}

impl<S: LockStore, C: Chat, P: Pipeline> Worker<S, C, P> {
    /// `freeze <environment> <duration> <reason>`: records the freeze
    /// (replacing one there was) and tells the channel.
    pub(super) async fn freeze(
        &self,
        message: &CommandMessage,
        config: &CommandConfig,
        environment: &str,
        duration: Duration,
        reason: &str,
        deadline: Instant,
    ) -> Outcome {
        let request = match freeze_key(config, environment) {
            Ok(key) => FreezeRequest {
                key,
                by: message.user_id.clone(),
                by_name: message.user_name.clone(),
                reason: reason.to_owned(),
                duration,
            },
            Err(e) => {
                return self
                    .lock_failure(message, &message.trigger_id, e, deadline)
                    .await;
            }
        };
        match self.locks.freeze(&request).await {
            Ok(record) => {
                warn!(command = %config.name, environment, actor = %message.user_id, until_ms = record.until_ms, reason, "environment frozen");
                let reply = render::freeze_set(
                    &config.name,
                    environment,
                    &message.user_id,
                    record.until_ms,
                    reason,
                );
                self.reply(message, &reply, deadline).await
            }
            Err(e) => {
                self.lock_failure(message, &message.trigger_id, e, deadline)
                    .await
            }
        }
    }

    /// `unfreeze <environment>`: lifts the admin freeze and tells the
    /// channel; a scheduled freeze is in the config and stays.
    pub(super) async fn unfreeze(
        &self,
        message: &CommandMessage,
        config: &CommandConfig,
        environment: &str,
        deadline: Instant,
    ) -> Outcome {
        let lifted = match freeze_key(config, environment) {
            Ok(key) => self.locks.unfreeze(&key, &message.user_id).await,
            Err(e) => Err(e),
        };
        match lifted {
            Ok(Some(record)) => {
                warn!(command = %config.name, environment, actor = %message.user_id, frozen_by = %record.by, "freeze lifted");
                let lifted = admin_frozen(environment, &record);
                let reply =
                    render::freeze_lifted(&config.name, environment, &message.user_id, &lifted);
                self.reply(message, &reply, deadline).await
            }
            Ok(None) => {
                let scheduled = config.frozen_at(environment, self.locks.now_millis());
                let reply = render::nothing_frozen(&config.name, environment, scheduled.as_ref());
                self.reply(message, &reply, deadline).await
            }
            Err(e) => {
                self.lock_failure(message, &message.trigger_id, e, deadline)
                    .await
            }
        }
    }

    /// An admin freeze refused the run's acquire: the requester hears until
    /// when, why, by whom, and how an admin gets through.
    pub(super) async fn frozen(
        &self,
        run: &Run<'_>,
        record: &FreezeRecord,
        deadline: Instant,
    ) -> Outcome {
        info!(lock_key = %run.key, frozen_by = %record.by, until_ms = record.until_ms, "run refused: environment frozen");
        let err = CommandError::Frozen {
            command: run.config.name.clone(),
            component: run.target.component.clone(),
            frozen: Box::new(admin_frozen(&run.target.environment, record)),
            unlock_users: run.config.unlock_users.clone(),
        };
        self.reply(run.message, &render::error(&err), deadline)
            .await
    }

    /// The refusal of a run of `target` while an admin's freeze of its
    /// environment is in force (`None` when none is, or it cannot be read:
    /// a waiter's run is not held back by a failed read).
    pub(super) async fn admin_freeze_of(
        &self,
        config: &CommandConfig,
        target: &baton_chatops::Target,
    ) -> Option<CommandError> {
        let key = freeze_key(config, &target.environment).ok()?;
        let record = match self.locks.freeze_status(&key).await {
            Ok(record) => record?,
            Err(e) => {
                warn!(command = %config.name, environment = %target.environment, error = %e, "could not read the environment's freeze");
                return None;
            }
        };
        record
            .active_at(self.locks.now_millis())
            .then(|| CommandError::Frozen {
                command: config.name.clone(),
                component: target.component.clone(),
                frozen: Box::new(admin_frozen(&target.environment, &record)),
                unlock_users: config.unlock_users.clone(),
            })
    }

    /// The freeze an `--override-freeze` run went through, for its
    /// announcement: the admin freeze on record if one is in force, else
    /// the scheduled one, else none. Read after the grant, for the notice
    /// only (the grant itself skipped the check).
    pub(super) async fn overridden_freeze(&self, run: &Run<'_>) -> Option<Frozen> {
        let env = &run.target.environment;
        let now = self.locks.now_millis();
        let admin = match freeze_key(run.config, env) {
            Ok(key) => match self.locks.freeze_status(&key).await {
                Ok(record) => record
                    .filter(|r| r.active_at(now))
                    .map(|r| admin_frozen(env, &r)),
                Err(e) => {
                    warn!(lock_key = %run.key, error = %e, "could not read the freeze an override went through");
                    None
                }
            },
            Err(_) => None,
        };
        admin.or_else(|| run.config.frozen_at(env, now))
    }
}
