"""price portal: current listed prices, their history, trigram search of the catalogue

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-24 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import erx.database

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _trigram_available() -> bool:
    """pg_trgm ships with postgresql-contrib; without it search falls back to Python matching."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    found = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).first()
    return found is not None


def upgrade() -> None:
    op.create_table(
        "price_listing",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("pharmacy_id", sa.Integer(), nullable=False),
        sa.Column("drug_id", sa.Integer(), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("province_code", sa.String(length=2), nullable=False),
        sa.Column("outlet_kind", sa.String(length=16), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("updated_at", erx.database.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("price > 0", name=op.f("ck_price_listing_price_positive")),
        sa.ForeignKeyConstraint(["drug_id"], ["drug.id"], name=op.f("fk_price_listing_drug_id_drug")),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"], ["pharmacy.id"], name=op.f("fk_price_listing_pharmacy_id_pharmacy")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_listing")),
    )
    with op.batch_alter_table("price_listing", schema=None) as batch_op:
        batch_op.create_index("uq_price_listing_pharmacy_drug", ["pharmacy_id", "drug_id"], unique=True)
        batch_op.create_index(
            "ix_price_listing_drug_price",
            ["drug_id", "price", "id", "pharmacy_id", "outlet_kind"],
            unique=False,
        )
        batch_op.create_index(
            "ix_price_listing_province_drug_price",
            ["province_code", "drug_id", "price", "id", "pharmacy_id", "outlet_kind"],
            unique=False,
        )
        batch_op.create_index("ix_price_listing_price", ["price", "id"], unique=False)
        batch_op.create_index(
            "ix_price_listing_province_price", ["province_code", "price", "id"], unique=False
        )
        batch_op.create_index("ix_price_listing_updated_at", ["updated_at", "id"], unique=False)

    op.create_table(
        "price_history",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("pharmacy_id", sa.Integer(), nullable=False),
        sa.Column("drug_id", sa.Integer(), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("recorded_at", erx.database.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("price > 0", name=op.f("ck_price_history_price_positive")),
        sa.ForeignKeyConstraint(["drug_id"], ["drug.id"], name=op.f("fk_price_history_drug_id_drug")),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"], ["pharmacy.id"], name=op.f("fk_price_history_pharmacy_id_pharmacy")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_history")),
    )
    with op.batch_alter_table("price_history", schema=None) as batch_op:
        batch_op.create_index("ix_price_history_drug_recorded_at", ["drug_id", "recorded_at"], unique=False)
        batch_op.create_index(
            "ix_price_history_pharmacy_drug_recorded_at",
            ["pharmacy_id", "drug_id", "recorded_at"],
            unique=False,
        )

    # The portal hides suspended and revoked outlets on every query; there are only a few.
    op.create_index(
        "ix_pharmacy_not_active",
        "pharmacy",
        ["id"],
        unique=False,
        postgresql_where=sa.text("status <> 'active'"),
        sqlite_where=sa.text("status <> 'active'"),
    )

    if _trigram_available():
        # Trusted extension since PostgreSQL 13: the database owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index(
            "ix_drug_search_text_trgm",
            "drug",
            ["search_text"],
            unique=False,
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_drug_search_text_trgm")
    op.drop_index("ix_pharmacy_not_active", table_name="pharmacy")
    with op.batch_alter_table("price_history", schema=None) as batch_op:
        batch_op.drop_index("ix_price_history_pharmacy_drug_recorded_at")
        batch_op.drop_index("ix_price_history_drug_recorded_at")

    op.drop_table("price_history")
    with op.batch_alter_table("price_listing", schema=None) as batch_op:
        batch_op.drop_index("ix_price_listing_updated_at")
        batch_op.drop_index("ix_price_listing_province_price")
        batch_op.drop_index("ix_price_listing_price")
        batch_op.drop_index("ix_price_listing_province_drug_price")
        batch_op.drop_index("ix_price_listing_drug_price")
        batch_op.drop_index("uq_price_listing_pharmacy_drug")

    op.drop_table("price_listing")
