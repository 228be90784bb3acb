//! # baton-lock
//!
//! Leases on DynamoDB that a build, a deploy or a migration can trust:
//!
//! - **one request per operation**: acquire is a single conditional
//!   `UpdateItem` that also returns the holder when it fails;
//! - **expired leases are taken over at once**, and the new grant records
//!   whom it replaced;
//! - **a fencing token** (`fence`) that grows with every grant of a key, even
//!   across release, expiry, force unlock and TTL collection;
//! - **ownership by lock id** for release, renew and annotations;
//! - **idempotency by request id**, so a redelivered message finds its own grant;
//! - **ambiguous writes resolved**: a retry that meets its own earlier write
//!   is recognised as success, not reported as a conflict.
//!
//! The operations are also a port, [`LockStore`], with two adapters:
//! [`LockClient`] on DynamoDB, and [`MemoryStore`], records in memory for
//! fast tests of code that decides what to do with a lock (no DynamoDB
//! Local needed). The memory adapter is proved equivalent, promise by
//! promise, by one conformance suite run against both
//! (`tests/conformance.rs`).
//!
//! - **change freezes**: a freeze is a record of its own; an acquire that
//!   asks for the check is refused while the freeze lasts, checked in the
//!   same request as the grant (a `TransactWriteItems`).
//!
//! This crate knows DynamoDB and nothing of Slack, SQS or CI systems.

mod acquire;
mod bypass;
mod client;
pub mod clock;
mod error;
mod expr;
mod freeze;
mod frozen_acquire;
mod handoff;
pub mod history;
mod history_store;
mod join;
mod line;
mod memory;
mod ownership;
mod record;
pub mod schema;
mod store;
mod table;
mod takeover;
mod wait;

pub use acquire::{AcquireRequest, Grant, GrantKind, Takeover};
pub use bypass::Bypass;
pub use client::{ListQuery, LockClient, LockOptions, LockPage};
pub use error::LockError;
pub use freeze::{FREEZE_KEY_PREFIX, FreezeKey, FreezeRecord, FreezeRequest, MAX_FREEZE};
pub use handoff::Ended;
pub use history_store::{
    DEFAULT_RECENT_WINDOW, DEFAULT_RETENTION, HistoryClient, HistoryPage, HistoryQuery,
    MAX_RECENT_WINDOW, entry_item, entry_of,
};
pub use line::{JoinRequest, Joined, Left, LineMode, MAX_LINE_LEN, Place, Waiter};
pub use memory::MemoryStore;
pub use ownership::{ReleaseRequest, RunCheck};
pub use record::{LockRecord, LockState, LockStatus, PipelineRun, PreviousGrant};
pub use store::LockStore;
pub use table::TableCreation;
pub use tokio_util::sync::CancellationToken;
pub use wait::Backoff;
