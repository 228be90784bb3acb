#!/usr/bin/env bash
# Starts or stops a local SQS-compatible server (moto's server mode, from
# PyPI) on 127.0.0.1:$BATON_SQS_PORT (default 4566), for the router's tests
# and the demo.
#
#   sqs-local.sh start   # no-op when an SQS server already answers there
#   sqs-local.sh stop    # stops only the process this script started
#
# moto is installed into the repository's .venv (gitignored) on first use.
# It speaks the AWS JSON protocol (`X-Amz-Target: AmazonSQS.*`) that current
# aws-sdk-sqs uses, including FIFO queues with MessageGroupId and
# MessageDeduplicationId. Clients use http://127.0.0.1:PORT with any dummy
# credentials (moto does not check signatures) and region us-east-1.
#
# The PID of a process we started is kept in .run/sqs-local.pid.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=lib.sh
source "$root/tests/tooling/lib.sh"
port=${BATON_SQS_PORT:-4566}
endpoint="http://127.0.0.1:${port}"
pidfile="$root/.run/sqs-local-${port}.pid"
logfile="$root/.run/sqs-local-${port}.log"
venv="$root/.venv"
moto_version=5.2.5

answers() {
  # An SQS server answers ListQueues in the JSON protocol with 200; anything
  # else on the port (or nothing) does not count.
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 -X POST \
    -H 'Content-Type: application/x-amz-json-1.0' \
    -H 'X-Amz-Target: AmazonSQS.ListQueues' \
    -d '{}' "$endpoint/" 2>/dev/null) || return 1
  [ "$code" = "200" ]
}

port_taken() {
  curl -s -o /dev/null --max-time 1 "$endpoint/" 2>/dev/null
}

install_moto() {
  if [ -x "$venv/bin/moto_server" ]; then
    return 0
  fi
  if [ ! -x "$venv/bin/python" ]; then
    echo "sqs-local: creating $venv" >&2
    python3 -m venv "$venv"
  fi
  echo "sqs-local: installing moto[server]==$moto_version into $venv (pip)" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$moto_version"
}

start() {
  if answers; then
    echo "sqs-local: an SQS server already answers on $endpoint; using it" >&2
    return 0
  fi
  if port_taken; then
    echo "sqs-local: something that is not SQS answers on $endpoint; set BATON_SQS_PORT" >&2
    exit 1
  fi
  install_moto
  mkdir -p "$root/.run"
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$logfile" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 150); do
    if answers; then
      echo "sqs-local: ready on $endpoint (pid $(cat "$pidfile"))" >&2
      return 0
    fi
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "sqs-local: moto_server exited; log follows" >&2
      cat "$logfile" >&2
      rm -f "$pidfile"
      exit 1
    fi
    sleep 0.1
  done
  echo "sqs-local: not ready after 15 s; log follows" >&2
  cat "$logfile" >&2
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
