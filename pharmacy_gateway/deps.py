"""Typed dependencies of the gateway: the calling pharmacy, re-checked on every request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from eprescribe import service as registry
from eprescribe.models import Pharmacy
from erx.database import SessionDep
from erx.runtime import RuntimeDep
from erx.security import ClientKind, bearer_token


async def _current_pharmacy(request: Request, session: SessionDep, runtime: RuntimeDep) -> Pharmacy:
    principal = runtime.tokens.verify(bearer_token(request), expected=ClientKind.PHARMACY)
    client = await registry.current_client(session, principal)
    assert isinstance(client, Pharmacy)
    return client


CurrentPharmacy = Annotated[Pharmacy, Depends(_current_pharmacy)]
