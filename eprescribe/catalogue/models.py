"""The national drug catalogue: registered products and notified health supplements."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from kit.database import UTCDateTime


class Drug(SQLModel, table=True):
    """A registered product of the national catalogue (or a notified health supplement)."""

    __tablename__ = "drug"
    __table_args__ = (Index("ix_drug_substitution", "ingredient_key", "strength_key", "form_key"),)

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


class DrugWord(SQLModel, table=True):
    """One folded word of one field of a product (`vocabulary.postings`), kept with every change.

    The portal's search reads which products hold the words a query matches, and where: the
    field, the word's position in it and how many words the field has, for the ranking.
    """

    __tablename__ = "drug_word"
    __table_args__ = (Index("ix_drug_word_drug_id", "drug_id"),)

    word: str = Field(sa_column=Column(String(64), primary_key=True))
    drug_id: int = Field(sa_column=Column(Integer, ForeignKey("drug.id"), primary_key=True))
    field: str = Field(sa_column=Column(String(16), primary_key=True))
    position: int = Field(sa_column=Column(Integer, nullable=False))
    length: int = Field(sa_column=Column(Integer, nullable=False))


class DrugWordKey(SQLModel, table=True):
    """A key under which a catalogue word is found: the word, a beginning of it, or a deletion of it.

    Found by equality only, so typo tolerance and prefixes work alike on every database
    (`vocabulary.keys_of`). Keys are only added: one of a word no product holds any more finds
    no posting, which is harmless.
    """

    __tablename__ = "drug_word_key"

    key: str = Field(sa_column=Column(String(64), primary_key=True))
    word: str = Field(sa_column=Column(String(64), primary_key=True))
