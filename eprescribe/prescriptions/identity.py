"""Identity numbers at rest: moving every stored value under the active encryption key."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.prescriptions import repository
from kit import pii


@dataclass(frozen=True)
class Batch:
    """One batch of `reencrypt`: rows looked at, rows rewritten, the last id (None: finished)."""

    scanned: int
    rewritten: int
    last_id: int | None


async def count(session: AsyncSession) -> int:
    """How many prescriptions there are to look at."""
    return await repository.count_prescriptions(session)


async def reencrypt(session: AsyncSession, *, after_id: int, limit: int) -> Batch:
    """Re-encrypt under the active key the values of the next `limit` rows that are not under it.

    Run batch after batch, each in its own transaction, so no lock is held for long; running it
    again is harmless (rows already under the active key are left as they are).
    """
    keys = pii.keys_of(session.get_bind().dialect)
    rows = await repository.stored_identity(session, after_id, limit)
    stale = [repository.decrypted(row, keys) for row in rows if repository.under_other_key(row, keys)]
    await repository.rewrite_identity(session, stale)
    return Batch(len(rows), len(stale), rows[-1].id if len(rows) == limit else None)
