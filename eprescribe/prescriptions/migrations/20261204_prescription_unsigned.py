"""prescriptions admitted without a signature (legacy national-protocol clients) are marked

Revision ID: 20261204_prescription_unsigned
Revises: 20261204_prescriber_password
Create Date: 2026-12-04 09:10:00

Only with ERX_NATIONAL_ACCEPT_UNSIGNED: such a record has no prescriber's JWS to verify again,
so it says so in its own column.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261204_prescription_unsigned"
down_revision: str | Sequence[str] | None = "20261204_prescriber_password"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "prescription",
        sa.Column("unsigned", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("prescription") as batch:
        batch.drop_column("unsigned")
