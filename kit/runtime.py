"""What a running process holds once: settings, database, keys, hasher, token service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from kit import observability
from kit.database import Database
from kit.security import ClientKind, KeyRing, Principal, SecretHasher, TokenService, bearer_token
from kit.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    database: Database
    keyring: KeyRing
    hasher: SecretHasher
    tokens: TokenService
    # The replica public reads go to (READ_DATABASE_URL); the primary itself when unset.
    read_database: Database = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.read_database is None:
            self.read_database = self.database

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        keyring = KeyRing.load(settings)
        database = Database(settings)
        replica = settings.resolved_read_database_url
        return cls(
            settings=settings,
            database=database,
            keyring=keyring,
            hasher=SecretHasher(settings),
            tokens=TokenService(settings, keyring),
            read_database=Database(settings, replica, read_only=True) if replica else database,
        )

    async def dispose(self) -> None:
        await self.database.dispose()
        if self.read_database is not self.database:
            await self.read_database.dispose()


async def _runtime(request: Request) -> Runtime:
    # async: a plain function would be run in the thread pool on every request.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]


def authenticate(request: Request, kind: ClientKind) -> tuple[Runtime, Principal]:
    """The process's runtime and the request's caller, whose bearer token must be a valid one of
    `kind` (401 or 403 otherwise), noted for the request's log line.

    The one check every client door starts with; the door then re-checks the client's record
    in its own transaction (suspended or revoked refuses the token).
    """
    runtime: Runtime = request.app.state.runtime
    principal = runtime.tokens.verify(bearer_token(request), expected=kind)
    observability.note_client(principal.kind, principal.client_id)
    return runtime, principal


def client_address(request: Request) -> str:
    """The client's address: the socket peer, or what a trusted proxy forwarded (kit.proxy).

    The app's middleware has already applied the ERX_TRUSTED_PROXIES rule to the request's
    client, so every door sees the same address.
    """
    return request.client.host if request.client else "unknown"
