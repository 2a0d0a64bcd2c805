"""listing counts kept by every publication; browse indexes that cover their filters

Revision ID: 20261203_price_counts
Revises: 20261203_search_words
Create Date: 2026-12-03 09:00:00

The portal's totals add up `price_drug_count` / `price_count` instead of counting a million
listings; the existing listings are counted here. The browse indexes gain the columns the
filters test, so deep pages are skipped inside the index; one more index serves searches
sorted by the freshest price.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261203_price_counts"
down_revision: str | Sequence[str] | None = "20261203_search_words"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BROWSE = {
    "ix_price_listing_price": (["price", "id"], ["pharmacy_id", "outlet_kind", "province_code", "drug_id"]),
    "ix_price_listing_province_price": (
        ["province_code", "price", "id"],
        ["pharmacy_id", "outlet_kind", "drug_id"],
    ),
    "ix_price_listing_updated_at": (
        ["updated_at", "id"],
        ["pharmacy_id", "outlet_kind", "province_code", "drug_id"],
    ),
}


def upgrade() -> None:
    op.create_table(
        "price_count",
        sa.Column("province_code", sa.String(length=2), nullable=False),
        sa.Column("outlet_kind", sa.String(length=16), nullable=False),
        sa.Column("listings", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("listings >= 0", name=op.f("ck_price_count_listings_not_negative")),
        sa.PrimaryKeyConstraint("province_code", "outlet_kind", name=op.f("pk_price_count")),
    )
    op.create_table(
        "price_drug_count",
        sa.Column("drug_id", sa.Integer(), nullable=False),
        sa.Column("province_code", sa.String(length=2), nullable=False),
        sa.Column("outlet_kind", sa.String(length=16), nullable=False),
        sa.Column("listings", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("listings >= 0", name=op.f("ck_price_drug_count_listings_not_negative")),
        sa.ForeignKeyConstraint(["drug_id"], ["drug.id"], name=op.f("fk_price_drug_count_drug_id_drug")),
        sa.PrimaryKeyConstraint("drug_id", "province_code", "outlet_kind", name=op.f("pk_price_drug_count")),
    )
    op.execute(
        "INSERT INTO price_drug_count (drug_id, province_code, outlet_kind, listings) "
        "SELECT drug_id, province_code, outlet_kind, count(*) FROM price_listing "
        "GROUP BY drug_id, province_code, outlet_kind"
    )
    op.execute(
        "INSERT INTO price_count (province_code, outlet_kind, listings) "
        "SELECT province_code, outlet_kind, sum(listings) FROM price_drug_count "
        "GROUP BY province_code, outlet_kind"
    )
    for name, (key, covered) in BROWSE.items():
        op.drop_index(name, table_name="price_listing")
        op.create_index(name, "price_listing", [*key, *covered], unique=False)
    op.create_index(
        "ix_price_listing_drug_updated_at",
        "price_listing",
        ["drug_id", "updated_at", "id", "pharmacy_id", "outlet_kind", "province_code"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_price_listing_drug_updated_at", table_name="price_listing")
    for name, (key, _) in BROWSE.items():
        op.drop_index(name, table_name="price_listing")
        op.create_index(name, "price_listing", key, unique=False)
    op.drop_table("price_drug_count")
    op.drop_table("price_count")
