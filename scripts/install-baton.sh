#!/usr/bin/env bash
# Installs the `baton` CLI for a CI job, built with `cargo install --locked`
# from this repository, into $BATON_INSTALL_ROOT/bin (default ~/.baton/bin),
# and puts that directory on the job's PATH (GitHub Actions: $GITHUB_PATH;
# Azure DevOps: the ##vso[task.prependpath] logging command).
#
# A binary already in the root that reports the wanted version is reused
# (that is what the GitHub Action caches), so a warm run builds nothing.
#
#   BATON_INSTALL_FROM  git (default): cargo install --git $BATON_REPO --rev $BATON_VERSION baton-cli
#                       path: cargo install --path $BATON_SOURCE/crates/cli (a checkout of this repo)
#   BATON_VERSION       git ref (tag, branch or commit) to build; also the cache key
#   BATON_REPO          git URL (default https://github.com/$GITHUB_ACTION_REPOSITORY)
#   BATON_SOURCE        checkout for BATON_INSTALL_FROM=path (default: this script's repository)
#   BATON_INSTALL_ROOT  where bin/baton goes (default ~/.baton)
#   BATON_INSTALL_DRY_RUN=1  print the cargo command instead of running it
set -euo pipefail

root=${BATON_INSTALL_ROOT:-$HOME/.baton}
from=${BATON_INSTALL_FROM:-git}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source_dir=${BATON_SOURCE:-$here}
bin="$root/bin/baton"

add_to_path() {
  if [ -n "${GITHUB_PATH:-}" ]; then
    echo "$root/bin" >> "$GITHUB_PATH"
  fi
  if [ -n "${TF_BUILD:-}" ]; then
    echo "##vso[task.prependpath]$root/bin"
  fi
  echo "baton: $("$bin" --version) in $root/bin"
}

# The version the root's binary was installed for (written below).
stamp="$root/.baton-version"
wanted="$from:${BATON_VERSION:-local}"
if [ -x "$bin" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] && "$bin" --version >/dev/null 2>&1; then
  echo "baton: reusing the cached build ($wanted)"
  add_to_path
  exit 0
fi

case "$from" in
  path)
    cmd=(cargo install --locked --path "$source_dir/crates/cli" --root "$root" --force)
    ;;
  git)
    repo=${BATON_REPO:-https://github.com/${GITHUB_ACTION_REPOSITORY:?set BATON_REPO or GITHUB_ACTION_REPOSITORY}}
    version=${BATON_VERSION:?set BATON_VERSION to the git ref to build}
    # A commit is a --rev, a version tag a --tag, anything else a --branch.
    if [[ $version =~ ^[0-9a-f]{7,40}$ ]]; then ref=--rev
    elif [[ $version =~ ^v[0-9] ]]; then ref=--tag
    else ref=--branch
    fi
    cmd=(cargo install --locked --git "$repo" "$ref" "$version" --root "$root" --force baton-cli)
    ;;
  *)
    echo "baton: BATON_INSTALL_FROM must be git or path, not '$from'" >&2
    exit 2
    ;;
esac

if [ "${BATON_INSTALL_DRY_RUN:-}" = 1 ]; then
  printf '%q ' "${cmd[@]}"
  echo
  exit 0
fi
command -v cargo >/dev/null || { echo "baton: cargo is needed to build baton (install Rust first)" >&2; exit 1; }
"${cmd[@]}"
echo "$wanted" > "$stamp"
add_to_path
