"""throttle counters carry the end of their own window

Revision ID: 20261204_throttle_windows
Revises: 20261203_patient_search
Create Date: 2026-12-04 09:00:00

Each counter now ends at its own `expires_at` (a sign-in pair counts over minutes, a patient's
dates of birth over a day). Counters are short-lived by nature: the table starts empty.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kit.database

revision: str = "20261204_throttle_windows"
down_revision: str | Sequence[str] | None = "20261203_price_counts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("throttle_counter")
    op.create_table(
        "throttle_counter",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("expires_at", kit.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_throttle_counter")),
    )


def downgrade() -> None:
    op.drop_table("throttle_counter")
    op.create_table(
        "throttle_counter",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("window_start", kit.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_throttle_counter")),
    )
