#!/usr/bin/env bash
# The load generator of `make bench`: wrk (with LuaJIT) from the machine's packages, when missing.
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "Please install wrk (sudo apt-get install -y wrk)" >&2
  exit 1
fi
echo "Installing wrk from the machine's packages…"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends wrk >/dev/null
