#!/usr/bin/env bash
# Offline infrastructure checks for baton:
#   1. checkov (static IaC analysis) on infra/ -- zero failed checks allowed;
#   2. pytest tests/infra -- contract tests between infra/ and the Rust code,
#      which read the Rust code with tests/infra/sdk-calls (built here first),
#      and the CI role's policy evaluated by an IAM policy evaluator
#      (@cloud-copilot/iam-simulate, installed here into
#      tests/infra/iam-eval/node_modules with `npm ci` from its lockfile).
# Needs Python 3.11+, cargo, node and npm, and PyPI, crates.io and the npm
# registry on a cold cache. No terraform binary, no provider download, no AWS
# credentials. Exits non-zero on any failure.
#
# Venvs (both under the gitignored /.venv of the repo):
#   .venv                  pytest + python-hcl2   (tests/infra/requirements.txt)
#   .venv/tools/checkov    checkov, isolated      (tests/infra/requirements-checkov.txt)
# Each carries a stamp with the hash of its requirements file; pip only runs
# when the venv is missing or the requirements changed, so a warm run is fast.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="$ROOT/.venv"
CHECKOV_VENV="$VENV/tools/checkov"
PYTHON="${PYTHON:-python3}"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ensure_venv DIR REQUIREMENTS: create DIR as a venv if needed and install
# REQUIREMENTS into it unless the stamp says they are already there.
ensure_venv() {
    local dir="$1" req="$2" stamp="$1/.baton-requirements.sha256" want
    if [[ -x "$dir/bin/python" ]] && ! "$dir/bin/python" -c '' 2>/dev/null; then
        echo "run.sh: $dir is broken (its python does not run); recreating" >&2
        rm -rf "$dir"
    fi
    if [[ ! -x "$dir/bin/python" ]]; then
        "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
            echo "run.sh: need Python >= 3.11 (set PYTHON=...)" >&2
            exit 2
        }
        echo "run.sh: creating venv $dir"
        "$PYTHON" -m venv "$dir"
    fi
    want="$( { cat "$req"; "$dir/bin/python" -V; } | sha256sum | cut -d' ' -f1)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    echo "run.sh: installing $(basename "$req") into $dir"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
    echo "$want" >"$stamp"
}

t0=$(now)
ensure_venv "$VENV" "$HERE/requirements.txt"
ensure_venv "$CHECKOV_VENV" "$HERE/requirements-checkov.txt"
echo "run.sh: venvs ready in $(elapsed "$t0") s"

# The IAM policy evaluator, pinned by package-lock.json; like the venvs, a
# stamp with the lockfile's hash skips `npm ci` on a warm run.
ensure_node_modules() {
    local dir="$1" stamp="$1/node_modules/.baton-lock.sha256" want
    command -v npm >/dev/null || { echo "run.sh: need node and npm" >&2; exit 2; }
    want="$( { cat "$dir/package-lock.json"; node --version; } | sha256sum | cut -d' ' -f1)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    echo "run.sh: npm ci in $dir"
    (cd "$dir" && npm ci --silent --no-audit --no-fund)
    echo "$want" >"$stamp"
}
t3=$(now)
ensure_node_modules "$HERE/iam-eval"
echo "run.sh: IAM evaluator ready in $(elapsed "$t3") s"

cd "$ROOT"

# checkov: terraform framework only, nothing fetched (--skip-download: no
# policy/guideline download; external modules are not downloaded by default
# and infra/ uses only local module sources). Every skip is inline in the
# .tf files as  #checkov:skip=CKV_...:reason
t1=$(now)
echo "run.sh: checkov -d infra --framework terraform"
BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false \
    "$CHECKOV_VENV/bin/checkov" \
    --directory infra \
    --framework terraform \
    --skip-download \
    --download-external-modules false \
    --compact --quiet
echo "run.sh: checkov passed in $(elapsed "$t1") s"

# The contract tests' Rust reader (its own small cargo workspace: syn and
# three dependencies). infra_contract.py builds it too when run without this
# script; building it here shows its time and any build error on their own.
[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"
t2=$(now)
echo "run.sh: cargo build tests/infra/sdk-calls"
cargo build --quiet --locked --manifest-path "$HERE/sdk-calls/Cargo.toml"
echo "run.sh: sdk-calls built in $(elapsed "$t2") s"

# pytest's summary stays the last line of output; no __pycache__ in the tree
# (it is not gitignored).
PYTHONDONTWRITEBYTECODE=1 exec "$VENV/bin/python" -m pytest tests/infra -q -p no:cacheprovider "$@"
