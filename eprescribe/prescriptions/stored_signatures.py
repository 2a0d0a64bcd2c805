"""Every stored prescription verified again, in whichever signed form its door accepted it.

`erx audit verify --signatures` and `erx restore` run this. The contract's payload is read
here; the other forms (a QĐ 808 body, a FHIR Bundle) are read by their doors' own mapping code,
handed in by the composition root as `SignedForm`s (this module cannot import the doors above it).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from eprescribe.prescriptions import codes
from eprescribe.prescriptions.models import Prescription
from eprescribe.prescriptions.schemas import SignedFacts, SignedForm
from eprescribe.prescriptions.signature import payload_digest
from eprescribe.registry import service as registry
from eprescribe.registry.schemas import KeyPeriod
from kit.security import SIGNING_ALGORITHMS, peek_header


def _contract_facts(payload: Mapping[str, Any]) -> SignedFacts:
    # As the contract's strict model reads them: strings, surrounding white space stripped.
    facility, kind, code = payload.get("facility_code"), payload.get("kind"), payload.get("code")
    if not isinstance(facility, str) or not isinstance(kind, str):
        raise ValueError("it names no facility and kind")
    if code is None:
        return SignedFacts(facility.strip(), kind)
    named = codes.canonical(code) if isinstance(code, str) else None
    if named is None:
        raise ValueError("its code is not a prescription code")
    return SignedFacts(facility.strip(), kind, named)


# The contract's payload: what every other form is not.
CONTRACT = SignedForm("contract", recognises=lambda _: True, facts=_contract_facts)


@dataclass(frozen=True)
class BadSignature:
    code: str
    reason: str


@dataclass
class StoredCheck:
    """What the check found: signed prescriptions that verify (by form), unsigned ones, bad ones."""

    checked: int = 0
    # Admitted without a signature (ERX_NATIONAL_ACCEPT_UNSIGNED): nothing to verify, no failure.
    unsigned: int = 0
    verified: Counter[str] = field(default_factory=Counter)
    bad: list[BadSignature] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.bad


@dataclass(frozen=True)
class _Period:
    """One of a prescriber's keys, imported once, and when it was current."""

    period: KeyPeriod
    key: ECKey | None  # None: the stored JWK no longer imports


async def check_stored(
    session: AsyncSession,
    advance: Callable[[int], None] | None = None,
    *,
    forms: Sequence[SignedForm],
    batch: int = 1000,
) -> StoredCheck:
    """Verify every stored prescription's JWS again with the key its prescriber had when it came.

    After a restore this proves the prescriptions are the ones their prescribers signed: the
    signature verifies with the key that was current when the prescription was received (a
    later key change does not orphan it), its `kid` is the row's prescriber, its payload, read
    as its door read it (`forms`, else the contract's), names the row's facility, kind and code,
    and its digest is the row's. A legacy unsigned row is counted apart; a row whose `unsigned`
    marker disagrees with its JWS is bad. It streams in batches by code; each prescriber's keys
    are read once, for all the new prescribers of a batch at a time.
    """
    keys: dict[str, list[_Period]] = {}
    found = StoredCheck()
    after = ""
    while True:
        rows = (
            await session.execute(
                select(
                    Prescription.code,  # type: ignore[call-overload]
                    Prescription.prescriber_id,
                    Prescription.facility_code,
                    Prescription.kind,
                    Prescription.jws,
                    Prescription.unsigned,
                    Prescription.payload_digest,
                    Prescription.created_at,
                )
                .where(col(Prescription.code) > after)
                .order_by(col(Prescription.code))
                .limit(batch)
            )
        ).all()
        if not rows:
            return found
        unseen = sorted({row.prescriber_id for row in rows} - keys.keys())
        if unseen:
            for pid, periods in (await registry.prescriber_keys(session, unseen)).items():
                keys[pid] = [_Period(p, _import(p.public_jwk)) for p in periods]
        for row in rows:
            found.checked += 1
            if row.unsigned and not row.jws:
                found.unsigned += 1
                continue
            reason, form = _stored_problem(row, keys[row.prescriber_id], forms)
            if reason is not None:
                found.bad.append(BadSignature(row.code, reason))
            else:
                found.verified[form] += 1
        after = rows[-1].code
        if advance is not None:
            advance(len(rows))


def _import(jwk: dict[str, Any]) -> ECKey | None:
    try:
        return ECKey.import_key(jwk)
    except (JoseError, ValueError, TypeError):
        return None


def _stored_problem(row: Any, periods: list[_Period], forms: Sequence[SignedForm]) -> tuple[str | None, str]:
    """Why this row's signature does not hold (None when it does), and the form it was read as."""
    # Only the legacy door stores a row without a JWS, and it marks it: a disagreement is an edit.
    if row.unsigned:
        return "it is marked unsigned (a legacy submission) yet holds a signature", CONTRACT.name
    if not row.jws:
        return "it holds no signature yet is not marked unsigned", CONTRACT.name
    if not periods:
        return "its prescriber is not registered", CONTRACT.name
    # Received at `created_at`: the key current then signed it (registered_at <= t < retired_at).
    current = next((p for p in periods if p.period.was_current(row.created_at)), None)
    if current is None:
        return "none of the prescriber's keys was current when it was received", CONTRACT.name
    if current.key is None:
        return "the prescriber's key of that time cannot be read", CONTRACT.name
    try:
        if peek_header(row.jws).get("kid") != row.prescriber_id:
            return "the signature names another prescriber", CONTRACT.name
        verified = jws.deserialize_compact(row.jws, current.key, algorithms=SIGNING_ALGORITHMS)
        payload = json.loads(verified.payload)
    except (JoseError, ValueError, UnicodeDecodeError):
        return (
            "the signature does not verify with the prescriber's key of the time it was received",
            CONTRACT.name,
        )
    if not isinstance(payload, dict):
        return "the signed payload is not a JSON object", CONTRACT.name
    # The forms' distinguishing fields are disjoint (each refuses the others' when admitted), so
    # the payload itself says which door read it; no stored marker is needed or trusted.
    form = next((f for f in forms if f.recognises(payload)), CONTRACT)
    try:
        facts = form.facts(payload)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return f"the signed payload cannot be read as a {form.name} prescription: {exc}", form.name
    for name, signed, stored in (
        ("facility", facts.facility_code, row.facility_code),
        ("kind", facts.kind, row.kind),
        ("code", facts.code, row.code),
    ):
        if signed is not None and signed != stored:
            return f"the signed payload ({form.name}) names another {name}", form.name
    if payload_digest(row.jws) != row.payload_digest:
        return "the stored digest is not the signed payload's", form.name
    return None, form.name
