"""A small per-process cache for facts that change rarely and are never about who may act.

Never cache credentials or statuses with it: revocation must take effect on the next request.
It holds reference data (names, catalogue groupings) for a few seconds to minutes, so a change
shows everywhere within `ttl_seconds`.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Hashable
from typing import Generic, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def database_of(session: AsyncSession) -> Engine:
    """Which database a session talks to: part of every cache key, so two databases never mix.

    The engine itself, hashed by identity: an engine's URL hashes by rendering itself as text,
    some 10 µs on every cache read of a hot path.
    """
    return session.get_bind().engine


# How many expired entries one `put` may drop: a bounded step, amortised over the writes.
_SWEEP = 8


class TtlCache(Generic[K, V]):
    """Values by key for `ttl_seconds`, at most `max_entries` of them (oldest dropped first)."""

    def __init__(self, *, ttl_seconds: float, max_entries: int) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] < time.monotonic():
            del self._entries[key]
            return None
        return found[1]

    def put(self, key: K, value: V) -> None:
        now = time.monotonic()
        # One TTL for all: insertion order is expiry order, so the expired sit at the front and
        # go as new entries come (a cache that is only written to must not grow to its cap).
        self._entries.pop(key, None)
        expired = [k for k, (expires, _) in itertools.islice(self._entries.items(), _SWEEP) if expires < now]
        for stale in expired:
            del self._entries[stale]
        if len(self._entries) >= self._max:
            for oldest in list(self._entries)[: max(1, self._max // 4)]:
                del self._entries[oldest]
        self._entries[key] = (now + self._ttl, value)

    def clear(self) -> None:
        self._entries.clear()
