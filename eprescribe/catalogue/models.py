"""The national drug catalogue: registered products and notified health supplements."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

from kit.database import UTCDateTime


class Drug(SQLModel, table=True):
    """A registered product of the national catalogue (or a notified health supplement)."""

    __tablename__ = "drug"
    __table_args__ = (
        Index("ix_drug_substitution", "ingredient_key", "strength_key", "form_key"),
        # Typo-tolerant search with pg_trgm; PostgreSQL only (the migration creates the extension).
        Index(
            "ix_drug_search_text_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )

    id: int | None = Field(default=None, primary_key=True)
    registration_no: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    name: str = Field(max_length=300)
    active_ingredient: str = Field(max_length=500)
    strength: str = Field(max_length=200)
    dosage_form: str = Field(max_length=200)
    unit: str = Field(max_length=32)
    packaging: str | None = Field(default=None, max_length=300)
    manufacturer: str | None = Field(default=None, max_length=300)
    country: str | None = Field(default=None, max_length=100)
    category: str = Field(max_length=16, index=True)
    declared_price: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # Folded forms (no diacritics, no spaces) for matching and for diacritic-blind search.
    ingredient_key: str = Field(max_length=500)
    strength_key: str = Field(max_length=200)
    form_key: str = Field(max_length=200)
    search_text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
