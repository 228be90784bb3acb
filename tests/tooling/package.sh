#!/usr/bin/env bash
# `make package`: Lambda zips for baton-worker, baton-router, baton-api and baton-history with
# cargo-lambda (from PyPI, into .venv/tools/cargo-lambda). arm64 when the
# aarch64 Rust target is (or can be) installed, x86_64 otherwise.
# Output: target/lambda/<name>/bootstrap.zip, the paths infra/ deploys.
# cargo builds in $CARGO_TARGET_DIR/lambda-build, not in $CARGO_TARGET_DIR:
# a cross build locks the host release directory for as long as it runs, and
# with a directory of its own it can run while `make bench` builds the host
# release binaries (tests/tooling/bench.sh). `make package` and `make bench`
# share it, so either one reuses what the other compiled.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bash tests/tooling/prereqs.sh
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/baton-target}/lambda-build

venv="$root/.venv/tools/cargo-lambda"
if [ ! -x "$venv/bin/cargo-lambda" ]; then
  echo "package: installing cargo-lambda (PyPI) into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "cargo-lambda==1.9.2"
fi
export PATH="$venv/bin:$PATH"

arch=(--arm64)
if ! rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$'; then
  if ! rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1; then
    echo "package: the aarch64 Rust target is not available here; building x86_64 (set architecture = \"x86_64\" in infra)" >&2
    arch=(--x86-64)
  fi
fi

cargo lambda build --release "${arch[@]}" --output-format zip \
  --lambda-dir "$root/target/lambda" --bin baton-worker --bin baton-router --bin baton-api --bin baton-history

for name in baton-worker baton-router baton-api baton-history; do
  zip="target/lambda/$name/bootstrap.zip"
  printf '%-14s %s  %s bytes\n' "$name" "$zip" "$(stat -c %s "$zip")"
done
