"""The Grafana dashboard asks only for metrics the apps expose, by labels they carry."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.metrics import MetricWrapperBase

from kit import metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "erx.json"
# Labels Prometheus adds to every series of a scraped target.
TARGET_LABELS = {"job", "instance", "pod", "namespace", "le"}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exposed() -> dict[str, set[str]]:
    """Every series name kit.metrics exposes, with its labels."""
    found: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for suffix in SUFFIXES[str(value._type)]:
                found[value._name + suffix] = set(value._labelnames)
    return found


def expressions() -> list[str]:
    board: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [target["expr"] for panel in board["panels"] for target in panel["targets"]]


def test_the_dashboard_is_grafana_json_with_panels() -> None:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    assert {v["name"] for v in board["templating"]["list"]} == {"datasource", "job"}
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)) >= 10
    for panel in board["panels"]:
        assert panel["type"] == "timeseries" and panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"


def test_every_query_names_exposed_metrics_and_labels() -> None:
    series = exposed()
    used: set[str] = set()
    for expr in expressions():
        names = set(re.findall(r"\b(erx_[a-z_]+)", expr))
        assert names, expr
        unknown = names - set(series)
        assert not unknown, f"{expr}: {unknown}"
        used |= names
        labels = set(series[next(iter(names))])
        for name in names:
            labels |= series[name]
        grouped = {g.strip() for group in re.findall(r"by \(([^)]*)\)", expr) for g in group.split(",")}
        matched = set(re.findall(r"([a-z_]+)=~?\"", expr))
        assert grouped | matched <= labels | TARGET_LABELS, expr
        assert 'job=~"$job"' in expr, "every query follows the service picker"
    # Every metric the apps expose has a panel.
    families = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in series}
    shown = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in used}
    assert families == shown
