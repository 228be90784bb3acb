//! Slack user groups named in the config (`S…` ids in `allowed_users` and
//! `unlock_users`): their members are looked up through the chat port and
//! kept per cold start for [`GROUP_TTL`], so a busy worker asks Slack about
//! each group about once a minute and a change in a group takes effect
//! within a minute.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use baton_chatops::{CommandError, CommandMessage, Membership, Request, decide};
use baton_lock::LockStore;
use tokio::time::Instant;

use super::Worker;
use crate::ports::{Chat, Pipeline};
use crate::slack::SlackError;

/// How long a group's members are trusted before Slack is asked again.
pub(crate) const GROUP_TTL: Duration = Duration::from_secs(60);

/// Members of the groups looked up so far, with when they were read.
#[derive(Debug, Default)]
pub(crate) struct GroupCache(Mutex<HashMap<String, (Instant, Vec<String>)>>);

impl GroupCache {
    fn fresh(&self, group: &str) -> Option<Vec<String>> {
        let cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(group)
            .filter(|(read, _)| read.elapsed() < GROUP_TTL)
            .map(|(_, members)| members.clone())
    }

    fn keep(&self, group: &str, members: Vec<String>) {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        cache.insert(group.to_owned(), (Instant::now(), members));
    }
}

impl<S: LockStore, C: Chat, P: Pipeline> Worker<S, C, P> {
    /// Decides `message` with the user's groups known: the final decision
    /// for a command whose config lists groups (the router could not look
    /// them up). A command listing none needs no lookup. `Err` when Slack
    /// could not say who is in a group.
    pub(crate) async fn decide_with_groups(
        &self,
        message: &CommandMessage,
        provisional: &Request,
        deadline: Instant,
    ) -> Result<Result<Request, CommandError>, SlackError> {
        let config = &self.settings.config;
        let groups = config
            .command(provisional.command())
            .map(|c| c.groups())
            .unwrap_or_default();
        if groups.is_empty() {
            return Ok(Ok(provisional.clone()));
        }
        let mut member_of = BTreeSet::new();
        for group in groups {
            let members = match self.groups.fresh(&group) {
                Some(members) => members,
                None => {
                    let members = self.chat.usergroup_members(&group, deadline).await?;
                    self.groups.keep(&group, members.clone());
                    members
                }
            };
            if members.contains(&message.user_id) {
                member_of.insert(group);
            }
        }
        Ok(decide(
            config,
            message,
            &Membership::Known(member_of),
            self.locks.now_millis(),
        ))
    }
}
