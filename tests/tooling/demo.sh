#!/usr/bin/env bash
# `make demo`: baton's main job on an embedded default.
#  Part 1 — the CLI: two CI pipelines race for one lock on DynamoDB Local;
#           one runs, the other waits, fences grow.
#  Part 2 — chatops: the sample SQS events in events/ go through the worker,
#           with a loopback recorder as Slack and GitHub, printed as the
#           channel sees them.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bash tests/tooling/prereqs.sh
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/baton-target}
export BATON_DDB_PORT=${BATON_DDB_PORT:-8000}
export BATON_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:${BATON_DDB_PORT}"

# Stop DynamoDB Local at the end only if this run started it.
ddb_was_up=0
curl -s -o /dev/null --max-time 1 "$BATON_TEST_DYNAMODB_ENDPOINT" 2>/dev/null && ddb_was_up=1
trap '[ "$ddb_was_up" = 1 ] || bash tests/tooling/dynamodb-local.sh stop' EXIT
echo "Building baton (first run: a few minutes)…"
cargo build --quiet --locked -p baton-cli -p baton-worker --examples --bins
bash tests/tooling/dynamodb-local.sh start

# The standard AWS environment, pointed at DynamoDB Local.
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:${BATON_DDB_PORT}"
export AWS_ACCESS_KEY_ID=baton AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1
export BATON_TABLE="baton-demo-$(date +%s)-$$"
baton="$CARGO_TARGET_DIR/debug/baton"
mkdir -p .run

bold() { printf '\033[1m%s\033[0m\n' "$*"; }

bold "Part 1: two pipelines, one lock (table $BATON_TABLE)"
"$baton" table create
pipeline() {
  local who=$1
  "$baton" run deploy-api-prod --owner "$who" --ttl 1m --wait 2m --purpose "deploy api to prod" -- \
    sh -c 'echo "  [$0] deploying under fence $BATON_FENCE"; sleep 2; echo "  [$0] done"' "$who"
}
pipeline "github:acme/api#101" > .run/demo-gh.log 2>&1 &
gh=$!
pipeline "azdo:acme/api#7" > .run/demo-az.log 2>&1 &
az=$!
# Watch the race from a third terminal's point of view.
for _ in $(seq 1 100); do
  if "$baton" --json status deploy-api-prod 2>/dev/null | grep -q '"state":"held"'; then break; fi
  sleep 0.05
done
echo "While one deploys, the lock looks like this:"
"$baton" status deploy-api-prod | sed 's/^/  /'
wait "$gh" "$az"
echo "GitHub Actions pipeline:"; sed 's/^/  /' .run/demo-gh.log
echo "Azure DevOps pipeline:";   sed 's/^/  /' .run/demo-az.log
echo "After both:"
"$baton" status deploy-api-prod | sed 's/^/  /'
echo

bold "Part 2: Slack commands through the worker"
"$CARGO_TARGET_DIR/debug/examples/demo" 2>.run/demo-worker.log
echo "(worker logs and CloudWatch EMF metric lines: .run/demo-worker.log)"
