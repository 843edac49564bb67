#!/usr/bin/env bash
# What a new user (and CI) does: clone the committed main into a temp dir, run the README's
# two commands there, and print how long each took. Runs RUNS times in a row (default 1);
# exits non-zero on the first red run. Uncommitted changes are not part of the clone.
#   bash scripts/fresh-clone-check.sh [RUNS]
# FRESH_CACHES=1 also gives each run empty uv/pip caches (downloads everything again).
set -euo pipefail
runs=${1:-1}
repo=$(git -C "$(dirname "${BASH_SOURCE[0]}")/.." rev-parse --show-toplevel)
rev=$(git -C "$repo" rev-parse --short HEAD)
for i in $(seq 1 "$runs"); do
  work=$(mktemp -d /tmp/hubkit-fresh-XXXXXX)
  git clone -q "$repo" "$work/hubkit"
  # CI lays shared/ beside the clone: the benchmarks find its reference data there
  [ -d "$repo/../shared" ] && ln -s "$(cd "$repo/.." && pwd)/shared" "$work/shared"
  if [ "${FRESH_CACHES:-0}" = 1 ]; then
    export UV_CACHE_DIR="$work/uv-cache" PIP_NO_CACHE_DIR=1
  fi
  cd "$work/hubkit"
  start=$(date +%s)
  CI=true make demo >"$work/demo.log" 2>&1 || { echo "run $i: make demo FAILED ($work/demo.log)"; exit 1; }
  demo=$(($(date +%s) - start))
  start=$(date +%s)
  CI=true bash .ci/run </dev/null >"$work/test.log" 2>&1 || {
    echo "run $i: make test FAILED ($work/test.log)"; tail -5 "$work/test.log"; exit 1; }
  tests=$(($(date +%s) - start))
  summary=$(grep -E '^=+ .*(passed|failed).* =+$' "$work/test.log" | tail -1 | tr -d '=' | xargs)
  echo "run $i ($rev): make demo ${demo} s; make test ${tests} s: ${summary}"
  cd /; rm -rf "$work"
done
