"""Errors of the registry."""

from __future__ import annotations

from kit.errors import Conflict, Forbidden, NotFound, Unauthorized


class InvalidClient(Unauthorized):
    """Wrong, unknown, suspended or revoked client credentials (RFC 6749 `invalid_client`)."""

    problem = "invalid-client"

    def __init__(self, detail: str = "Unknown client or wrong secret") -> None:
        super().__init__(detail, extra={"error": "invalid_client"})


class ClientNotFound(NotFound):
    problem = "client-not-found"


class RegistryConflict(Conflict):
    problem = "registry-conflict"


class PrescriberNotAllowed(Forbidden):
    """The prescriber may not act here: inactive, elsewhere, or not allowed controlled drugs."""

    problem = "prescriber-not-allowed"
