"""Errors of prescriptions and of their quantity ledger."""

from __future__ import annotations

from kit.errors import Conflict, InvalidSignature, NotFound


class PrescriptionNotFound(NotFound):
    problem = "prescription-not-found"

    def __init__(self, code: str) -> None:
        super().__init__(f"No prescription {code} is visible to you")


class SignatureRejected(InvalidSignature):
    pass


class PrescriptionConflict(Conflict):
    problem = "prescription-conflict"


class NotDispensable(Conflict):
    """The prescription is not active/partially dispensed, or is past valid_until."""

    problem = "not-dispensable"


class QuantityExceeded(Conflict):
    problem = "quantity-exceeded"
