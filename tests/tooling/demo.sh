#!/usr/bin/env bash
# `make demo`: baton's main job on an embedded default.
#  Part 1 — the CLI: two CI pipelines race for one lock on DynamoDB Local;
#           one runs, the other waits, fences grow; the history consumer
#           (`baton-history --follow`) records both grants.
#  Part 2 — chatops: the sample SQS events in events/ go through the worker,
#           with a loopback recorder as Slack and GitHub, printed as the
#           channel sees them.
#  Part 3 — the HTTP API and dashboard: baton-api on loopback over the same
#           table, a Tracker-style curl lock, and the dashboard's URL with a
#           demo read token (served until Enter when run from a terminal).
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
cargo build --quiet --locked -p baton-cli -p baton-worker -p baton-api -p baton-history --examples --bins
bash tests/tooling/dynamodb-local.sh start

# The standard AWS environment, pointed at DynamoDB Local.
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:${BATON_DDB_PORT}"
# DynamoDB Local serves the streams API on the same port (the history
# consumer reads the lock table's stream through it).
export AWS_ENDPOINT_URL_DYNAMODB_STREAMS="$AWS_ENDPOINT_URL_DYNAMODB"
export AWS_ACCESS_KEY_ID=baton AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1
export BATON_TABLE="baton-demo-$(date +%s)-$$"
baton="$CARGO_TARGET_DIR/debug/baton"
mkdir -p .run

bold() { printf '\033[1m%s\033[0m\n' "$*"; }

bold "Part 1: two pipelines, one lock (table $BATON_TABLE)"
"$baton" table create
# The history consumer reads the lock table's stream, as its Lambda does on AWS.
RUST_LOG=warn "$CARGO_TARGET_DIR/debug/baton-history" --follow 2> .run/demo-history.log &
history_pid=$!
trap 'kill "$history_pid" 2>/dev/null || true; [ "$ddb_was_up" = 1 ] || bash tests/tooling/dynamodb-local.sh stop' EXIT
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
# The consumer records each ended grant from the stream within a moment.
recorded=0
for _ in $(seq 1 100); do
  recorded=$("$baton" --json history deploy-api-prod | jq '.entries | length')
  [ "$recorded" -ge 2 ] && break
  sleep 0.1
done
[ "$recorded" -ge 2 ] || { echo "the history consumer recorded $recorded of 2 grants; see .run/demo-history.log" >&2; exit 1; }
echo "The key's history (baton history deploy-api-prod):"
"$baton" history deploy-api-prod | sed 's/^/  /'
echo

bold "Part 2: Slack commands through the worker"
"$CARGO_TARGET_DIR/debug/examples/demo" 2>.run/demo-worker.log
echo "(worker logs and CloudWatch EMF metric lines: .run/demo-worker.log)"
echo

bold "Part 3: the HTTP API and the dashboard"
# Two demo tokens, made for this run; the API keeps only their SHA-256.
token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
read_token="demo-read-$(token)"
lock_token="demo-lock-$(token)"
export BATON_API_TOKENS="{\"tokens\": [
  {\"name\": \"demo-reader\", \"sha256\": \"$(sha "$read_token")\", \"scopes\": [\"read\"]},
  {\"name\": \"demo-ci\", \"sha256\": \"$(sha "$lock_token")\", \"scopes\": [\"read\", \"lock:\"]}]}"
RUST_LOG=warn "$CARGO_TARGET_DIR/debug/baton-api" --listen 127.0.0.1:0 > .run/demo-api.out 2> .run/demo-api.log &
api_pid=$!
trap 'kill "$api_pid" "$history_pid" 2>/dev/null || true; [ "$ddb_was_up" = 1 ] || bash tests/tooling/dynamodb-local.sh stop' EXIT
for _ in $(seq 1 100); do grep -q '^listening on ' .run/demo-api.out 2>/dev/null && break; sleep 0.1; done
api=$(sed -n 's/^listening on //p' .run/demo-api.out)
[ -n "$api" ] || { echo "baton-api did not start; see .run/demo-api.log" >&2; exit 1; }
echo "A Tracker-style script takes a lock with curl (POST /api/v1alpha1/lock):"
curl -sS -X POST "$api/api/v1alpha1/lock" -H "Authorization: Bearer $lock_token" \
  -H "Content-Type: application/json" \
  -d '{"service": "nightly-report-generation", "who": "cron-job-demo"}' | sed 's/^/  /'
echo
echo "…and a pipeline takes one through /v1 (POST /v1/locks/{key}/acquire):"
curl -sS -X POST "$api/v1/locks/deploy/web/prod/acquire" -H "Authorization: Bearer $lock_token" \
  -H "Content-Type: application/json" \
  -d '{"owner": "jenkins-42", "purpose": "deploy web to prod", "ttl": "15m", "environment": "prod"}' \
  | jq -c '{lockKey, lockId, fence, lockedBy, host, expiresAt, grant}' | sed 's/^/  /'
echo
echo "Held locks, as any read token sees them (GET /v1/locks):"
curl -sS "$api/v1/locks" -H "Authorization: Bearer $read_token" \
  | jq -c '.locks[] | {lockKey, state, lockedBy, purpose, fence, waiting}' | sed 's/^/  /'
echo
bold "Dashboard: $api/#token=$read_token"
echo "  (read token: $read_token; the #fragment never reaches the server)"
echo "  OpenAPI:   curl -H 'Authorization: Bearer $read_token' $api/v1/openapi.json"
if [ -t 0 ]; then
  read -r -p "baton-api is serving the demo table; press Enter to stop. " _
fi
