"""The load generator: wrk (C, LuaJIT) replaying pre-built requests, and the parse of its report."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("wrk") / "requests.lua"
MARKER = "BENCH_JSON "


@dataclass(frozen=True)
class Request:
    """One request as the Lua script reads it; `token` is a 1-based index into the tokens file."""

    method: str
    path: str
    token: int = 0
    idempotent: bool = False
    body: str = ""

    def line(self) -> str:
        if "\t" in self.body or "\n" in self.body:
            raise ValueError("request bodies must be one line without tabs")
        return "\t".join([self.method, self.path, str(self.token), "i" if self.idempotent else "", self.body])


def write_requests(path: Path, requests: Iterable[Request]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for request in requests:
            handle.write(request.line() + "\n")
            count += 1
    if count == 0:
        raise ValueError(f"no requests for {path}")
    return count


def write_tokens(path: Path, tokens: list[str]) -> None:
    path.write_text("".join(t + "\n" for t in tokens))


@dataclass
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    statuses: dict[str, int] = field(default_factory=dict)
    wrapped: int = 0
    samples: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


def parse(output: str) -> WrkResult:
    """Read the `BENCH_JSON` line that requests.lua's done() prints among wrk's own report."""
    for line in output.splitlines():
        if line.startswith(MARKER):
            data: dict[str, Any] = json.loads(line[len(MARKER) :])
            break
    else:
        raise ValueError("wrk printed no BENCH_JSON line:\n" + output[-2000:])
    latency = data["latency_us"]
    statuses = {str(k): int(v) for k, v in data.get("statuses", {}).items()}
    non_2xx = sum(v for k, v in statuses.items() if not k.startswith("2"))
    sockets = data["socket_errors"]
    return WrkResult(
        requests=int(data["requests"]),
        seconds=float(data["duration_us"]) / 1e6,
        p50_ms=float(latency["p50"]) / 1000,
        p95_ms=float(latency["p95"]) / 1000,
        p99_ms=float(latency["p99"]) / 1000,
        max_ms=float(latency["max"]) / 1000,
        non_2xx=non_2xx,
        socket_errors=int(sockets["connect"])
        + int(sockets["read"])
        + int(sockets["write"])
        + int(sockets["timeout"]),
        statuses=statuses,
        wrapped=int(data.get("wrapped", 0)),
        samples=[str(s) for s in data.get("samples", [])],
    )


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: `make bench` installs it (apt-get install -y wrk)")
    return found


def run(
    url: str,
    requests_file: Path,
    tokens_file: Path | None,
    *,
    threads: int,
    connections: int,
    duration: float,
    timeout: float = 10.0,
) -> WrkResult:
    """Run wrk for `duration` seconds against `url`; the subprocess is bounded in time too."""
    env = {
        **os.environ,
        "BENCH_REQUESTS": str(requests_file),
        "BENCH_TOKENS": str(tokens_file or ""),
        "BENCH_RUN": secrets.token_hex(6),
        "BENCH_THREADS": str(threads),
    }
    cmd = [
        wrk_binary(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={timeout:g}s",
        "--latency",
        "-s",
        str(SCRIPT),
        url,
    ]
    done = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=duration + timeout + 60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-2000:]}")
    return parse(done.stdout)
