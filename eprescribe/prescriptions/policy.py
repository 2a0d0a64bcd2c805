"""The prescribing rules that regulations may change, in one table with their sources."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from importlib import resources

from eprescribe.catalogue.schemas import DrugCategory
from eprescribe.prescriptions.schemas import CONTROLLED_KINDS, PrescriptionKind
from kit.time import end_of_vn_day, vn_today


@dataclass(frozen=True)
class PrescribingPolicy:
    """Values from Circular 26/2025/TT-BYT (outpatient prescribing, in force 2025-2026)."""

    # Art. 6: a prescription may be collected "within at most 05 days from the day it is issued"
    # (trong thời hạn tối đa 05 ngày, kể từ ngày kê đơn). How the days count: see
    # collection_deadline below.
    collection_days: int = 5
    # Art. 7: at most 30 days of supply; up to 90 for a disease on Annex VII (chronic list).
    max_days_supply: int = 30
    max_days_supply_chronic: int = 90
    # Narcotics: at most 7 days for acute illness; cancer/AIDS patients up to 30 days, written as
    # rounds (dot) of at most 10 days: each round is its own prescription, so one carries <= 10.
    narcotic_max_days_acute: int = 7
    narcotic_max_days_per_round: int = 10
    narcotic_course_max_days: int = 30
    # Psychotropics and precursors: at most 10 days acute, 30 days for long-term treatment
    # (a diagnosis on the chronic list).
    psychotropic_max_days_acute: int = 10
    psychotropic_max_days_long_term: int = 30
    # A child under 72 months needs a guardian, the age in months and the weight.
    guardian_required_under_months: int = 72
    # ICD-10 blocks: malignant neoplasms C00-C97 and HIV disease B20-B24.
    cancer_icd10_prefixes: tuple[str, ...] = ("C",)
    hiv_icd10_blocks: tuple[str, ...] = ("B20", "B21", "B22", "B23", "B24", "Z21")
    # Which catalogue categories each prescription kind may carry (one kind per prescription).
    kind_categories: dict[str, frozenset[str]] = field(
        default_factory=lambda: {
            PrescriptionKind.ORDINARY: frozenset({DrugCategory.NORMAL}),
            PrescriptionKind.NARCOTIC: frozenset({DrugCategory.NARCOTIC}),
            PrescriptionKind.PSYCHOTROPIC: frozenset({DrugCategory.PSYCHOTROPIC, DrugCategory.PRECURSOR}),
            PrescriptionKind.TRADITIONAL: frozenset({DrugCategory.TRADITIONAL}),
            PrescriptionKind.DECOCTION: frozenset({DrugCategory.TRADITIONAL}),
        }
    )
    controlled_kinds: frozenset[str] = CONTROLLED_KINDS
    # Narcotic prescriptions name the patient by national ID.
    national_id_required_kinds: frozenset[str] = frozenset({PrescriptionKind.NARCOTIC})


POLICY = PrescribingPolicy()


@dataclass(frozen=True)
class ChronicConditions:
    """Annex VII of Circular 26/2025/TT-BYT, loaded from data (a representative subset)."""

    entries: dict[str, str]

    def covers(self, icd10: str) -> bool:
        code = icd10.strip().upper()
        # An entry without a dot is a 3-character category and covers every code beneath it.
        return code in self.entries or code[:3] in self.entries

    @classmethod
    def load(cls) -> ChronicConditions:
        source = resources.files("eprescribe.prescriptions") / "data" / "chronic_icd10.csv"
        rows = list(csv.DictReader(io.StringIO(source.read_text(encoding="utf-8"))))
        return cls({row["icd10"].strip().upper(): row["name_vi"] for row in rows})


@lru_cache(maxsize=1)
def chronic_conditions() -> ChronicConditions:
    return ChronicConditions.load()


def collection_deadline(issued_at: datetime) -> datetime:
    """`valid_until`: 23:59:59 Vietnam time of the last day a prescription may be collected.

    The circular gives the window in days and does not say how to count them, so the Civil Code's
    rule for periods counted in days applies (Bộ luật Dân sự 2015, Art. 147(1): the day of the
    event is not counted, the period starts the next day; Art. 148(1): it ends when its last day
    ends). The issue day is therefore day 0: a prescription written at any time on 02/12 counts
    03, 04, 05, 06 and 07/12 and may be collected until 07/12 at 23:59:59. Days are Vietnamese
    calendar days (UTC+7), whatever offset `issued_at` was written with. The paper, the consoles,
    the patient's page, the QR signature and every API carry this one instant.
    """
    return end_of_vn_day(vn_today(issued_at) + timedelta(days=POLICY.collection_days))


def is_cancer_or_aids(icd10: str) -> bool:
    code = icd10.strip().upper()
    return code.startswith(POLICY.cancer_icd10_prefixes) or is_hiv(code)


def is_hiv(icd10: str) -> bool:
    return icd10.strip().upper()[:3] in POLICY.hiv_icd10_blocks


def age_in_months(date_of_birth: date, on: date) -> int:
    months = (on.year - date_of_birth.year) * 12 + (on.month - date_of_birth.month)
    if on.day < date_of_birth.day:
        months -= 1
    return months


@dataclass(frozen=True)
class SupplyLimit:
    """The most days of supply a line may carry, and why (shown with a refusal)."""

    days: int
    why: str
    # Which rule set the limit, for the refusal's code: normal, chronic, narcotic_acute, ...
    rule: str


def supply_limit(kind: str, *, chronic: bool, cancer_or_aids: bool) -> SupplyLimit:
    """The days-of-supply limit of a prescription of this kind for these diagnoses."""
    if kind == PrescriptionKind.NARCOTIC:
        if cancer_or_aids:
            days = POLICY.narcotic_max_days_per_round
            return SupplyLimit(
                days, f"narcotics: at most {days} days per round for cancer/AIDS patients", "narcotic_round"
            )
        days = POLICY.narcotic_max_days_acute
        return SupplyLimit(days, f"narcotics: at most {days} days for acute illness", "narcotic_acute")
    if kind == PrescriptionKind.PSYCHOTROPIC:
        if chronic:
            days = POLICY.psychotropic_max_days_long_term
            return SupplyLimit(
                days,
                f"psychotropics/precursors: at most {days} days for long-term treatment",
                "psychotropic_long",
            )
        days = POLICY.psychotropic_max_days_acute
        return SupplyLimit(
            days, f"psychotropics/precursors: at most {days} days for acute illness", "psychotropic_acute"
        )
    if chronic:
        days = POLICY.max_days_supply_chronic
        return SupplyLimit(days, f"at most {days} days of supply with a chronic diagnosis", "chronic")
    days = POLICY.max_days_supply
    return SupplyLimit(
        days, f"at most {days} days of supply (90 needs a diagnosis on the chronic list)", "normal"
    )
