"""What the deployment files promise beyond schema validity (scripts/check-deploy.sh checks that).

Kubernetes: probes, resources, hardening, spreading, an autoscaler and a disruption budget per
service, selectors that select, the database reached through the pooler and the read-only
replicas, the migration and housekeeping commands. Compose: the migration runs first, the
gateway twice, no secret in the file. The image: non-root, a health check, the lock.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SERVICES = ("core", "gateway", "portal")
PLACEHOLDERS = {"changeme"}

Doc = dict[str, Any]


def manifests() -> list[Doc]:
    docs: list[Doc] = []
    for path in sorted(K8S.rglob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    return docs


def find(kind: str, name: str | None = None) -> list[Doc]:
    return [d for d in manifests() if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(kind: str, name: str) -> Doc:
    found = find(kind, name)
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_spec(doc: Doc) -> Doc:
    spec: Doc = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]  # type: ignore[no-any-return]


def env_of(container: Doc) -> dict[str, Doc]:
    return {item["name"]: item for item in container.get("env", [])}


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


WORKLOADS = [("Deployment", f"erx-{s}") for s in SERVICES] + [
    ("Job", "erx-migrate"),
    ("CronJob", "erx-purge"),
]


@pytest.mark.parametrize(("kind", "name"), WORKLOADS)
def test_every_pod_is_hardened(kind: str, name: str) -> None:
    spec = pod_spec(one(kind, name))
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001  # the image's fixed UID
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == "erx-app"
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
        assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/var/lib/erx", "/tmp"} <= mounts, "a read-only root needs these writable"  # noqa: S108
        assert container["image"] == "erx", "the image is set once, by deploy/k8s/release"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_is_probed_spread_scaled_and_protected(service: str) -> None:
    deployment = one("Deployment", f"erx-{service}")
    assert "replicas" not in deployment["spec"], "the HorizontalPodAutoscaler owns the count"
    template = deployment["spec"]["template"]
    labels = template["metadata"]["labels"]
    assert selects(deployment["spec"]["selector"], labels)
    (container,) = template["spec"]["containers"]
    assert container["args"] == [service]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert {c["topologyKey"] for c in template["spec"]["topologySpreadConstraints"]} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    grace = template["spec"]["terminationGracePeriodSeconds"]
    assert grace > 25 + 5, "uvicorn's graceful shutdown and the preStop pause must fit"

    hpa = one("HorizontalPodAutoscaler", f"erx-{service}")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": f"erx-{service}",
    }
    assert hpa["spec"]["minReplicas"] >= 2
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]

    pdb = one("PodDisruptionBudget", f"erx-{service}")
    assert pdb["apiVersion"] == "policy/v1"
    assert selects(pdb["spec"]["selector"], labels)

    svc = one("Service", f"erx-{service}")
    assert svc["spec"]["selector"].items() <= labels.items()


@pytest.mark.parametrize("service", SERVICES)
def test_services_write_through_the_pooler(service: str) -> None:
    (container,) = pod_spec(one("Deployment", f"erx-{service}"))["containers"]
    env = env_of(container)
    pooler = one("Pooler", "erx-pooler-rw")
    assert pooler["spec"]["pgbouncer"]["poolMode"] == "transaction"
    url = urlsplit(env["DATABASE_URL"]["value"])
    assert url.scheme == "postgresql+asyncpg"
    assert url.hostname == pooler["metadata"]["name"]
    assert url.password == "$(DB_PASSWORD)", "the password comes from the Secret, never the manifest"
    assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "erx-db-app", "key": "password"}
    assert env["ERX_SIGNING_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "erx-app"
    assert env["ERX_IDENTITY_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "erx-app"
    names = list(env)
    assert names.index("DB_PASSWORD") < names.index("DATABASE_URL"), "$(VAR) needs VAR defined first"


def test_portal_reads_from_the_replicas() -> None:
    (container,) = pod_spec(one("Deployment", "erx-portal"))["containers"]
    cluster = one("Cluster", "erx-db")
    url = urlsplit(env_of(container)["READ_DATABASE_URL"]["value"])
    assert url.hostname == f"{cluster['metadata']['name']}-ro"


def test_migration_and_housekeeping() -> None:
    job = one("Job", "erx-migrate")
    (container,) = pod_spec(job)["containers"]
    assert container["args"] == ["migrate"]
    # Straight to the primary: Alembic keeps one session, which transaction pooling would not.
    assert urlsplit(env_of(container)["DATABASE_URL"]["value"]).hostname == "erx-db-rw"
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"

    cron = one("CronJob", "erx-purge")
    (container,) = pod_spec(cron)["containers"]
    assert container["args"] == ["purge"]
    minute, hour, *_ = cron["spec"]["schedule"].split()
    assert minute.isdigit() and hour == "*", "hourly"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"


def test_database_has_a_synchronous_standby_and_continuous_backup() -> None:
    cluster = one("Cluster", "erx-db")
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    spec = cluster["spec"]
    assert spec["instances"] >= 3
    sync = spec["postgresql"]["synchronous"]
    assert sync["number"] >= 1 and sync["dataDurability"] == "required"
    assert spec["affinity"]["podAntiAffinityType"] == "required"
    archivers = [p for p in spec["plugins"] if p.get("isWALArchiver")]
    assert len(archivers) == 1
    store = one("ObjectStore", archivers[0]["parameters"]["barmanObjectName"])
    assert store["spec"]["configuration"]["destinationPath"].startswith("s3://")
    assert store["spec"]["retentionPolicy"]
    backup = one("ScheduledBackup", "erx-db-nightly")
    assert backup["spec"]["cluster"]["name"] == "erx-db"
    assert backup["spec"]["method"] == "plugin"
    assert backup["spec"]["pluginConfiguration"]["name"] == archivers[0]["name"]
    pooler = one("Pooler", "erx-pooler-rw")
    assert pooler["spec"]["cluster"]["name"] == "erx-db"
    assert pooler["spec"]["type"] == "rw"


def test_network_policies_deny_by_default() -> None:
    policies = {p["metadata"]["name"]: p for p in find("NetworkPolicy")}
    deny = policies["default-deny-ingress"]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"] and "ingress" not in deny
    app_ports = [
        port["port"] for rule in policies["erx-apps-ingress"]["spec"]["ingress"] for port in rule["ports"]
    ]
    assert app_ports == ["http"]


def test_secret_example_holds_only_placeholders() -> None:
    text = (K8S / "secret.example.yaml").read_text(encoding="utf-8")
    assert "EXAMPLE ONLY" in text
    for doc in yaml.safe_load_all(text):
        assert doc["kind"] == "Secret"
        assert set(doc["stringData"].values()) <= PLACEHOLDERS
    assert not [d for d in manifests() if d["kind"] == "Secret" and d.get("data")], (
        "no real secret is committed"
    )


# ---- Compose ---------------------------------------------------------------------------------


def url_host(url: str) -> str:
    """The host of a database URL whose password is a ${VAR:?message} interpolation."""
    match = re.search(r"@([\w.-]+)(?::\d+)?/\w+$", url)
    assert match, url
    return match.group(1)


def compose() -> Doc:
    doc: Doc = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8"))
    return doc


def test_compose_runs_the_migration_before_the_services() -> None:
    services = compose()["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    assert url_host(services["migrate"]["environment"]["DATABASE_URL"]) == "postgres"
    for name in (*SERVICES, "purge"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert url_host(services[name]["environment"]["DATABASE_URL"]) == "pgbouncer"
    for name in SERVICES:
        assert services[name]["command"] == [name]
        assert services[name]["read_only"] is True
        assert services[name]["cap_drop"] == ["ALL"]
    assert services["gateway"]["deploy"]["replicas"] == 2
    assert services["pgbouncer"]["environment"]["POOL_MODE"] == "transaction"
    assert services["postgres"]["image"].endswith("postgres:15-bookworm}")
    assert "healthcheck" in services["postgres"]
    proxy = services["proxy"]
    assert "./compose/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in proxy["volumes"]
    assert all(port.startswith("127.0.0.1:") for port in proxy["ports"]), "loopback only"
    published = [name for name, service in services.items() if "ports" in service]
    assert published == ["proxy"]


def test_compose_holds_no_secret() -> None:
    text = (ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8")
    for name in ("ERX_SIGNING_KEY", "ERX_IDENTITY_KEY", "POSTGRES_PASSWORD", "DB_PASSWORD"):
        for value in re.findall(rf"\b{name}: (.*)", text):
            assert value.startswith("${"), f"{name} must come from the env file, not {value!r}"
    example = (ROOT / "deploy" / "compose.env.example").read_text(encoding="utf-8")
    values = dict(
        line.split("=", 1)
        for line in example.splitlines()
        if line and not line.startswith("#") and "=" in line
    )
    assert {v.strip("'") for v in values.values()} <= PLACEHOLDERS
    assert "deploy/compose.env" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()


# ---- the image -------------------------------------------------------------------------------


def test_image_is_built_from_the_lock_and_runs_unprivileged() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    stages = re.findall(r"(?m)^FROM\s+\S+\s+AS\s+(\w+)", text)
    assert stages == ["builder", "runtime"]
    assert "--require-hashes -r requirements/run.txt" in text
    assert re.search(r"pip install [^\n]*--no-deps \.", text)
    runtime = text[text.index("AS runtime") :]
    assert "COPY --from=builder /opt/venv /opt/venv" in runtime
    assert re.search(r"(?m)^USER \$\{ERX_UID\}:\$\{ERX_GID\}$", runtime)
    assert re.search(r"(?m)^ARG ERX_UID=10001$", runtime)
    assert re.search(r"(?m)^HEALTHCHECK .*\n\s+CMD \[\"erx-entrypoint\", \"healthcheck\"\]", runtime)
    assert "PYTHONDONTWRITEBYTECODE=1" in runtime
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ignore[ignore.index("*") - 1].startswith("#") and "*" in ignore, "an allow-list"
    assert "!.venv" not in ignore and "!tests/" not in ignore


def test_entrypoint_knows_every_service() -> None:
    text = (ROOT / "deploy" / "docker" / "entrypoint.sh").read_text(encoding="utf-8")
    for command, target in [
        ("core", "erx.app:create_core_app"),
        ("gateway", "erx.app:create_gateway_app"),
        ("portal", "erx.app:create_portal_app"),
        ("all", "erx.app:create_app"),
        ("migrate", "erx db upgrade"),
        ("purge", "erx maintenance purge"),
    ]:
        assert re.search(rf"(?m)^\s+{command}\) .*{re.escape(target)}", text), command
    for flag in (
        "--factory",
        "--loop uvloop",
        "--http httptools",
        # The app applies ERX_TRUSTED_PROXIES itself (kit.proxy): uvicorn must not rewrite first.
        "--no-proxy-headers",
        "--no-access-log",
        "PROMETHEUS_MULTIPROC_DIR",
    ):
        assert flag in text
    assert "--forwarded-allow-ips" not in text
