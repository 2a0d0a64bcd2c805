"""merge: every owner's tables, one head

Revision ID: 20261202_merge
Revises: 20261202_kit, 20261202_dispensing, 20261202_prices
Create Date: 2026-12-02 09:00:00

A database migrated by the first, single-folder history (revisions 0001-0004) has exactly the
schema of this revision; `erx.migrate` stamps it here instead of running anything.
"""

from collections.abc import Sequence

revision: str = "20261202_merge"
down_revision: str | Sequence[str] | None = ("20261202_kit", "20261202_dispensing", "20261202_prices")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
