//! Names shared by the code, the `table create` helper and the terraform in
//! `infra/`. They are the contract with existing dashboards (the original bot used
//! `lockKey`, `lockedBy`, … ) and are checked against the HCL by
//! `tests/infra`, so change them in both places or not at all.

/// Partition key of the lock table: one item per lock key.
pub const TABLE_PARTITION_KEY: &str = "lockKey";
/// DynamoDB TTL attribute. Used only for garbage collection, never for validity.
pub const TTL_ATTRIBUTE: &str = "ttl";
/// Sparse global secondary index holding only `IN_PROGRESS` items, so `list`
/// never scans the table.
pub const ACTIVE_INDEX_NAME: &str = "active-locks";
/// Partition key of [`ACTIVE_INDEX_NAME`]; present only while a lock is held.
pub const ACTIVE_INDEX_PARTITION_KEY: &str = "activeLock";
/// The single value [`ACTIVE_INDEX_PARTITION_KEY`] takes on held items.
pub const ACTIVE_INDEX_PARTITION_VALUE: &str = "IN_PROGRESS";
/// The attribute only a force unlock (or an operator's takeover) writes: the
/// lock id of the grant it ended. IAM sees the attribute names a request
/// uses, never their values, so a role denied every `UpdateItem` that names
/// this attribute can do everything the CLI does except end someone else's
/// grant (`infra/modules/ci-role`). No other write may name it, not even to
/// remove it: a grant is forced when this equals its own lock id, so a
/// later grant needs no clean-up to look unforced.
pub const FORCE_UNLOCK_ATTRIBUTE: &str = "forcedLockId";

