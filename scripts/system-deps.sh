#!/usr/bin/env bash
# Install what the tests need from the machine's packages, only when it is missing.
set -euo pipefail
missing=()
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql postgresql-contrib)
fi
# PgBouncer: the transaction-pooling test runs the smoke flows through the machine's own.
if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
  missing+=(pgbouncer)
fi
if ! command -v chromium >/dev/null 2>&1; then
  missing+=(chromium)
fi
if ! fc-list 2>/dev/null | grep -qi "dejavu\|noto\|liberation"; then
  missing+=(fonts-dejavu-core)
fi
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "Please install: ${missing[*]} (sudo apt-get install -y ${missing[*]})" >&2
  exit 1
fi
echo "Installing ${missing[*]} from the machine's packages…"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
