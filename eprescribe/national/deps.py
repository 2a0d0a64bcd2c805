"""Who calls the national protocol's prescriber door: a prescriber signed in at a facility."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.registry import service as registry
from eprescribe.registry.schemas import FacilityRecord, PrescriberRecord
from kit.database import request_transaction
from kit.runtime import Runtime, authenticate
from kit.security import ClientKind


@dataclass(frozen=True, slots=True)
class PrescriberCall:
    """One signed-in prescriber's request: its transaction, and the prescriber and their
    facility re-checked (either suspended or revoked refuses it)."""

    session: AsyncSession
    runtime: Runtime
    facility: FacilityRecord
    prescriber: PrescriberRecord


async def _prescriber_call(request: Request) -> AsyncIterator[PrescriberCall]:
    # One dependency, as for the facilities' and the pharmacies' doors (FacilityCall, PharmacyCall).
    runtime, principal = authenticate(request, ClientKind.PRESCRIBER)
    async with request_transaction(runtime.database) as session:
        facility, prescriber = await registry.current_prescriber(session, principal)
        yield PrescriberCall(session, runtime, facility, prescriber)


# scope="function": the transaction commits before the response is sent (kit.database.SessionDep).
PrescriberCallDep = Annotated[PrescriberCall, Depends(_prescriber_call, scope="function")]
