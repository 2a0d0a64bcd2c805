"""listed prices and their history

Revision ID: 20261202_prices
Revises: 20261202_registry, 20261202_catalogue
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kit.database

revision: str = "20261202_prices"
down_revision: str | Sequence[str] | None = ("20261202_registry", "20261202_catalogue")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "price_history",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("pharmacy_id", sa.Integer(), nullable=False),
        sa.Column("drug_id", sa.Integer(), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("recorded_at", kit.database.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("price > 0", name=op.f("ck_price_history_price_positive")),
        sa.ForeignKeyConstraint(["drug_id"], ["drug.id"], name=op.f("fk_price_history_drug_id_drug")),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"], ["pharmacy.id"], name=op.f("fk_price_history_pharmacy_id_pharmacy")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_history")),
    )
    op.create_index(
        "ix_price_history_drug_recorded_at", "price_history", ["drug_id", "recorded_at"], unique=False
    )
    op.create_index(
        "ix_price_history_pharmacy_drug_recorded_at",
        "price_history",
        ["pharmacy_id", "drug_id", "recorded_at"],
        unique=False,
    )
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
        sa.Column("updated_at", kit.database.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("price > 0", name=op.f("ck_price_listing_price_positive")),
        sa.ForeignKeyConstraint(["drug_id"], ["drug.id"], name=op.f("fk_price_listing_drug_id_drug")),
        sa.ForeignKeyConstraint(
            ["pharmacy_id"], ["pharmacy.id"], name=op.f("fk_price_listing_pharmacy_id_pharmacy")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_listing")),
    )
    op.create_index(
        "ix_price_listing_drug_price",
        "price_listing",
        ["drug_id", "price", "id", "pharmacy_id", "outlet_kind"],
        unique=False,
    )
    op.create_index("ix_price_listing_price", "price_listing", ["price", "id"], unique=False)
    op.create_index(
        "ix_price_listing_province_drug_price",
        "price_listing",
        ["province_code", "drug_id", "price", "id", "pharmacy_id", "outlet_kind"],
        unique=False,
    )
    op.create_index(
        "ix_price_listing_province_price", "price_listing", ["province_code", "price", "id"], unique=False
    )
    op.create_index("ix_price_listing_updated_at", "price_listing", ["updated_at", "id"], unique=False)
    op.create_index(
        "uq_price_listing_pharmacy_drug", "price_listing", ["pharmacy_id", "drug_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_price_listing_pharmacy_drug", table_name="price_listing")
    op.drop_index("ix_price_listing_updated_at", table_name="price_listing")
    op.drop_index("ix_price_listing_province_price", table_name="price_listing")
    op.drop_index("ix_price_listing_province_drug_price", table_name="price_listing")
    op.drop_index("ix_price_listing_price", table_name="price_listing")
    op.drop_index("ix_price_listing_drug_price", table_name="price_listing")
    op.drop_table("price_listing")
    op.drop_index("ix_price_history_pharmacy_drug_recorded_at", table_name="price_history")
    op.drop_index("ix_price_history_drug_recorded_at", table_name="price_history")
    op.drop_table("price_history")
