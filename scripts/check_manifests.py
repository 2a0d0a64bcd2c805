"""Validate every Kubernetes manifest under deploy/k8s without a cluster (scripts/check-deploy.sh).

* Built-in kinds against the Kubernetes OpenAPI schemas that kubernetes-validate ships (offline),
  strictly (unknown fields are errors), for each Kubernetes version given; a kind it has no
  schema for is an error here, not the CLI's warning.
* CloudNativePG and Barman Cloud plugin kinds against deploy/schemas/cnpg.schema.json, a reduced
  schema written from their CRDs; the pod template a Pooler embeds against Kubernetes' own.
* Kustomizations: every resource and component they name exists, and every manifest is named by
  one of them (secret.example.yaml excepted: it must never be applied).
* Every namespaced object says `namespace: erx`, so `kubectl apply -f` works as `-k` does.

`--self-test` first feeds known-bad manifests and fails unless each one is refused.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
CRD_SCHEMA = ROOT / "deploy" / "schemas" / "cnpg.schema.json"
CRD_GROUPS = {"postgresql.cnpg.io", "barmancloud.cnpg.io"}
KUSTOMIZE_KINDS = {"Kustomization", "Component"}
# Manifests no kustomization may include.
EXAMPLES = {K8S / "secret.example.yaml"}
NAMESPACE = "erx"
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass", "StorageClass"}
# The oldest Kubernetes erx supports and the newest this kubernetes-validate knows.
DEFAULT_VERSIONS = ["1.30", ".".join(kubernetes_validate.latest_version().split(".")[:2])]

Doc = dict[str, Any]


def load_docs(path: Path) -> list[Doc]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def describe(doc: Doc) -> str:
    return f"{doc.get('kind', '?')}/{doc.get('metadata', {}).get('name', '?')}"


class Checker:
    def __init__(self, versions: list[str]) -> None:
        self.versions = versions
        schema = json.loads(CRD_SCHEMA.read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
        self.crd_validator = jsonschema.Draft202012Validator(schema)

    def kubernetes(self, doc: Doc) -> Iterator[str]:
        for version in self.versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path) or "(root)"
                yield f"Kubernetes {version}: {where}: {exc.message}"
            except kubernetes_validate.SchemaNotFoundError:
                yield f"Kubernetes {version} has no schema for {doc.get('apiVersion')} {doc.get('kind')}"

    def crd(self, doc: Doc) -> Iterator[str]:
        for error in sorted(self.crd_validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
            where = ".".join(str(p) for p in error.absolute_path) or "(root)"
            yield f"CRD schema: {where}: {error.message}"
        template = doc.get("spec", {}).get("template") if doc.get("kind") == "Pooler" else None
        if template is not None:
            wrapper = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "pooler"}}
            wrapper["template"] = template
            for message in self.kubernetes(wrapper):
                yield f"spec.template: {message}"

    def document(self, doc: Doc) -> Iterator[str]:
        api_version = str(doc.get("apiVersion", ""))
        group = api_version.split("/")[0] if "/" in api_version else ""
        yield from (self.crd(doc) if group in CRD_GROUPS else self.kubernetes(doc))
        if doc.get("kind") not in CLUSTER_SCOPED and doc.get("metadata", {}).get("namespace") != NAMESPACE:
            yield f"metadata.namespace must be {NAMESPACE!r}"


def kustomize_references(path: Path, doc: Doc) -> tuple[set[Path], list[str]]:
    """Files a kustomization includes (directories resolved to their kustomization)."""
    files: set[Path] = set()
    errors: list[str] = []
    for entry in [*doc.get("resources", []), *doc.get("components", [])]:
        target = (path.parent / entry).resolve()
        if target.is_dir():
            target = target / "kustomization.yaml"
        if not target.is_file():
            errors.append(f"names {entry!r}, which does not exist")
            continue
        if not target.is_relative_to(K8S):
            errors.append(f"names {entry!r}, outside deploy/k8s")
        files.add(target)
    return files, errors


def check_tree(checker: Checker) -> int:
    failures = 0
    referenced: set[Path] = set()
    manifests: list[Path] = []
    for path in sorted(K8S.rglob("*.yaml")):
        rel = path.relative_to(ROOT)
        docs = load_docs(path)
        kinds = {doc.get("kind") for doc in docs}
        if kinds & KUSTOMIZE_KINDS:
            files, errors = kustomize_references(path, docs[0])
            referenced |= files
            for error in errors:
                print(f"FAIL {rel}: {error}")
            failures += len(errors)
            continue
        manifests.append(path)
        problems = [f"{describe(doc)}: {message}" for doc in docs for message in checker.document(doc)]
        for problem in problems:
            print(f"FAIL {rel}: {problem}")
        failures += len(problems)
        if not problems:
            print(f"ok   {rel}: {', '.join(describe(doc) for doc in docs)}")
    for path in manifests:
        rel = path.relative_to(ROOT)
        if path in EXAMPLES and path in referenced:
            print(f"FAIL {rel}: an example with placeholders is included by a kustomization")
            failures += 1
        elif path not in EXAMPLES and path not in referenced:
            print(f"FAIL {rel}: no kustomization includes it")
            failures += 1
    return failures


def self_test(checker: Checker) -> int:
    """Each of these must be refused; a validator that accepts them checks nothing."""
    deployment = load_docs(K8S / "apps" / "core.yaml")[0]
    cluster = load_docs(K8S / "database" / "cluster.yaml")[0]
    backup = load_docs(K8S / "database" / "scheduled-backup.yaml")[0]
    pooler = load_docs(K8S / "database" / "pooler.yaml")[0]
    bad: list[tuple[str, Doc]] = []

    doc = copy.deepcopy(deployment)
    doc["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    bad.append(("Deployment with a misspelt field", doc))
    doc = copy.deepcopy(deployment)
    doc["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8000"
    bad.append(("Deployment with a string port", doc))
    doc = copy.deepcopy(deployment)
    doc["apiVersion"] = "extensions/v1beta1"
    bad.append(("Deployment of a removed API version", doc))
    doc = copy.deepcopy(cluster)
    doc["spec"]["minSyncReplicas"] = 1
    bad.append(("Cluster with both synchronous and minSyncReplicas", doc))
    doc = copy.deepcopy(cluster)
    doc["spec"]["postgresql"]["parameters"]["max_connections"] = 400
    bad.append(("Cluster with a non-string parameter", doc))
    doc = copy.deepcopy(cluster)
    doc["spec"]["postgresql"]["parameters"]["synchronous_standby_names"] = "ANY 1 (*)"
    bad.append(("Cluster setting a parameter the operator owns", doc))
    doc = copy.deepcopy(cluster)
    doc["spec"]["instance"] = 3
    bad.append(("Cluster with a misspelt field", doc))
    doc = copy.deepcopy(backup)
    doc["spec"]["schedule"] = "0 19 * * *"
    bad.append(("ScheduledBackup with a five-field schedule", doc))
    doc = copy.deepcopy(pooler)
    doc["spec"]["pgbouncer"]["poolMode"] = "statement"
    bad.append(("Pooler in statement mode", doc))
    doc = copy.deepcopy(pooler)
    doc["spec"]["template"]["spec"]["containers"][0]["resources"]["limit"] = {}
    bad.append(("Pooler whose pod template has a misspelt field", doc))
    doc = copy.deepcopy(deployment)
    doc["metadata"].pop("namespace")
    bad.append(("Deployment without a namespace", doc))

    failures = 0
    for label, doc in bad:
        messages = list(checker.document(doc))
        if messages:
            print(f"ok   self-test refuses: {label} ({messages[0][:140]})")
        else:
            print(f"FAIL self-test accepted: {label}")
            failures += 1
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-k", "--kubernetes-version", action="append", dest="versions")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    checker = Checker(args.versions or DEFAULT_VERSIONS)
    print(f"kubernetes-validate {kubernetes_validate.__version__}, Kubernetes {', '.join(checker.versions)}")
    failures = self_test(checker) if args.self_test else 0
    failures += check_tree(checker)
    print(f"{failures} problem(s)" if failures else "all manifests valid")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
