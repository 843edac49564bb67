#!/usr/bin/env bash
# Installs the Debian packages the test suite needs: a real PostgreSQL server (started on
# loopback by tests/conftest.py) and chromium (driven by Playwright in the browser test).
# Idempotent: does nothing when both are already present. Needs root (CI and dev boxes are).
set -euo pipefail

need=()
# PG_BINDIR (a non-Debian PostgreSQL) is honoured by tests/_postgres.py too.
if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/initdb" ]; then
  :
elif ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
[ -x /usr/bin/chromium ] || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-system-deps: need root to apt-get install ${need[*]}; run: sudo $0" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
for attempt in 1 2 3; do
  # apt's lock may be held by another installer for a moment: retry instead of failing
  if apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=120 "${need[@]}"; then
    exit 0
  fi
  echo "install-system-deps: apt-get failed (attempt $attempt), retrying" >&2
  sleep $((attempt * 5))
done
echo "install-system-deps: could not install ${need[*]}" >&2
exit 1
