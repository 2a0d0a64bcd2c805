"""Bodies of the catalogue API, and the product records other modules receive from its service."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, StrictInt

from kit.fields import BIGINT_MAX, NonEmpty, Strict


class DrugCategory(StrEnum):
    NORMAL = "normal"
    NARCOTIC = "narcotic"
    PSYCHOTROPIC = "psychotropic"
    PRECURSOR = "precursor"
    TRADITIONAL = "traditional"
    SUPPLEMENT = "supplement"


CONTROLLED_CATEGORIES = frozenset({DrugCategory.NARCOTIC, DrugCategory.PSYCHOTROPIC, DrugCategory.PRECURSOR})


RegistrationNo = Annotated[str, Field(min_length=3, max_length=64)]
# (ingredient, strength, form), each folded without case, spaces or diacritics.
ProductKey = tuple[str, str, str]


class DrugCreate(Strict):
    registration_no: RegistrationNo
    name: NonEmpty
    active_ingredient: Annotated[str, Field(min_length=1, max_length=500)]
    strength: Annotated[str, Field(min_length=1, max_length=200)]
    dosage_form: Annotated[str, Field(min_length=1, max_length=200)]
    unit: Annotated[str, Field(min_length=1, max_length=32)]
    category: DrugCategory
    declared_price: Annotated[StrictInt, Field(gt=0, le=BIGINT_MAX)] | None = None
    packaging: Annotated[str, Field(max_length=300)] | None = None
    manufacturer: Annotated[str, Field(max_length=300)] | None = None
    country: Annotated[str, Field(max_length=100)] | None = None


class DrugPublic(BaseModel):
    registration_no: str
    name: str
    active_ingredient: str
    strength: str
    dosage_form: str
    unit: str
    category: str
    declared_price: int | None
    packaging: str | None = None
    manufacturer: str | None = None
    country: str | None = None


class DrugPage(BaseModel):
    total: int
    items: list[DrugPublic]


@dataclass(frozen=True, slots=True)
class Product:
    """A catalogue product as other modules see it."""

    id: int
    registration_no: str
    name: str
    active_ingredient: str
    strength: str
    dosage_form: str
    unit: str
    category: str
    declared_price: int | None
    packaging: str | None
    manufacturer: str | None
    country: str | None
    key: ProductKey

    def public(self) -> DrugPublic:
        return DrugPublic(
            registration_no=self.registration_no,
            name=self.name,
            active_ingredient=self.active_ingredient,
            strength=self.strength,
            dosage_form=self.dosage_form,
            unit=self.unit,
            category=self.category,
            declared_price=self.declared_price,
            packaging=self.packaging,
            manufacturer=self.manufacturer,
            country=self.country,
        )
