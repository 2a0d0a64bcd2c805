"""Who calls the national protocol's prescriber door: a prescriber signed in at a facility."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from eprescribe.registry import service as registry
from eprescribe.registry.schemas import FacilityRecord, PrescriberRecord
from kit import observability
from kit.database import SessionDep
from kit.runtime import RuntimeDep
from kit.security import ClientKind, bearer_token


@dataclass(frozen=True)
class SignedInPrescriber:
    facility: FacilityRecord
    prescriber: PrescriberRecord


async def _current_prescriber(
    request: Request, session: SessionDep, runtime: RuntimeDep
) -> SignedInPrescriber:
    principal = runtime.tokens.verify(bearer_token(request), expected=ClientKind.PRESCRIBER)
    observability.note_client(principal.kind, principal.client_id)
    facility, prescriber = await registry.current_prescriber(session, principal)
    return SignedInPrescriber(facility, prescriber)


CurrentPrescriber = Annotated[SignedInPrescriber, Depends(_current_prescriber)]
