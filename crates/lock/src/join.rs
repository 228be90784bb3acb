//! Joining and leaving a key's waiting line on DynamoDB, and handing a
//! lapsed grant to the line's head.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;

use crate::acquire::takeover_before_ms;
use crate::client::{LockClient, validate_key};
use crate::clock::now_epoch_millis;
use crate::error::LockError;
use crate::expr::Expr;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::handoff::{
    Ended, Ending, LINE_ATTEMPTS, LineWrite, bump_line_version, line_retry_pause, set_line,
};
use crate::line::{JoinPlan, JoinRequest, Joined, Left, LineMode, Place, Waiter, validate_join};
use crate::record::{LockRecord, LockStatus};
use crate::schema::attr;

impl LockClient {
    /// Takes `request.acquire.key` if it is free, or joins its waiting line:
    /// the acquire (one request) returns the holder and the line when it is
    /// refused, and one more conditional write adds the waiter to exactly
    /// that line. A member already waiting is told its place and nothing is
    /// written; a full line is [`LockError::LineFull`].
    pub async fn join(&self, request: &JoinRequest) -> Result<Joined, LockError> {
        validate_join(request)?;
        match self.acquire(&request.acquire).await {
            Ok(grant) => Ok(Joined::Granted(grant)),
            Err(LockError::Held { holder }) => self.enqueue(request, *holder).await,
            Err(err) => Err(err),
        }
    }

    /// The second half of [`LockClient::join`], for a caller whose own
    /// acquire found the key held: joins the line of `seen` (the holder
    /// record that acquire returned), one conditional write.
    pub async fn enqueue(
        &self,
        request: &JoinRequest,
        seen: LockRecord,
    ) -> Result<Joined, LockError> {
        validate_join(request)?;
        let key = &request.acquire.key;
        let mut seen = seen;
        // One waiter (one ticket) across attempts: a write whose answer was
        // lost is recognised by it.
        let waiter = Waiter::new(request, now_epoch_millis());
        for attempt in 0..LINE_ATTEMPTS {
            line_retry_pause(attempt).await;
            let (line, position, superseded) =
                match JoinPlan::decide(&seen, waiter.clone(), request.mode) {
                    JoinPlan::Already(w, position) => {
                        return Ok(Joined::Waiting(Box::new(Place {
                            waiter: *w,
                            position,
                            record: seen,
                            already_waiting: true,
                            superseded: Vec::new(),
                        })));
                    }
                    JoinPlan::Full => {
                        return Err(LockError::LineFull {
                            key: key.clone(),
                            holder: Box::new(seen),
                        });
                    }
                    JoinPlan::Write {
                        line,
                        position,
                        superseded,
                    } => (line, position, superseded),
                };
            let written = match request.mode {
                LineMode::Fifo { max } => self.append_waiter(key, &waiter, max).await?,
                LineMode::Latest => self.write_line(&seen, &line).await?,
            };
            match written {
                Ok(record) => {
                    let position = record.position_of(&waiter.ticket).unwrap_or(position);
                    return Ok(Joined::Waiting(Box::new(Place {
                        waiter,
                        position,
                        record,
                        already_waiting: false,
                        superseded,
                    })));
                }
                Err(Some(current)) if !current.waiters.is_empty() => seen = current,
                // The key was freed, or its line emptied, since the acquire:
                // try to take it again.
                Err(_) => match self.acquire(&request.acquire).await {
                    Ok(grant) => return Ok(Joined::Granted(grant)),
                    Err(LockError::Held { holder }) => seen = *holder,
                    Err(err) => return Err(err),
                },
            }
        }
        Err(LockError::LineBusy { key: key.clone() })
    }

    /// Takes the waiter with ticket or member `who` out of `key`'s line:
    /// a strongly consistent read finds its place (DynamoDB cannot remove a
    /// list element by value), one conditional write removes it.
    pub async fn leave(&self, key: &str, who: &str) -> Result<Left, LockError> {
        validate_key(key)?;
        let mut current = self.status(key).await?;
        for attempt in 0..LINE_ATTEMPTS {
            line_retry_pause(attempt).await;
            let Some(seen) = current else {
                return Err(LockError::NotWaiting {
                    key: key.to_owned(),
                    who: who.to_owned(),
                });
            };
            let Some(position) = seen.position_of(who) else {
                return Err(LockError::NotWaiting {
                    key: key.to_owned(),
                    who: who.to_owned(),
                });
            };
            let mut line = seen.waiters.clone();
            let waiter = line.remove(position - 1);
            match self.write_line(&seen, &line).await? {
                Ok(record) => return Ok(Left { waiter, record }),
                Err(now) => current = now,
            }
        }
        Err(LockError::LineBusy {
            key: key.to_owned(),
        })
    }

