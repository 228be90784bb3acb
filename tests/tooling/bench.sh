#!/usr/bin/env bash
# `make bench`: request counts, library overhead, contention, worker cost,
# cold start, footprint, router latency and reconciler passes, measured on
# this machine.
#  1. installs what is missing (tests/tooling/prereqs.sh);
#  2. starts DynamoDB Local and a local SQS (moto) unless something already
#     answers, and stops what it started, by PID, whatever happens;
#  3. builds, both at once (see below): the Lambda zips (`make package`),
#     only when one is missing or older than what it is built from, and the
#     host release baton-bench, baton-worker and baton-router;
#  4. runs baton-bench: one table on stdout, the same as JSON in
#     target/bench/results.json;
#  5. prints how long each phase took: package, build, measure.
# Extra arguments go to baton-bench (e.g. `--quick`, `--only 1,5`).
#
# What is built, and why:
#  - The Lambda zips (package.sh: cargo lambda, `--release`, arm64 when the
#    aarch64 target is available, else x86_64). Figure 5 reports the size of
#    each zip and of the bootstrap inside it, and times the cold start of
#    that bootstrap when it can run on this machine.
#  - One `cargo build --release` of three host binaries: baton-worker, whose
#    cold start and peak RSS figure 5 measures when the zips are for another
#    architecture; baton-router, for the router latency; baton-bench, which
#    measures the library, contention, worker and reconciler figures in its
#    own process. One invocation and one profile (the workspace's
#    [profile.release], which is also the Lambda profile), so the
#    dependencies compile once for the three; the bins are selected the way
#    cargo-lambda selects them (`--bin` over the whole workspace), so the
#    features are those of the zips.
#  - Each build spends its time in the dependencies (aws-sdk-ssm and
#    aws-sdk-dynamodb above all) and in the fat-LTO, single-codegen-unit
#    link of each binary, which keeps one core busy for a minute or more.
#    The two builds run side by side so that each uses the core the other
#    leaves idle. The Lambda build has its own target directory
#    ($CARGO_TARGET_DIR/lambda-build, see package.sh) because cargo locks
#    the host release directory for the whole of a cross build. What it
#    compiles twice is only the proc-macros and build scripts (they run on
#    the host in both builds), a few seconds of work.
#  - Nothing forces a rebuild: no file is touched, RUSTFLAGS are left alone
#    (cargo-lambda's `-C target-cpu` reaches only the Lambda build), and the
#    bins, features and profile are the same on every run, so when nothing
#    changed cargo does no work and the zips are not rebuilt.
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
# The same goes for the Lambda build started below, stopped by its process
# group if the bench ends before it does.
ddb_was_up=0
curl -s -o /dev/null --max-time 1 "$BATON_TEST_DYNAMODB_ENDPOINT" 2>/dev/null && ddb_was_up=1
sqs_was_up=0
curl -s -o /dev/null --max-time 1 "$BATON_TEST_SQS_ENDPOINT/" 2>/dev/null && sqs_was_up=1
package_pid=""
cleanup() {
  if [ -n "$package_pid" ] && kill -0 "$package_pid" 2>/dev/null; then
    kill -TERM -- "-$package_pid" 2>/dev/null || kill -TERM "$package_pid" 2>/dev/null || true
  fi
  [ "$ddb_was_up" = 1 ] || bash tests/tooling/dynamodb-local.sh stop || true
  [ "$sqs_was_up" = 1 ] || bash tests/tooling/sqs-local.sh stop || true
}
trap cleanup EXIT

# The servers start while the builds run.
(bash tests/tooling/dynamodb-local.sh start && bash tests/tooling/sqs-local.sh start) &
servers=$!

# 3a. Lambda zips, in the background. A zip is stale when anything under
# crates/ is newer: a member's manifest changes the features every member
# gets, and when what changed is not in the zips, cargo finds nothing to
# rebuild and package.sh takes seconds.
sources=(crates Cargo.toml Cargo.lock rust-toolchain.toml tests/tooling/package.sh)
stale=()
for name in baton-worker baton-router; do
  zip="target/lambda/$name/bootstrap.zip"
  if [ ! -f "$zip" ]; then
    stale+=("$name (missing)")
  elif [ -n "$(find "${sources[@]}" -newer "$zip" -print -quit)" ]; then
    stale+=("$name (older than the sources)")
  fi
done
mkdir -p target/bench
package_result=target/bench/package-status
rm -f "$package_result"
if [ ${#stale[@]} -gt 0 ]; then
  step "building the Lambda zips (make package) alongside the host build: ${stale[*]}"
  # In its own session, so that cleanup can stop the whole build by process
  # group. Writes "<exit status> <seconds>" to $package_result when done.
  setsid -w bash -c 'set -o pipefail; t=$SECONDS
    bash tests/tooling/package.sh 2>&1 | sed -u "/^package: /!s/^/package: /" >&2
    rc=$?; echo "$rc $((SECONDS - t))" > "$1"; exit "$rc"' package "$package_result" &
  package_pid=$!
else
  step "Lambda zips are up to date"
fi

# 3b. Host release binaries. The router is being worked on: if it does not
# build, the bench still runs and reports the router figure as a gap.
t=$(date +%s)
router_bin="$CARGO_TARGET_DIR/release/baton-router"
step "building baton-bench, baton-worker and baton-router (host, release)"
if cargo build --release --locked --bin baton-bench --bin baton-worker --bin baton-router; then
  router_ok=1
else
  step "WARNING: building with baton-router failed; building without it (the router figure will be a GAP)"
  cargo build --release --locked --bin baton-bench --bin baton-worker
  router_ok=0
fi
build_s=$(( $(date +%s) - t ))

package_s=0
package_note="zips up to date, not rebuilt"
if [ -n "$package_pid" ]; then
  t=$(date +%s)
  kill -0 "$package_pid" 2>/dev/null && step "host build done in ${build_s} s; waiting for make package"
  wait "$package_pid" || true
  package_pid=""
  package_rc=1
  [ -f "$package_result" ] && read -r package_rc package_s < "$package_result"
  package_note="alongside the build, $(( $(date +%s) - t )) s of it after the build"
  if [ "$package_rc" != 0 ]; then
    package_note+=", FAILED (exit $package_rc)"
    step "WARNING: make package failed; the zip figures use whatever target/lambda holds"
  fi
fi

# The bootstrap inside each zip, for its size and architecture.
rm -rf target/bench/lambda
for name in baton-worker baton-router; do
  zip="target/lambda/$name/bootstrap.zip"
  [ -f "$zip" ] || continue
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("bootstrap", sys.argv[2])' \
    "$zip" "target/bench/lambda/$name"
done

wait "$servers"

# 4. Measure. The worker's metric lines (EMF JSON on stderr outside Lambda)
# are filtered out of the progress output.
args=(--root "$root" --worker-bin "$CARGO_TARGET_DIR/release/baton-worker")
[ "$router_ok" = 1 ] && args+=(--router-bin "$router_bin")
t=$(date +%s)
set +e
{ "$CARGO_TARGET_DIR/release/baton-bench" "${args[@]}" "$@" 2>&1 1>&3 3>&- | grep --line-buffered -v '"_aws":{' >&2; } 3>&1
rc=${PIPESTATUS[0]}
set -e
measure_s=$(( $(date +%s) - t ))

# 5. Phases.
step "make bench: done in $(( $(date +%s) - started )) s; exit ${rc}"
step "  package  ${package_s} s (Lambda zips; ${package_note})"
step "  build    ${build_s} s (host release baton-bench, baton-worker, baton-router)"
step "  measure  ${measure_s} s (baton-bench)"
exit "$rc"
