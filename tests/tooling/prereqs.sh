#!/usr/bin/env bash
# Installs what a bare Debian/Ubuntu machine lacks for baton's tests, demo and
# benchmarks: Java 17 (DynamoDB Local), Node.js + npm (its npm package), curl,
# Python 3 (infra checks), jq, a Rust toolchain and cargo-nextest, and
# (tests/tooling/browser.sh) Chromium with chromedriver for the dashboard test.
# Idempotent and quiet when everything is present.
set -euo pipefail

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
command -v curl >/dev/null 2>&1 || need_apt+=(curl ca-certificates)
# The API's Tracker tests run Tracker's own shell examples, which use jq.
command -v jq >/dev/null 2>&1 || need_apt+=(jq)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-venv python3-pip)
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v make >/dev/null 2>&1 || need_apt+=(make)
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then need_apt+=(python3-venv); fi

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "prereqs: installing ${need_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if command -v java >/dev/null 2>&1; then
  major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
  if [ -n "$major" ] && [ "$major" -lt 17 ]; then
    echo "prereqs: DynamoDB Local needs Java 17 or newer; found Java $major" >&2
    exit 1
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "prereqs: installing the Rust toolchain (Debian's cargo/rustc)" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq cargo rustc >/dev/null
  fi
fi

# The toolchain rust-toolchain.toml pins. rustup fetches it where it can
# reach the Rust release servers; where it cannot, an installed `stable` of
# exactly that version is the same compiler, and is registered under the
# pinned name so that rustup does not try to download it.
if command -v rustup >/dev/null 2>&1; then
  root="$(cd "$(dirname "$0")/../.." && pwd)"
  pinned=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$root/rust-toolchain.toml")
  if [ -n "$pinned" ] && ! rustup toolchain list | grep -q "^$pinned"; then
    stable_version=$(RUSTUP_TOOLCHAIN=stable rustc --version 2>/dev/null | awk '{print $2}')
    if [ "$stable_version" = "$pinned" ]; then
      host=$(RUSTUP_TOOLCHAIN=stable rustc -vV | sed -n 's/^host: //p')
      echo "prereqs: using the installed stable $pinned as the pinned toolchain" >&2
      ln -s "$(RUSTUP_TOOLCHAIN=stable rustc --print sysroot)" \
        "${RUSTUP_HOME:-$HOME/.rustup}/toolchains/$pinned-$host"
    else
      echo "prereqs: installing the pinned Rust toolchain $pinned" >&2
      rustup toolchain install "$pinned" --profile minimal --component clippy,rustfmt
    fi
  fi
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "prereqs: installing cargo-nextest from crates.io" >&2
  cargo install --locked --quiet cargo-nextest
fi

# The dashboard test drives a real headless browser.
bash "$(dirname "$0")/browser.sh"
