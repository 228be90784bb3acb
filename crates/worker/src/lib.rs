//! # baton-worker
//!
//! The SQS-triggered Lambda at the heart of baton: each queued Slack command
//! takes its lock, starts its pipeline (a GitHub Actions workflow or an
//! Azure DevOps pipeline) and tells the channel; each completion record ends the lock and reports the outcome.
//! Decisions live in [`worker`] and [`reconcile`](ReconcileReport); the lock
//! store, the chat and the pipeline are ports ([`ports`], `baton_lock::LockStore`)
//! with DynamoDB, Slack, GitHub and Azure DevOps adapters for production and in-memory ones
//! ([`fakes`], `baton_lock::MemoryStore`) for fast decision tests.

pub mod azure;
pub mod emf;
pub mod fakes;
pub mod github;
pub mod origin;
pub mod ports;
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
    let env = baton_runtime::Env::process();
    let table = settings::table_name(&env)?;
    let sdk = baton_runtime::sdk::sdk_config().await;
    let settings = settings::from_env(&env, &sdk).await?;
    let history_table = settings::history_table(&env, &table);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let history = baton_lock::HistoryClient::new(ddb.clone(), history_table);
    let locks = baton_lock::LockClient::new(ddb, table);
    Ok(Worker::new(locks, settings)?.with_history(history))
}
