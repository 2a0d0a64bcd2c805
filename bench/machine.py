"""How busy the machine is with work that is not the bench's own.

The bench, its servers, wrk and its PostgreSQL share two cores with whatever else runs here.
`OtherLoad` measures the CPU used meanwhile by every other process (total busy time from
/proc/stat less the ticks of the bench's process tree and of its postmaster's), so each row can say
how much of the machine it did not have; `wait_for_quiet` holds a scenario back until that share
falls, within a bound.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from bench.servers import _children

CPUS = os.cpu_count() or 1


def _busy_total() -> tuple[int, int]:
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def _ticks(pid: int, *, reaped: bool) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return 0
    fields = stat[stat.rfind(b")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped:  # children that ended and were waited for (wrk runs, PostgreSQL backends)
        ticks += int(fields[13]) + int(fields[14])
    return ticks


def own_ticks(roots: list[int]) -> int:
    tree = _children()
    total = 0
    for root in roots:
        total += _ticks(root, reaped=True)
        todo = list(tree.get(root, []))
        while todo:
            pid = todo.pop()
            total += _ticks(pid, reaped=True)
            todo += tree.get(pid, [])
    return total


@dataclass
class OtherLoad:
    """CPU share (0-100 % of all cores) used by processes outside `roots` between start and stop."""

    roots: list[int]
    _start: tuple[int, int, int] = (0, 0, 0)
    share: float = 0.0
    samples: list[float] = field(default_factory=list)

    def start(self) -> OtherLoad:
        busy, total = _busy_total()
        self._start = (busy, total, own_ticks(self.roots))
        return self

    def stop(self) -> float:
        busy, total = _busy_total()
        ours = own_ticks(self.roots)
        b0, t0, o0 = self._start
        elapsed = max(1, total - t0)
        self.share = max(0.0, 100.0 * ((busy - b0) - (ours - o0)) / elapsed)
        return self.share


def other_load(roots: list[int], seconds: float = 1.0) -> float:
    meter = OtherLoad(roots).start()
    time.sleep(seconds)
    return meter.stop()


def wait_for_quiet(roots: list[int], *, threshold: float, patience: float) -> float:
    """Wait (at most `patience` seconds) until others use less than `threshold` % of the CPUs."""
    deadline = time.monotonic() + patience
    share = other_load(roots)
    while share >= threshold and time.monotonic() < deadline:
        share = other_load(roots)
    return share


def postmaster_pid(datadir: str) -> int | None:
    try:
        with open(os.path.join(datadir, "postmaster.pid")) as handle:
            return int(handle.readline().strip())
    except (OSError, ValueError):
        return None
