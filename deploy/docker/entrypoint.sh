#!/bin/sh
# Entrypoint of the erx image. The first argument (or ERX_SERVICE when there is none) says what
# this container is:
#   core | gateway | portal | all   serve that ASGI app with uvicorn
#   migrate                         erx db upgrade (run once per release, before the new pods)
#   purge                           erx maintenance purge (housekeeping, hourly)
#   healthcheck                     GET /healthz on this container (used by HEALTHCHECK)
#   anything else                   run as given, e.g. `erx keys rotate`, `python -m …`
# Tunables (environment): PORT (8000), ERX_WORKERS (2), ERX_TRUSTED_PROXIES (addresses or
# networks whose X-Forwarded-For/-Proto are believed, comma-separated; default none: the app
# applies it itself, kit.proxy, so uvicorn runs with --no-proxy-headers),
# ERX_KEEPALIVE_SECONDS (75: longer than the proxy's upstream keepalive, so the proxy closes
# idle connections first and never reuses one the app has just closed),
# ERX_GRACEFUL_SECONDS (25: in-flight requests finish after SIGTERM, below the pod's 30 s grace).
set -eu

service="${1:-${ERX_SERVICE:-core}}"

serve() {
    # Every worker writes its metrics into one fresh directory; /metrics adds them up.
    PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/erx-metrics}"
    rm -rf "$PROMETHEUS_MULTIPROC_DIR"
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    export PROMETHEUS_MULTIPROC_DIR
    # Forwarded headers: the app believes them from ERX_TRUSTED_PROXIES only (one rule for every
    # deployment), so uvicorn leaves them alone; the app's JSON line replaces the access log.
    exec uvicorn --factory "$1" \
        --host 0.0.0.0 --port "${PORT:-8000}" \
        --workers "${ERX_WORKERS:-2}" \
        --loop uvloop --http httptools \
        --no-proxy-headers --no-access-log \
        --timeout-keep-alive "${ERX_KEEPALIVE_SECONDS:-75}" \
        --timeout-graceful-shutdown "${ERX_GRACEFUL_SECONDS:-25}" \
        --no-server-header
}

case "$service" in
    core) serve erx.app:create_core_app ;;
    gateway) serve erx.app:create_gateway_app ;;
    portal) serve erx.app:create_portal_app ;;
    all) serve erx.app:create_app ;;
    migrate) exec erx db upgrade ;;
    purge) exec erx maintenance purge ;;
    healthcheck)
        exec python -c 'import os, sys, urllib.request
url = "http://127.0.0.1:%s/healthz" % os.environ.get("PORT", "8000")
try:
    sys.exit(0 if urllib.request.urlopen(url, timeout=2).status == 200 else 1)
except Exception as exc:
    print(exc, file=sys.stderr)
    sys.exit(1)'
        ;;
    *)
        if [ "$#" -eq 0 ]; then
            echo "erx-entrypoint: unknown ERX_SERVICE '$service' (core, gateway, portal, all, migrate, purge)" >&2
            exit 64
        fi
        exec "$@"
        ;;
esac
