"""The per-process TTL cache stays small when it is only written to, and keeps its cap."""

from __future__ import annotations

import pytest

from kit.cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    found = Clock()
    monkeypatch.setattr("kit.cache.time.monotonic", found)
    return found


def test_expired_entries_go_as_new_ones_come(clock: Clock) -> None:
    kept: TtlCache[int, int] = TtlCache(ttl_seconds=10, max_entries=100_000)
    for i in range(5_000):
        kept.put(i, i)
        clock.now += 0.1  # 100 writes per TTL
    assert len(kept._entries) <= 110
    assert kept.get(4_999) == 4_999 and kept.get(0) is None


def test_the_cap_holds_and_the_newest_stays(clock: Clock) -> None:
    kept: TtlCache[int, int] = TtlCache(ttl_seconds=60, max_entries=10)
    for i in range(25):
        kept.put(i, i)
    assert len(kept._entries) <= 10 and kept.get(24) == 24


def test_a_rewrite_moves_the_entry_to_the_back(clock: Clock) -> None:
    kept: TtlCache[str, int] = TtlCache(ttl_seconds=10, max_entries=100)
    kept.put("a", 1)
    kept.put("b", 2)
    clock.now += 6
    kept.put("a", 3)  # fresh again: expires after "b"
    clock.now += 6
    kept.put("c", 4)
    assert kept.get("a") == 3 and kept.get("b") is None
