#!/usr/bin/env bash
# `make bench`: request counts, library overhead, contention, worker cost,
# cold start, footprint, router latency and reconciler passes, measured on
# this machine.
#  1. installs what is missing (tests/tooling/prereqs.sh);
#  2. starts DynamoDB Local and a local SQS (moto) unless something already
#     answers, and stops what it started, by PID, whatever happens;
#  3. builds the Lambda zips (`make package`) when they are missing or older
#     than the code they are built from;
#  4. builds baton-bench and the host release baton-worker and baton-router
#     (`--release`, the workspace's Lambda profile; the bins are selected the
#     way cargo-lambda selects them, so features match the zips);
#  5. runs baton-bench: one table on stdout, the same as JSON in
#     target/bench/results.json.
# Extra arguments go to baton-bench (e.g. `--quick`, `--only 1,5`).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
started=$(date +%s)
step() { printf 'bench: %s\n' "$*" >&2; }

bash tests/tooling/prereqs.sh
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/baton-target}
export BATON_DDB_PORT=${BATON_DDB_PORT:-8000}
export BATON_SQS_PORT=${BATON_SQS_PORT:-4566}
export BATON_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:${BATON_DDB_PORT}"
export BATON_TEST_SQS_ENDPOINT="http://127.0.0.1:${BATON_SQS_PORT}"

# Stop at the end only what this run started: a server that already answers
# belongs to someone else (its PID file may be shared), so it is left alone.
ddb_was_up=0
curl -s -o /dev/null --max-time 1 "$BATON_TEST_DYNAMODB_ENDPOINT" 2>/dev/null && ddb_was_up=1
sqs_was_up=0
curl -s -o /dev/null --max-time 1 "$BATON_TEST_SQS_ENDPOINT/" 2>/dev/null && sqs_was_up=1
cleanup() {
  [ "$ddb_was_up" = 1 ] || bash tests/tooling/dynamodb-local.sh stop || true
  [ "$sqs_was_up" = 1 ] || bash tests/tooling/sqs-local.sh stop || true
}
trap cleanup EXIT

# The servers start while the builds run.
(bash tests/tooling/dynamodb-local.sh start && bash tests/tooling/sqs-local.sh start) &
servers=$!

# 3. Lambda zips.
t=$(date +%s)
sources=(crates/lock/src crates/chatops/src crates/worker/src crates/router/src
         crates/lock/Cargo.toml crates/chatops/Cargo.toml crates/worker/Cargo.toml crates/router/Cargo.toml
         Cargo.toml Cargo.lock)
stale=()
for name in baton-worker baton-router; do
  zip="target/lambda/$name/bootstrap.zip"
  if [ ! -f "$zip" ]; then
    stale+=("$name (missing)")
  elif [ -n "$(find "${sources[@]}" -newer "$zip" -print -quit)" ]; then
    stale+=("$name (older than the sources)")
  fi
done
if [ ${#stale[@]} -gt 0 ]; then
  step "building the Lambda zips with make package: ${stale[*]}"
  if ! bash tests/tooling/package.sh >&2; then
    step "WARNING: make package failed; the zip figures use whatever target/lambda holds"
  fi
else
  step "Lambda zips are up to date"
fi
package_s=$(( $(date +%s) - t ))

# 4. Host release binaries. The router is being worked on: if it does not
# build, the bench still runs and reports the router figure as a gap.
t=$(date +%s)
router_bin="$CARGO_TARGET_DIR/release/baton-router"
step "building baton-bench, baton-worker and baton-router (release)"
if cargo build --release --locked --bin baton-bench --bin baton-worker --bin baton-router; then
  router_ok=1
else
  step "WARNING: building with baton-router failed; building without it (the router figure will be a GAP)"
  cargo build --release --locked --bin baton-bench --bin baton-worker
  router_ok=0
fi
build_s=$(( $(date +%s) - t ))

# The bootstrap inside each zip, for its size and architecture.
rm -rf target/bench/lambda
for name in baton-worker baton-router; do
  zip="target/lambda/$name/bootstrap.zip"
  [ -f "$zip" ] || continue
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("bootstrap", sys.argv[2])' \
    "$zip" "target/bench/lambda/$name"
done

wait "$servers"

# 5. Measure. The worker's metric lines (EMF JSON on stderr outside Lambda)
# are filtered out of the progress output.
args=(--root "$root" --worker-bin "$CARGO_TARGET_DIR/release/baton-worker")
[ "$router_ok" = 1 ] && args+=(--router-bin "$router_bin")
t=$(date +%s)
set +e
{ "$CARGO_TARGET_DIR/release/baton-bench" "${args[@]}" "$@" 2>&1 1>&3 3>&- | grep --line-buffered -v '"_aws":{' >&2; } 3>&1
rc=${PIPESTATUS[0]}
set -e
measure_s=$(( $(date +%s) - t ))

step "make bench: done in $(( $(date +%s) - started )) s (zips ${package_s} s, release build ${build_s} s, measuring ${measure_s} s); exit ${rc}"
exit "$rc"
