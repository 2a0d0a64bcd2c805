"""Walk the access log's hash chains and name the first entry that does not hold."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.audit import HEAD, LOG, chain_hash, content_digest

BATCH = 5000


@dataclass(frozen=True)
class Broken:
    """The first entry (or chain head) that does not hold, and why."""

    prescription_code: str
    entry_id: int | None
    seq: int | None
    reason: str


@dataclass(frozen=True)
class ChainReport:
    entries: int
    chains: int
    broken: Broken | None


async def count_entries(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(LOG))).scalar_one())


def _check(row: Any, prev_hash: str, expected_seq: int) -> str | None:
    if row.seq != expected_seq:
        return f"seq {row.seq} where {expected_seq} was due (an entry is missing or was moved)"
    if row.prev_hash != prev_hash:
        return "prev_hash is not the previous entry's hash"
    digest = content_digest(
        prescription_code=row.prescription_code,
        at=row.at,
        actor_kind=row.actor_kind,
        actor_code=row.actor_code,
        action=row.action,
        client_address=row.client_address,
    )
    if chain_hash(prev_hash, expected_seq, digest) != row.entry_hash:
        return "entry_hash does not match its content (the entry was edited)"
    return None


async def verify_chains(session: AsyncSession, advance: Callable[[int], None] | None = None) -> ChainReport:
    """Check every chain entry by entry in (code, seq) order, then each chain's head; stop at the first break.

    Keyset pagination keeps memory flat on a log of any size.
    """
    heads = {row.prescription_code: row for row in await session.execute(select(HEAD))}
    seen_codes: set[str] = set()
    entries = 0
    code, prev_hash, expected = None, "", 1
    last: tuple[str, int] = ("", 0)
    while True:
        rows = (
            await session.execute(
                select(LOG)
                .where(
                    (LOG.c.prescription_code > last[0])
                    | ((LOG.c.prescription_code == last[0]) & (LOG.c.seq > last[1]))
                )
                .order_by(LOG.c.prescription_code, LOG.c.seq)
                .limit(BATCH)
            )
        ).all()
        if not rows:
            break
        for row in rows:
            if row.prescription_code != code:
                if code is not None:
                    broken = _check_head(heads.get(code), code, expected - 1, prev_hash)
                    if broken:
                        return ChainReport(entries, len(seen_codes), broken)
                code, prev_hash, expected = row.prescription_code, "", 1
                seen_codes.add(code)
            reason = _check(row, prev_hash, expected)
            if reason is not None:
                return ChainReport(
                    entries, len(seen_codes), Broken(row.prescription_code, row.id, row.seq, reason)
                )
            prev_hash, expected = row.entry_hash, expected + 1
            entries += 1
        last = (rows[-1].prescription_code, rows[-1].seq)
        if advance is not None:
            advance(len(rows))
    if code is not None:
        broken = _check_head(heads.get(code), code, expected - 1, prev_hash)
        if broken:
            return ChainReport(entries, len(seen_codes), broken)
    for orphan in sorted(set(heads) - seen_codes):
        return ChainReport(
            entries, len(seen_codes), Broken(orphan, None, None, "the chain's entries are gone")
        )
    return ChainReport(entries, len(seen_codes), None)


def _check_head(head: Any, code: str, last_seq: int, last_hash: str) -> Broken | None:
    """The head must name the chain's last entry: entries cut off the end are caught here."""
    if head is None:
        return Broken(code, None, None, "the chain has no head")
    if head.seq != last_seq or head.entry_hash != last_hash:
        return Broken(
            code,
            None,
            head.seq,
            f"the head says {head.seq} entries, the chain ends at {last_seq} (entries were removed)",
        )
    return None
