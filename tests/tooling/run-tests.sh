#!/usr/bin/env bash
# `make test`: every test baton has, on a bare machine.
#  1. installs what is missing (tests/tooling/prereqs.sh);
#  2. starts DynamoDB Local and a local SQS unless something already answers;
#  3. runs the Rust tests with nextest (lock core, chatops, worker, router, CLI,
#     fault injection, property tests);
#  4. runs the offline infrastructure checks (checkov + contract tests);
#  5. stops what it started, by PID, whatever happened.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
started=$(date +%s)

bash tests/tooling/prereqs.sh
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/baton-target}
export BATON_DDB_PORT=${BATON_DDB_PORT:-8000}
export BATON_SQS_PORT=${BATON_SQS_PORT:-4566}
export BATON_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:${BATON_DDB_PORT}"
export BATON_TEST_SQS_ENDPOINT="http://127.0.0.1:${BATON_SQS_PORT}"

cleanup() {
  bash tests/tooling/dynamodb-local.sh stop || true
  bash tests/tooling/sqs-local.sh stop || true
}
trap cleanup EXIT

# The build (minutes on a cold cache) overlaps with the servers starting.
cargo nextest run --workspace --no-run --locked &
build=$!
bash tests/tooling/dynamodb-local.sh start
bash tests/tooling/sqs-local.sh start
wait "$build"

cargo nextest run --workspace --locked --no-fail-fast
bash tests/infra/run.sh

echo "make test: everything passed in $(( $(date +%s) - started )) s"
