"""catalogue: the national drug catalogue

Revision ID: 20261202_catalogue
Revises:
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kit.database

revision: str = "20261202_catalogue"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _trigram_available() -> bool:
    """pg_trgm serves typo-tolerant search; without it (or on SQLite) search falls back to Python."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    found = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).first()
    return found is not None


def upgrade() -> None:
    op.create_table(
        "drug",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_no", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("active_ingredient", sa.String(length=500), nullable=False),
        sa.Column("strength", sa.String(length=200), nullable=False),
        sa.Column("dosage_form", sa.String(length=200), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("packaging", sa.String(length=300), nullable=True),
        sa.Column("manufacturer", sa.String(length=300), nullable=True),
        sa.Column("country", sa.String(length=100), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("declared_price", sa.BigInteger(), nullable=True),
        sa.Column("ingredient_key", sa.String(length=500), nullable=False),
        sa.Column("strength_key", sa.String(length=200), nullable=False),
        sa.Column("form_key", sa.String(length=200), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("created_at", kit.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", kit.database.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drug")),
        sa.UniqueConstraint("registration_no", name=op.f("uq_drug_registration_no")),
    )
    op.create_index(op.f("ix_drug_category"), "drug", ["category"], unique=False)
    op.create_index(
        "ix_drug_substitution", "drug", ["ingredient_key", "strength_key", "form_key"], unique=False
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
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_drug_search_text_trgm")
    op.drop_index("ix_drug_substitution", table_name="drug")
    op.drop_index(op.f("ix_drug_category"), table_name="drug")
    op.drop_table("drug")
