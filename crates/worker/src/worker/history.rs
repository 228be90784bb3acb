//! `/command history component environment`: the target's last runs from
//! the history table, told privately.

use baton_chatops::render::{self, HISTORY_RUNS, RunView};
use baton_chatops::{CommandMessage, Target};
use baton_lock::history::HistoryEntry;
use baton_lock::{HistoryQuery, LockStore};
use tokio::time::Instant;
use tracing::warn;

use super::{Outcome, Worker};
use crate::ports::{Chat, Pipeline};

impl<S: LockStore, C: Chat, P: Pipeline> Worker<S, C, P> {
    pub(super) async fn show_history(
        &self,
        message: &CommandMessage,
        target: &Target,
        lock_key: &str,
        deadline: Instant,
    ) -> Outcome {
        let Some(history) = &self.history else {
            let reply = render::history_not_kept(&target.command);
            return self.reply(message, &reply, deadline).await;
        };
        let query = HistoryQuery {
            page_size: Some(HISTORY_RUNS as i32),
            ..HistoryQuery::default()
        };
        match history.for_key(lock_key, &query).await {
            Ok(page) => {
                let runs: Vec<RunView> = page.entries.iter().map(run_view).collect();
                let reply = render::history(target, &runs, self.now_secs());
                self.reply(message, &reply, deadline).await
            }
            Err(e) => {
                warn!(error = %e, lock_key, "history read failed");
                self.lock_failure(message, &message.trigger_id, e, deadline)
                    .await
            }
        }
    }
}

fn run_view(entry: &HistoryEntry) -> RunView {
    let ended_at = entry.ended_at_ms / 1000;
    RunView {
        holder_id: entry.locked_by.clone(),
        started_at: ended_at.saturating_sub(entry.duration_ms / 1000),
        ended_at,
        outcome: entry.outcome.as_str().to_owned(),
        ended_by: entry.ended_by.clone(),
        reason: entry.reason.clone(),
        run_url: entry.run_url.clone(),
    }
}
