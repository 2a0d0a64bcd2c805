"""Errors of the registry."""

from __future__ import annotations

from kit.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized


class InvalidClient(Unauthorized):
    """Wrong, unknown, suspended or revoked client credentials (RFC 6749 `invalid_client`)."""

    problem = "invalid-client"

    def __init__(self, detail: str = "Unknown client or wrong secret") -> None:
        super().__init__(detail, extra={"error": "invalid_client", "error_description": detail})


class InvalidTokenRequest(BadRequest):
    """A token request missing or repeating a parameter, or malformed (RFC 6749 `invalid_request`)."""

    problem = "invalid-token-request"

    def __init__(self, detail: str, *, error: str = "invalid_request") -> None:
        super().__init__(detail, extra={"error": error, "error_description": detail})


class UnsupportedGrantType(InvalidTokenRequest):
    """Any grant but client credentials (RFC 6749 `unsupported_grant_type`)."""

    problem = "unsupported-grant-type"

    def __init__(self, detail: str = "Only grant_type=client_credentials is supported") -> None:
        super().__init__(detail, error="unsupported_grant_type")


class ClientNotFound(NotFound):
    problem = "client-not-found"


class RegistryConflict(Conflict):
    problem = "registry-conflict"


class PrescriberNotAllowed(Forbidden):
    """The prescriber may not act here: inactive, elsewhere, or not allowed controlled drugs."""

    problem = "prescriber-not-allowed"
