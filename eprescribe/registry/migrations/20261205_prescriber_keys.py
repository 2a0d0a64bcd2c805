"""every key a prescriber registered is kept, with when it was current

Revision ID: 20261205_prescriber_keys
Revises: 20261204_audit_chain
Create Date: 2026-12-05 09:00:00

Replacing a prescriber's key used to overwrite it, so every prescription signed before the
change stopped verifying. Each prescriber's current key is copied in as current since the
prescriber was registered: nothing older was kept to copy.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kit.database

revision: str = "20261205_prescriber_keys"
down_revision: str | Sequence[str] | None = "20261204_audit_chain"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prescriber_key",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("prescriber_id", sa.String(length=16), nullable=False),
        sa.Column("thumbprint", sa.String(length=64), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("registered_at", kit.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retired_at", kit.database.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["prescriber_id"],
            ["prescriber.prescriber_id"],
            name=op.f("fk_prescriber_key_prescriber_id_prescriber"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prescriber_key")),
    )
    op.create_index(
        "ix_prescriber_key_prescriber_id_registered_at",
        "prescriber_key",
        ["prescriber_id", "registered_at"],
        unique=False,
    )
    op.create_index(
        "uq_prescriber_key_current",
        "prescriber_key",
        ["prescriber_id"],
        unique=True,
        postgresql_where=sa.text("retired_at IS NULL"),
        sqlite_where=sa.text("retired_at IS NULL"),
    )
    prescriber = sa.table(
        "prescriber",
        sa.column("prescriber_id", sa.String()),
        sa.column("key_thumbprint", sa.String()),
        sa.column("public_jwk", sa.JSON()),
        sa.column("created_at", kit.database.UTCDateTime()),
    )
    key = sa.table(
        "prescriber_key",
        sa.column("prescriber_id", sa.String()),
        sa.column("thumbprint", sa.String()),
        sa.column("public_jwk", sa.JSON()),
        sa.column("registered_at", kit.database.UTCDateTime()),
    )
    # One statement in the database: the registry is small, and no row passes through Python.
    op.execute(
        sa.insert(key).from_select(
            ["prescriber_id", "thumbprint", "public_jwk", "registered_at"],
            sa.select(
                prescriber.c.prescriber_id,
                prescriber.c.key_thumbprint,
                prescriber.c.public_jwk,
                prescriber.c.created_at,
            ),
        )
    )


def downgrade() -> None:
    op.drop_index("uq_prescriber_key_current", table_name="prescriber_key")
    op.drop_index("ix_prescriber_key_prescriber_id_registered_at", table_name="prescriber_key")
    op.drop_table("prescriber_key")
