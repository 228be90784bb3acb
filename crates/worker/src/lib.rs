//! # baton-worker
//!
//! The SQS-triggered Lambda at the heart of baton: each queued Slack command
//! takes its lock, dispatches its GitHub Actions workflow and tells the
//! channel; each completion record ends the lock and reports the outcome.
//! Decisions live in [`worker`]; Slack and GitHub are thin HTTP adapters.

pub mod emf;
pub mod github;
mod reconcile;
mod retry;
pub mod settings;
pub mod slack;
pub mod worker;

pub use reconcile::ReconcileReport;
pub use worker::{Worker, WorkerSettings};

/// Builds the worker from the environment: the SDK config, the lock client
/// and the secrets, once per cold start.
pub async fn worker_from_env() -> anyhow::Result<Worker> {
    let sdk = baton_lock::aws::load_sdk_config().await;
    let table = settings::table_name()?;
    let settings = settings::from_env(&sdk).await?;
    let locks = baton_lock::LockClient::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    Worker::new(locks, settings)
}
