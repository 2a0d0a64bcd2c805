"""Typed dependencies of the core API: who is calling, checked on every request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from eprescribe import service
from eprescribe.models import AdminClient, Facility
from erx.database import SessionDep
from erx.runtime import RuntimeDep
from erx.security import ClientKind, bearer_token


async def _current_admin(request: Request, session: SessionDep, runtime: RuntimeDep) -> AdminClient:
    principal = runtime.tokens.verify(bearer_token(request), expected=ClientKind.ADMIN)
    client = await service.current_client(session, principal)
    assert isinstance(client, AdminClient)
    return client


async def _current_facility(request: Request, session: SessionDep, runtime: RuntimeDep) -> Facility:
    principal = runtime.tokens.verify(bearer_token(request), expected=ClientKind.FACILITY)
    client = await service.current_client(session, principal)
    assert isinstance(client, Facility)
    return client


CurrentAdmin = Annotated[AdminClient, Depends(_current_admin)]
CurrentFacility = Annotated[Facility, Depends(_current_facility)]
