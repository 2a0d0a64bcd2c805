"""catalogue: search words (postings and their lookup keys) instead of the trigram index

Revision ID: 20261203_search_words
Revises: 20261203_patient_search
Create Date: 2026-12-03 09:00:00

Typo-tolerant search now reads a vocabulary of folded catalogue words, the same on SQLite and
PostgreSQL (`eprescribe/catalogue/vocabulary.py`); the pg_trgm index is no longer read. The
existing catalogue is indexed here.
"""

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from eprescribe.catalogue import vocabulary

revision: str = "20261203_search_words"
down_revision: str | Sequence[str] | None = "20261204_prescription_unsigned"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def _insert(table: sa.TableClause, rows: Iterable[dict[str, Any]]) -> None:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            op.bulk_insert(table, batch)
            batch = []
    if batch:
        op.bulk_insert(table, batch)


def _backfill() -> None:
    drugs = op.get_bind().execute(
        sa.text(
            "SELECT id, name, active_ingredient, strength, dosage_form, registration_no, manufacturer FROM drug"
        )
    )
    postings = [p for row in drugs for p in vocabulary.postings(vocabulary.ProductText(*row))]
    words = sa.table(
        "drug_word",
        sa.column("word", sa.String),
        sa.column("drug_id", sa.Integer),
        sa.column("field", sa.String),
        sa.column("position", sa.Integer),
        sa.column("length", sa.Integer),
    )
    _insert(
        words,
        (
            {
                "word": p.word,
                "drug_id": p.drug_id,
                "field": p.field,
                "position": p.position,
                "length": p.length,
            }
            for p in postings
        ),
    )
    keys = sa.table("drug_word_key", sa.column("key", sa.String), sa.column("word", sa.String))
    _insert(keys, ({"key": k, "word": w} for k, w in vocabulary.key_rows(sorted({p.word for p in postings}))))


def upgrade() -> None:
    op.create_table(
        "drug_word",
        sa.Column("word", sa.String(length=64), nullable=False),
        sa.Column("drug_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["drug_id"], ["drug.id"], name=op.f("fk_drug_word_drug_id_drug")),
        sa.PrimaryKeyConstraint("word", "drug_id", "field", name=op.f("pk_drug_word")),
    )
    op.create_index("ix_drug_word_drug_id", "drug_word", ["drug_id"], unique=False)
    op.create_table(
        "drug_word_key",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("word", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("key", "word", name=op.f("pk_drug_word_key")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_drug_search_text_trgm")
    _backfill()


def downgrade() -> None:
    op.drop_table("drug_word_key")
    op.drop_index("ix_drug_word_drug_id", table_name="drug_word")
    op.drop_table("drug_word")
    bind = op.get_bind()
    if (
        bind.dialect.name == "postgresql"
        and bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).first()
    ):
        op.create_index(
            "ix_drug_search_text_trgm",
            "drug",
            ["search_text"],
            unique=False,
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        )
