//! `/command component environment --force REASON`: an admin takes the
//! lock over from its holder in one write, the holder's run is cancelled
//! (unless `--keep-run`), and the admin's run starts under the new grant.

use baton_chatops::Force;
use baton_chatops::render::{self, RunStop};
use baton_lock::{GrantKind, LockError, LockStore};
use tokio::time::Instant;
use tracing::{info, warn};

use super::start::Run;
use super::{Outcome, Worker, view};
use crate::ports::{Chat, Pipeline};

impl<S: LockStore, C: Chat, P: Pipeline> Worker<S, C, P> {
    /// Takes the run's lock over from whoever holds it. A free key is just
    /// taken; a redelivery finds the grant its first delivery made (by
    /// request id) and never takes over twice.
    pub(super) async fn take_over(
        &self,
        run: &Run<'_>,
        force: &Force,
        deadline: Instant,
    ) -> Outcome {
        let request = self.acquire_request(run);
        let holder = match self.locks.acquire(&request).await {
            Ok(grant) if grant.kind == GrantKind::Existing => {
                return self.redelivered(run, grant, deadline).await;
            }
            Ok(grant) => return self.dispatch(run, &grant, deadline).await,
            Err(LockError::Held { holder }) => *holder,
            // Ended, lapsed or superseded requests are answered as any run's.
            Err(_) => return self.start(run, deadline).await,
        };
        let admin = &run.message.user_id;
        let reason = format!("taken over by <@{admin}>: {}", force.reason);
        match self
            .locks
            .take_over(&request, &holder.lock_id, admin, &reason)
            .await
        {
            Ok(ended) => {
                warn!(lock_key = %run.key, actor = %admin, holder = %holder.locked_by, fence = holder.fence, reason = %force.reason, "lock taken over");
                let stop = if force.keep_run {
                    RunStop::Kept
                } else {
                    self.stop_run(run.config, &ended.record).await
                };
                let notice = render::taken_over(&run.key, admin, &force.reason, &view(&holder))
                    .with_run_stop(&stop);
                if let Outcome::Retry(why) = self
                    .post(
                        notice.with_channel(&run.message.channel_id),
                        &run.key,
                        deadline,
                    )
                    .await
                {
                    warn!(lock_key = %run.key, reason = %why, "the channel was not told of the takeover");
                }
                match ended.next {
                    Some(grant) => self.dispatch(run, &grant, deadline).await,
                    None => Outcome::Done,
                }
            }
            Err(LockError::NotHeld {
                current: Some(current),
                ..
            }) => {
                info!(lock_key = %run.key, "takeover refused: the grant changed hands meanwhile");
                let reply = render::takeover_changed(&run.key, &view(&current));
                self.reply(run.message, &reply, deadline).await
            }
            Err(e) => self.lock_failure(run.message, run.id, e, deadline).await,
        }
    }
}