/// Attribute names of a lock record, kept in one place so an expression can
/// never drift from the parser.
pub mod attr {
    pub const LOCK_KEY: &str = super::TABLE_PARTITION_KEY;
    pub const LOCK_ID: &str = "lockId";
    pub const REQUEST_ID: &str = "requestId";
    pub const FENCE: &str = "fence";
    pub const STATUS: &str = "status";
    pub const LOCKED_BY: &str = "lockedBy";
    pub const LOCKED_BY_NAME: &str = "lockedByName";
    pub const LOCKED_AT: &str = "lockedAt";
    pub const EXPIRES_AT: &str = "expiresAt";
    /// The lease end in epoch milliseconds: what validity is decided by
    /// (`expiresAt` is the same, rounded up to a second, for readers).
    pub const EXPIRES_AT_MS: &str = "expiresAtMs";
    pub const TTL: &str = super::TTL_ATTRIBUTE;
    pub const COMPONENT: &str = "component";
    pub const ENVIRONMENT: &str = "environment";
    pub const CORRELATION_ID: &str = "correlationId";
    pub const PURPOSE: &str = "purpose";
    pub const HOST: &str = "host";
    pub const PID: &str = "pid";
    pub const RUN_URL: &str = "runUrl";
    /// The pipeline a grant was made for (`owner/name`); present only on
    /// grants that dispatch a pipeline run, never on CLI grants.
    pub const RUN_REPOSITORY: &str = "runRepository";
    /// The workflow file of that pipeline, e.g. `deploy.yml`.
    pub const RUN_WORKFLOW: &str = "runWorkflow";
    /// The id of the pipeline run working under the grant, once known.
    pub const RUN_ID: &str = "runId";
    pub const ENDED_AT: &str = "endedAt";
    pub const RELEASED_BY: &str = "releasedBy";
    pub const RELEASE_REASON: &str = "releaseReason";
    /// Written `true` by force unlocks before [`FORCED_LOCK_ID`] existed;
    /// still read on such records, and removed by every new grant.
    pub const FORCED: &str = "forced";
    /// See [`super::FORCE_UNLOCK_ATTRIBUTE`].
    pub const FORCED_LOCK_ID: &str = super::FORCE_UNLOCK_ATTRIBUTE;
    /// Who made the force unlock of `forcedLockId` as AWS authenticated
    /// them (an STS ARN), when known; written only with `forcedLockId`.
    pub const FORCED_BY_ARN: &str = "forcedByArn";
    /// Who made the grant as AWS authenticated them (an STS ARN), beside
    /// the self-declared `lockedBy`; CLI grants only.
    pub const CALLER_ARN: &str = "callerArn";
    pub const ACTIVE: &str = super::ACTIVE_INDEX_PARTITION_KEY;
    pub const PREV_LOCK_ID: &str = "prevLockId";
    pub const PREV_REQUEST_ID: &str = "prevRequestId";
    /// Request ids of the grants before the current one, newest first: a
    /// shift register moved along by every grant, so a late duplicate of any
    /// of a key's last eight requests (these seven and `requestId`) is
    /// recognised, in the same single write.
    pub const REQUEST_HISTORY: [&str; 7] = [
        PREV_REQUEST_ID,
        "prevRequestId2",
        "prevRequestId3",
        "prevRequestId4",
        "prevRequestId5",
        "prevRequestId6",
        "prevRequestId7",
    ];
    pub const PREV_LOCKED_BY: &str = "prevLockedBy";
    pub const PREV_STATUS: &str = "prevStatus";
    pub const PREV_EXPIRES_AT: &str = "prevExpiresAt";
    pub const PREV_RELEASED_BY: &str = "prevReleasedBy";
    pub const PREV_RELEASE_REASON: &str = "prevReleaseReason";
    /// The last run that went around the key's lock (a map: by, at,
    /// reason, host, runUrl), and how many there were.
    pub const LAST_BYPASS: &str = "lastBypass";
    pub const BYPASS_COUNT: &str = "bypassCount";
    /// The caller's own data for a grant, opaque to the lock.
    pub const CONTEXT: &str = "context";
    /// The key's waiting line: a list of maps, head first.
    pub const WAITERS: &str = "waiters";
    /// Counts changes of the line; writes that depend on it check it.
    pub const LINE_VERSION: &str = "lineVersion";
    /// A string set of who is in the line (`r:` request ids, `m:` members),
    /// so a join can refuse a second place in the condition of its own
    /// write, without reading the line first.
    pub const LINE_MEMBERS: &str = "lineMembers";
    /// A freeze's item (key [`crate::FREEZE_KEY_PREFIX`]…): who froze,
    /// their name, why, when (epoch ms) and until when (epoch ms); who
    /// lifted it early, if anyone did.
    pub const FROZEN_BY: &str = "frozenBy";
    pub const FROZEN_BY_NAME: &str = "frozenByName";
    pub const FREEZE_REASON: &str = "freezeReason";
    pub const FROZEN_AT_MS: &str = "frozenAtMs";
    pub const FROZEN_UNTIL_MS: &str = "frozenUntilMs";
    pub const LIFTED_BY: &str = "liftedBy";
}

/// The history table: one item per ended grant, kept for a retention period
/// (DynamoDB TTL on [`TTL_ATTRIBUTE`]) and read without a scan, per key by
/// its partition and across keys by the day index.
pub mod history {
    /// Partition key: the lock key the grant was on.
    pub const PARTITION_KEY: &str = "lockKey";
    /// Sort key: the grant's fence, so a key's entries read newest first.
    pub const SORT_KEY: &str = "fence";
    /// Index of every key's entries by the day they ended, newest first.
    pub const TIME_INDEX_NAME: &str = "by-day";
    /// Partition key of [`TIME_INDEX_NAME`]: the UTC day an entry ended
    /// (`YYYY-MM-DD`), so a time range reads one partition per day.
    pub const TIME_INDEX_PARTITION_KEY: &str = "endedDay";
    /// Sort key of [`TIME_INDEX_NAME`]: when the grant ended, epoch ms.
    pub const TIME_INDEX_SORT_KEY: &str = "endedAtMs";
    /// The history table's name when the lock table is `lock_table`.
    pub fn table_for(lock_table: &str) -> String {
        format!("{lock_table}-history")
    }
}
