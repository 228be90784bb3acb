#!/usr/bin/env bash
# `make fuzz`: runs every cargo-fuzz target in fuzz/ for a bounded time.
#
#   FUZZ_SECONDS   fuzzing time per target, in seconds (default 30)
#   FUZZ_TARGETS   which targets (default: all of them, as listed by cargo fuzz)
#   FUZZ_TOOLCHAIN nightly | stable (default: nightly when rustup has or can
#                  install it, else stable)
#
# libFuzzer needs nightly-only compiler flags (-Z sanitizer, coverage passes).
# The script uses rustup's nightly toolchain when there is one (or can be
# installed); otherwise it builds with the stable toolchain and
# RUSTC_BOOTSTRAP=1, which lets stable rustc accept those flags.
# New inputs go to fuzz/corpus/<target> (seeded from fuzz/seeds/<target>);
# crashes are written to fuzz/artifacts/<target> and fail the run.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/baton-target}
seconds=${FUZZ_SECONDS:-30}

bash tests/tooling/prereqs.sh
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz from crates.io" >&2
  cargo install --locked --quiet cargo-fuzz
fi

toolchain=()
if [ "${FUZZ_TOOLCHAIN:-}" = stable ]; then
  echo "fuzz: FUZZ_TOOLCHAIN=stable: building with stable and RUSTC_BOOTSTRAP=1" >&2
  export RUSTC_BOOTSTRAP=1
elif rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
elif command -v rustup >/dev/null 2>&1 \
  && timeout 300 rustup toolchain install nightly --profile minimal >/dev/null 2>&1; then
  toolchain=(+nightly)
else
  echo "fuzz: no nightly toolchain can be had here; building with stable and RUSTC_BOOTSTRAP=1" >&2
  export RUSTC_BOOTSTRAP=1
fi
echo "fuzz: $(rustc "${toolchain[@]}" --version), $(cargo fuzz --version), ${seconds} s per target" >&2

if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list)
fi

failed=()
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target"
  echo "fuzz: $target for ${seconds} s" >&2
  # -timeout: one input taking over 10 s counts as a hang.
  if ! cargo "${toolchain[@]}" fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
      -max_total_time="$seconds" -timeout=10 -print_final_stats=1; then
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (reproducers in fuzz/artifacts/<target>/; replay with" \
    "cargo ${toolchain[*]} fuzz run <target> <file>)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${seconds} s each without a failure" >&2
