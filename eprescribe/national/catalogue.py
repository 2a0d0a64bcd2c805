"""What the mappings need from the national drug catalogue, as a callable the caller passes."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple


class CatalogueEntry(NamedTuple):
    """A registered product as the catalogue knows it."""

    registration_no: str
    active_ingredient: str
    strength: str
    dosage_form: str
    unit: str


# Registration number -> product, or None when the catalogue has no such number. Callers with an
# async catalogue fetch every number of a body first (see `registration_numbers`) and pass
# `found.get`, so the mapping stays synchronous and pure.
Resolver = Callable[[str], CatalogueEntry | None]
