"""What a running process holds once: settings, database, keys, hasher, token service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from kit.database import Database
from kit.security import KeyRing, SecretHasher, TokenService
from kit.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    database: Database
    keyring: KeyRing
    hasher: SecretHasher
    tokens: TokenService

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        keyring = KeyRing.load(settings)
        return cls(
            settings=settings,
            database=Database(settings),
            keyring=keyring,
            hasher=SecretHasher(settings),
            tokens=TokenService(settings, keyring),
        )


async def _runtime(request: Request) -> Runtime:
    # async: a plain function would be run in the thread pool on every request.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
