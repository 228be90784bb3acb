//! Typed errors of the lock library. Conflicts carry the record that caused
//! them, read from the same failed request, so callers can name the holder
//! without a second round trip.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::record::LockRecord;

/// Everything that can go wrong with a lock operation.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone else holds a valid lease on the key.
    #[error("lock `{}` is held by {} until epoch {} (fence {})", holder.lock_key, holder.holder_label(), holder.expires_at, holder.fence)]
    Held { holder: Box<LockRecord> },

    /// A freeze the acquire asked to be checked is in force: nothing was
    /// written. The freeze is read from the same failed request.
    #[error("lock `{key}` is frozen until epoch ms {} by {}: {}", freeze.until_ms, freeze.by_label(), freeze.reason)]
    Frozen {
        key: String,
        freeze: Box<crate::freeze::FreezeRecord>,
    },

    /// The presented lock id is not the current grant of the key.
    #[error("lock `{key}` is not held by lock id {lock_id}{}", describe_current(current.as_deref()))]
    NotOwner {
        key: String,
        lock_id: String,
        current: Option<Box<LockRecord>>,
    },

    /// This request id already had its grant, which ended and was followed by
    /// another grant: a late duplicate (an old message delivered again) must
    /// not start a second run.
    #[error("request `{request_id}` already had its grant on lock `{}`; the key has been granted again since (fence {})", current.lock_key, current.fence)]
    RequestSuperseded {
        request_id: String,
        current: Box<LockRecord>,
    },

    /// This request id already had its grant on the key and that grant
    /// ended (released or force-unlocked): the work it stood for already ran.
    #[error("request already had its grant on lock `{}` (fence {}), which ended as {}", record.lock_key, record.fence, record.status)]
    RequestEnded { record: Box<LockRecord> },

    /// This request id holds the current grant, but its lease ended without
    /// a release or renewal: anyone may take the key over now, so the grant
    /// must not be used. Acquire again with a new request id.
    #[error("request's grant on lock `{}` (fence {}) lapsed at epoch {} without release or renewal", record.lock_key, record.fence, record.expires_at)]
    RequestLapsed { record: Box<LockRecord> },

    /// The grant was already ended (for example by a force unlock).
    #[error("lock `{}` (lock id {}) already ended as {}{}", record.lock_key, record.lock_id, record.status, record.release_reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    AlreadyEnded { record: Box<LockRecord> },

    /// Force unlock found nothing held.
    #[error("lock `{key}` is not held{}", describe_current(current.as_deref()))]
    NotHeld {
        key: String,
        current: Option<Box<LockRecord>>,
    },

    /// `wait` or `acquire --wait` ran out of time.
    #[error("timed out waiting for lock `{key}`{}", describe_current(holder.as_deref()))]
    WaitTimedOut {
        key: String,
        holder: Option<Box<LockRecord>>,
    },

    /// The key's waiting line is full.
    #[error("the line for lock `{key}` is full ({} waiting)", holder.waiters.len())]
    LineFull {
        key: String,
        holder: Box<LockRecord>,
    },

    /// The waiter named is not in the key's line (it was granted, left,
    /// was dropped after its maximum wait, or was superseded).
    #[error("`{who}` is not waiting for lock `{key}`")]
    NotWaiting { key: String, who: String },

    /// The key's line kept changing under every attempt to write it.
    #[error("the line for lock `{key}` changed under every attempt; try again")]
    LineBusy { key: String },

    /// The caller cancelled a wait.
    #[error("waiting for lock `{key}` was cancelled")]
    Cancelled { key: String },

    /// Arguments the library refuses before sending anything.
    #[error("invalid argument: {0}")]
    InvalidInput(String),

    /// The configured table (or its index) does not exist: a deployment problem.
    #[error("DynamoDB table `{table}` (or its index `{index}`) was not found; create it with `baton table create` or check BATON_TABLE and the region/endpoint", index = crate::schema::ACTIVE_INDEX_NAME)]
    TableNotFound { table: String },

    /// An item that is not a lock record written by baton.
    #[error("lock record `{key}` is malformed: {detail}")]
    Corrupt { key: String, detail: String },

    /// DynamoDB answered with an error after the SDK's retries, or could not be reached.
    #[error("DynamoDB {operation} failed: {message}")]
    Dynamo {
        operation: &'static str,
        code: Option<String>,
        message: String,
    },
}

impl LockError {
    /// The current record a conflict error carries, if any.
    pub fn current_record(&self) -> Option<&LockRecord> {
        match self {
            LockError::Held { holder } | LockError::LineFull { holder, .. } => Some(holder),
            LockError::NotOwner { current, .. } | LockError::NotHeld { current, .. } => {
                current.as_deref()
            }
            LockError::WaitTimedOut { holder, .. } => holder.as_deref(),
            LockError::AlreadyEnded { record }
            | LockError::RequestEnded { record }
            | LockError::RequestLapsed { record } => Some(record),
            LockError::RequestSuperseded { current, .. } => Some(current),
            _ => None,
        }
    }

    /// Whether another attempt later may succeed: throttling, a DynamoDB 5xx
    /// or no answer at all. Conflicts and input errors are final.
    pub fn is_transient(&self) -> bool {
        const TRANSIENT_CODES: [&str; 6] = [
            "ThrottlingException",
            "ProvisionedThroughputExceededException",
            "RequestLimitExceeded",
            "InternalServerError",
            "ServiceUnavailable",
            "TransactionConflictException",
        ];
        match self {
            LockError::Dynamo { code: None, .. } => true,
            LockError::Dynamo {
                code: Some(code), ..
            } => TRANSIENT_CODES.contains(&code.as_str()),
            _ => false,
        }
    }

    /// Maps an SDK failure to a typed error; `ResourceNotFoundException`
    /// becomes [`LockError::TableNotFound`] because it is a setup mistake, not
    /// an outage.
    pub(crate) fn from_sdk<E, R>(operation: &'static str, table: &str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let code = err.code().map(str::to_owned);
        if code.as_deref() == Some("ResourceNotFoundException") {
            return LockError::TableNotFound {
                table: table.to_owned(),
            };
        }
        let message = match (&code, err.message()) {
            (Some(code), Some(msg)) => format!("{code}: {msg}"),
            _ => DisplayErrorContext(&err).to_string(),
        };
        LockError::Dynamo {
            operation,
            code,
            message,
        }
    }
}

fn describe_current(current: Option<&LockRecord>) -> String {
    match current {
        Some(r) => format!(
            " (current: lock id {} by {}, {}, fence {})",
            r.lock_id,
            r.holder_label(),
            r.status,
            r.fence
        ),
        None => " (no record)".to_owned(),
    }
}
