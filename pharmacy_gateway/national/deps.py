"""The pharmacy calling the national protocol's door: `app-name` (connection code) and `app-key` (secret).

The secret is checked by the registry's throttled authentication, like every other door. The
national protocol sends it on every request, and argon2id is slow on purpose: a pair verified
once is remembered for a few minutes by its SHA-256 (never the secret), while the pharmacy's
status and credentials version are still re-read on every request.
"""

from __future__ import annotations

import hashlib
import time
from typing import Annotated

from fastapi import Depends, Request

from eprescribe.registry import service as registry
from eprescribe.registry.schemas import PharmacyRecord
from kit import observability
from kit.database import SessionDep
from kit.errors import Unauthorized
from kit.runtime import RuntimeDep, client_address
from kit.security import ClientKind, Principal
from kit.throttle import PaceDep

REMEMBERED_SECONDS = 300
REMEMBERED_PAIRS = 10_000
_verified: dict[str, tuple[Principal, float]] = {}


def _fingerprint(name: str, key: str) -> str:
    return hashlib.sha256(f"{name.strip().upper()}\0{key}".encode()).hexdigest()


async def _national_pharmacy(
    request: Request, session: SessionDep, runtime: RuntimeDep, pace: PaceDep
) -> PharmacyRecord:
    name, key = request.headers.get("app-name", "").strip(), request.headers.get("app-key", "")
    if not name or not key:
        raise Unauthorized("Gửi mã liên thông và mật khẩu của cơ sở trong tiêu đề app-name và app-key")
    fingerprint = _fingerprint(name, key)
    remembered = _verified.get(fingerprint)
    if remembered is not None and remembered[1] > time.monotonic():
        principal = remembered[0]
    else:
        principal = await registry.authenticate(
            session, runtime, ClientKind.PHARMACY, name, key, address=client_address(request), pace=pace
        )
        if len(_verified) >= REMEMBERED_PAIRS:
            _verified.clear()
        _verified[fingerprint] = (principal, time.monotonic() + REMEMBERED_SECONDS)
    observability.note_client(principal.kind, principal.client_id)
    # A rotated secret or a suspended outlet fails here at once, remembered or not.
    return await registry.current_pharmacy(session, principal)


NationalPharmacy = Annotated[PharmacyRecord, Depends(_national_pharmacy)]
