//! Test support shared by every crate's integration tests and the bench.
//! Everything here talks to loopback only: DynamoDB Local started by
//! `make test`, servers this crate starts on `127.0.0.1:0`, and a headless
//! Chromium driven through chromedriver on loopback.

pub mod chaos;
pub mod dynamo;
pub mod history;
pub mod lambda_api;
pub mod proxy;
pub mod recorder;
pub mod webdriver;

pub use chaos::{DynamoChaos, DynamoFault, Schedule};
pub use dynamo::{
    TestTable, dynamodb_endpoint, fast_options, local_dynamodb_client, local_dynamodb_client_tuned,
    unique_name,
};
pub use history::local_streams_client;
pub use lambda_api::{LambdaRuntimeApi, LambdaState};
pub use proxy::{FaultAction, FaultProxy, ProxiedRequest};
pub use recorder::{HttpRecorder, RecordedRequest, Reply, ReplyFuture};
pub use webdriver::{Browser, Element};
