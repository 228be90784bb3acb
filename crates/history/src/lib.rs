//! # baton-history
//!
//! Keeps the history of every grant without adding a request to any lock
//! operation: the lock table's change stream (new and old images) is read
//! by this consumer, which turns each change into at most one history entry
//! ([`baton_lock::history::changes_between`]) and stores it idempotently
//! ([`writer::HistoryWriter::record`]), so a redelivered batch changes
//! nothing.
//!
//! On AWS the stream reaches [`consume::handle`] through a Lambda event
//! source mapping; locally (the demo, the tests) [`follow::Follower`] reads
//! the same stream from DynamoDB Local's streams API and feeds the same code.

pub mod consume;
pub mod follow;
pub mod settings;
pub mod writer;