    /// Hands the key of `seen` (its record as the caller just read or
    /// listed it), whose grant lapsed without release, to the head of its
    /// line, dropping overdue waiters: what a waiting head (or a reconciler
    /// acting for one) does when the holder died. The write applies only to
    /// the grant and head seen, so a stale view costs a refused write, not
    /// a wrong hand-off, and no read is spent before it. `Ok(None)` when
    /// there is nothing to hand: the grant is live or ended, or no one
    /// waits.
    pub async fn end_lapsed(&self, seen: &LockRecord) -> Result<Option<Ended>, LockError> {
        let key = &seen.lock_key;
        validate_key(key)?;
        let mut current = Some(seen.clone());
        for attempt in 0..LINE_ATTEMPTS {
            line_retry_pause(attempt).await;
            let Some(seen) = current.filter(|r| self.lapsed_with_line(r)) else {
                return Ok(None);
            };
            match self.end_with_line(&seen, &Ending::Lapsed).await? {
                LineWrite::Done(ended) => return Ok(Some(*ended)),
                LineWrite::Changed(now) => current = now,
            }
        }
        Err(LockError::LineBusy {
            key: key.to_owned(),
        })
    }

    fn lapsed_with_line(&self, r: &LockRecord) -> bool {
        r.status == LockStatus::InProgress
            && !r.waiters.is_empty()
            && r.expires_at_ms <= takeover_before_ms(now_epoch_millis(), &self.options)
    }

    /// Appends `waiter` to `key`'s line while the key is held, the line is
    /// shorter than `max` and the waiter (by request id or member) is not
    /// in it yet: all decided by the write's own condition, so joins never
    /// collide with each other. `Err(current)` when the condition failed.
    async fn append_waiter(
        &self,
        key: &str,
        waiter: &Waiter,
        max: usize,
    ) -> Result<Result<LockRecord, Option<LockRecord>>, LockError> {
        let mut e = Expr::default();
        let waiters = e.name(attr::WAITERS);
        let empty = e.value("emptyLine", AttributeValue::L(Vec::new()));
        let new = e.value("newWaiter", AttributeValue::L(vec![waiter.to_attribute()]));
        e.set_raw(format!(
            "{waiters} = list_append(if_not_exists({waiters}, {empty}), {new})"
        ));
        bump_line_version(&mut e);
        let members = e.name(attr::LINE_MEMBERS);
        let keys = waiter.member_keys();
        let joining = e.value("joining", AttributeValue::Ss(keys.clone()));
        e.add_raw(format!("{members} {joining}"));
        let (status, in_progress) = (
            e.name(attr::STATUS),
            e.string("inProgress", LockStatus::InProgress.as_str()),
        );
        let max = e.number("maxLine", u64::try_from(max).unwrap_or(u64::MAX));
        let mut condition = format!(
            "{status} = {in_progress} AND (attribute_not_exists({waiters}) OR size({waiters}) < {max})"
        );
        for (i, k) in keys.iter().enumerate() {
            let k = e.string(&format!("member{i}"), k);
            condition.push_str(&format!(" AND NOT contains({members}, {k})"));
        }
        self.line_update(key, e, condition).await
    }

    /// Replaces `seen`'s line with `line` if the grant and the line are
    /// still as seen. `Err(current)` when they changed.
    async fn write_line(
        &self,
        seen: &LockRecord,
        line: &[Waiter],
    ) -> Result<Result<LockRecord, Option<LockRecord>>, LockError> {
        let mut e = Expr::default();
        set_line(&mut e, line);
        bump_line_version(&mut e);
        let version = e.name(attr::LINE_VERSION);
        let (id, id_value) = (e.name(attr::LOCK_ID), e.string("seenLockId", &seen.lock_id));
        let (status, in_progress) = (
            e.name(attr::STATUS),
            e.string("inProgress", LockStatus::InProgress.as_str()),
        );
        let line_seen = if seen.line_version == 0 {
            format!("attribute_not_exists({version})")
        } else {
            let v = e.number("lineVersion", seen.line_version);
            format!("{version} = {v}")
        };
        let condition = format!("{id} = {id_value} AND {status} = {in_progress} AND {line_seen}");
        self.line_update(&seen.lock_key, e, condition).await
    }

    /// One conditional write of the line: the record after it, or
    /// `Err(current)` when its condition failed.
    async fn line_update(
        &self,
        key: &str,
        e: Expr,
        condition: String,
    ) -> Result<Result<LockRecord, Option<LockRecord>>, LockError> {
        match self.conditional_update(key, e, condition).await {
            Ok(out) => LockRecord::from_optional_item(out.attributes())?
                .map(Ok)
                .ok_or_else(|| LockError::Corrupt {
                    key: key.to_owned(),
                    detail: "update returned no attributes".into(),
                }),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(ccf)) => {
                    Ok(Err(LockRecord::from_optional_item(ccf.item())?))
                }
                _ => Err(LockError::from_sdk("UpdateItem", &self.table, err)),
            },
        }
    }
}
