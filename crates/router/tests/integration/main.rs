//! Router integration tests: the Lambda handler with real `lambda_http`
//! request shapes built from `events/router-*.json`, the `--listen` binary
//! over HTTP, and a real SQS-compatible server on loopback (moto, started by
//! `tests/tooling/sqs-local.sh start`; endpoint `BATON_TEST_SQS_ENDPOINT`,
//! default `http://127.0.0.1:4566`). Every test creates its own queue. The
//! end-to-end test (`e2e`) also needs DynamoDB Local for the worker's locks
//! (`tests/tooling/dynamodb-local.sh start`).

mod azure;
mod common;
mod e2e;
mod github;
mod lambda_runtime;
mod listen;
mod policy;
mod rotation;
mod slack;
mod ssm;
