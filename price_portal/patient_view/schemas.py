"""What the patient's page shows beyond the prescription itself."""

from __future__ import annotations

from dataclasses import dataclass

from eprescribe.registry.schemas import PharmacyRecord


@dataclass(frozen=True)
class BasketOffer:
    """An outlet of the patient's province, how many open lines it lists, and their total."""

    outlet: PharmacyRecord
    covered: int
    total: int
