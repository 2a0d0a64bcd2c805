"""The one table: printed with Rich, saved as Markdown and JSON under bench/results/."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.loadgen import WrkResult

COLUMNS = (
    "scenario",
    "req/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "errors",
    "peak RSS MiB",
    "limit req/s",
    "ratio",
    "other CPU %",
)


@dataclass
class Row:
    scenario: str
    server: str
    result: WrkResult
    peak_rss: int
    note: str = ""
    limit: WrkResult | None = None
    limit_peak_rss: int = 0
    other_cpu: float = 0.0
    limit_other_cpu: float = 0.0

    @property
    def ratio(self) -> float | None:
        if self.limit is None or not self.limit.per_second:
            return None
        return self.result.per_second / self.limit.per_second

    def cells(self) -> list[str]:
        r = self.result
        return [
            self.scenario,
            f"{r.per_second:,.0f}",
            f"{r.p50_ms:,.1f}",
            f"{r.p95_ms:,.1f}",
            f"{r.p99_ms:,.1f}",
            f"{r.errors:,}",
            f"{self.peak_rss / 2**20:,.0f}",
            f"{self.limit.per_second:,.0f}" if self.limit else "",
            f"{self.ratio:.2f}" if self.ratio is not None else "",
            f"{self.other_cpu:.0f}" + (f" / {self.limit_other_cpu:.0f}" if self.limit else ""),
        ]

    def as_dict(self) -> dict[str, Any]:
        out = {
            "scenario": self.scenario,
            "server": self.server,
            "note": self.note,
            "per_second": self.result.per_second,
            "peak_rss_mib": self.peak_rss / 2**20,
            "other_cpu_percent": self.other_cpu,
            "result": asdict(self.result),
        }
        if self.limit is not None:
            out |= {
                "limit_per_second": self.limit.per_second,
                "limit_peak_rss_mib": self.limit_peak_rss / 2**20,
                "ratio": self.ratio,
                "limit_other_cpu_percent": self.limit_other_cpu,
                "limit": asdict(self.limit),
            }
        return out


@dataclass
class Report:
    title: str
    command: str
    settings: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self) -> Table:
        table = Table(title=self.title)
        for column in COLUMNS:
            table.add_column(column, justify="left" if column == "scenario" else "right")
        for row in self.rows:
            table.add_row(*row.cells())
        return table

    def markdown(self) -> str:
        lines = [f"# {self.title}", "", f"`{self.command}`", ""]
        lines.append("| " + " | ".join(COLUMNS) + " |")
        lines.append("| --- | " + " | ".join("---:" for _ in COLUMNS[1:]) + " |")
        for row in self.rows:
            cells = row.cells()
            cells[0] = f"`{cells[0]}`"
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        for row in self.rows:
            lines.append(f"* `{row.scenario}`: {row.note}")
        if self.notes:
            lines.append("")
            lines += [f"* {n}" for n in self.notes]
        lines.append("")
        lines.append("Settings: " + ", ".join(f"{k}={v}" for k, v in self.settings.items()))
        return "\n".join(lines) + "\n"

    def save(self, folder: Path, console: Console) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        (folder / f"{stamp}.md").write_text(self.markdown())
        data = {
            "title": self.title,
            "command": self.command,
            "settings": self.settings,
            "notes": self.notes,
            "rows": [r.as_dict() for r in self.rows],
        }
        path = folder / f"{stamp}.json"
        path.write_text(json.dumps(data, indent=2))
        console.print(f"Saved {folder / stamp}.md and .json")
        return path
