"""Errors of the registry and of prescriptions."""

from __future__ import annotations

from erx.errors import Conflict, Forbidden, InvalidSignature, NotFound, Unauthorized


class InvalidClient(Unauthorized):
    """Wrong, unknown, suspended or revoked client credentials (RFC 6749 `invalid_client`)."""

    problem = "invalid-client"

    def __init__(self, detail: str = "Unknown client or wrong secret") -> None:
        super().__init__(detail, extra={"error": "invalid_client"})


class PrescriptionNotFound(NotFound):
    problem = "prescription-not-found"

    def __init__(self, code: str) -> None:
        super().__init__(f"No prescription {code} is visible to you")


class SignatureRejected(InvalidSignature):
    pass


class PrescriberNotAllowed(Forbidden):
    problem = "prescriber-not-allowed"


class PrescriptionConflict(Conflict):
    problem = "prescription-conflict"
