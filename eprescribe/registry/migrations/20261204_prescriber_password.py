"""prescribers may have a password (national-protocol sign-in) and a credentials version

Revision ID: 20261204_prescriber_password
Revises: 20261203_patient_search
Create Date: 2026-12-04 09:00:00

`dang-nhap-bac-si` signs a prescriber in with a password; it is stored as an argon2id hash and
setting a new one bumps `credentials_version`, so tokens issued under the old one stop working.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261204_prescriber_password"
down_revision: str | Sequence[str] | None = "20261203_identity_encrypted"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("prescriber", sa.Column("password_hash", sa.String(length=200), nullable=True))
    op.add_column(
        "prescriber",
        sa.Column("credentials_version", sa.Integer(), nullable=False, server_default=sa.text("1")),
    )


def downgrade() -> None:
    with op.batch_alter_table("prescriber") as batch:
        batch.drop_column("credentials_version")
        batch.drop_column("password_hash")
