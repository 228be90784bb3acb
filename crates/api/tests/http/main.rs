//! baton-api through its HTTP interface: the `--listen` binary on loopback
//! against DynamoDB Local (`BATON_TEST_DYNAMODB_ENDPOINT`, default
//! `http://127.0.0.1:8000`; `tests/tooling/dynamodb-local.sh start`). Each
//! test runs its own server on its own table.

mod common;
mod dashboard;
mod history;
mod lambda;
mod refusals;
mod requests;
mod tracker;
mod v1;
