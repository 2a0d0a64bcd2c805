"""Servers under test, started as production runs them, and the memory they hold.

* the system: `uvicorn --factory erx.app:create_app --workers 2 --loop uvloop --http httptools`
  or granian (`--interface asgi --workers 2 --loop uvloop --factory`);
* the limit apps of bench/minimal, with the same server flags.

Resident memory is the sum of VmRSS of the server's whole process tree (master and workers),
read from /proc and sampled in a thread while the load runs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from bench import project

SERVERS = ("uvicorn", "granian")


def command(server: str, target: str, port: int, workers: int, *, factory: bool) -> list[str]:
    if server == "uvicorn":
        cmd = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port)]
        cmd += ["--workers", str(workers), "--loop", "uvloop", "--http", "httptools"]
        cmd += ["--no-access-log", "--log-level", "warning", "--timeout-keep-alive", "30"]
        return [*cmd, "--factory"] if factory else cmd
    if server == "granian":
        cmd = [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        cmd += ["--workers", str(workers), "--loop", "uvloop", "--http", "1", "--no-ws"]
        cmd += ["--log-level", "warning", "--no-access-log"]
        return [*cmd, "--factory", target] if factory else [*cmd, target]
    raise ValueError(f"unknown server {server!r}; choose one of {SERVERS}")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command may hold spaces and parentheses: the fields after the last ')' are fixed.
        fields = stat[stat.rfind(b")") + 2 :].split()
        tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def tree_pids(root: int) -> list[int]:
    tree = _children()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += tree.get(pid, [])
    return found


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(root: int) -> int:
    return sum(rss_bytes(pid) for pid in tree_pids(root))


@dataclass
class RssSampler:
    """Samples the tree's RSS every `interval` seconds; `peak` is the highest sum seen."""

    root: int
    interval: float = 0.25
    peak: int = 0
    samples: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            value = tree_rss(self.root)
            self.peak = max(self.peak, value)
            self.samples.append((time.monotonic() - started, value))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


@dataclass
class Server:
    """One server process tree on 127.0.0.1:port."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_path: str = project.READY_PATH, timeout: float = 90.0) -> None:
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            self.cmd, env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=5) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log}")
                try:
                    if client.get(self.url + ready_path).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            else:
                self.stop()
                raise RuntimeError(f"{self.name} did not become ready in {timeout:.0f}s; see {self.log}")
        # Both workers must be up before the load starts: wait until the tree stops growing.
        last, stable = -1, 0
        while stable < 4 and time.monotonic() < deadline:
            count = len(tree_pids(self.process.pid))
            stable = stable + 1 if count == last else 0
            last = count
            time.sleep(0.25)

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        return [p for p in tree_pids(self.process.pid) if p != self.process.pid and _is_python(p)]

    def rss(self) -> int:
        assert self.process is not None
        return tree_rss(self.process.pid)

    def sampler(self) -> RssSampler:
        assert self.process is not None
        return RssSampler(self.process.pid)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _is_python(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"python" in handle.read().split(b"\0")[0]
    except OSError:
        return False


def server_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ERX_", "DATABASE_URL", "GRANIAN_", "UVICORN_"))
    }
    env.update(extra)
    return env


def cpu_ticks(pid: int) -> int:
    """User + system clock ticks a process has used (to pick the busiest worker)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return 0
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def free_port() -> int:
    """A port nothing listens on now (other programs on this machine may hold fixed ones)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
