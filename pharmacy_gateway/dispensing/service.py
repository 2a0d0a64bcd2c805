"""Rules of the pharmacy counter: lookup, dispensing, voids and history (no HTTP, never commits)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.catalogue import service as catalogue
from eprescribe.catalogue.schemas import Product
from eprescribe.prescriptions import service as prescriptions
from eprescribe.prescriptions.exceptions import NotDispensable, PrescriptionNotFound, QuantityExceeded
from eprescribe.prescriptions.schemas import CONTROLLED_KINDS, Line, PrescriptionRecord
from eprescribe.registry import service as registry
from eprescribe.registry.schemas import PharmacyRecord
from kit import audit, idempotency, metrics, throttle
from kit.audit import AccessAction, ActorKind, Refusal
from kit.errors import Throttled
from kit.runtime import Runtime
from kit.security import ClientKind, IssuedToken
from kit.time import utcnow, vn_time, vn_today
from pharmacy_gateway.dispensing import checks, repository
from pharmacy_gateway.dispensing.exceptions import ControlledLicenceRequired, DispenseNotFound, VoidRefused

# The dispense history's reads sit in a module of their own; this service stays the one door to them.
from pharmacy_gateway.dispensing.history import PatientDispense as PatientDispense
from pharmacy_gateway.dispensing.history import SoldLine as SoldLine
from pharmacy_gateway.dispensing.history import dispenses_for_patient as dispenses_for_patient
from pharmacy_gateway.dispensing.history import history as history
from pharmacy_gateway.dispensing.history import own_dispense as own_dispense
from pharmacy_gateway.dispensing.history import own_dispense_by_receipt as own_dispense_by_receipt
from pharmacy_gateway.dispensing.history import paid_price_medians as paid_price_medians
from pharmacy_gateway.dispensing.schemas import (
    DispenseCreate,
    DispenseVoided,
    GatewayItem,
    GatewayPrescription,
    LineBalance,
    PatientSummary,
    Substitute,
)

# The access log's code column holds 14 characters: an unparsable guess keeps a recognisable head.
UNKNOWN_MARKER_LENGTH = 12


# ---- credentials --------------------------------------------------------------------------


async def issue_token(
    session: AsyncSession,
    runtime: Runtime,
    *,
    client_id: str,
    client_secret: str,
    address: str,
    pace: throttle.Pace,
) -> IssuedToken:
    """Exchange a connection code and secret for a token; wrong secrets are counted and throttled."""
    principal = await registry.authenticate(
        session, runtime, ClientKind.PHARMACY, client_id, client_secret, address=address, pace=pace
    )
    return runtime.tokens.issue(principal)


# ---- finding a prescription ---------------------------------------------------------------


def access_marker(text: str) -> str:
    """What the access log records for a looked-up text: its canonical code, or a short head of it."""
    code = prescriptions.code_from_scanned(text)
    return code if code is not None else "?" + text.strip()[:UNKNOWN_MARKER_LENGTH]


async def _log(
    session: AsyncSession,
    pharmacy: PharmacyRecord,
    code: str,
    action: str,
    address: str,
    *,
    durable: bool = False,
) -> None:
    await audit.record_access(
        session,
        prescription_code=code,
        actor_kind=ActorKind.PHARMACY,
        actor_code=pharmacy.connection_code,
        action=action,
        client_address=address,
        durable=durable,
    )


Finder = Callable[[str], Awaitable[PrescriptionRecord | None]]


async def _resolve(
    session: AsyncSession,
    runtime: Runtime,
    *,
    pharmacy: PharmacyRecord,
    text: str,
    action: AccessAction,
    address: str,
    pace: throttle.Pace,
    finder: Finder,
) -> PrescriptionRecord:
    """Find the prescription a typed code or scanned QR names, counting and logging misses.

    A miss is a possible guess: it is answered late, counted against this pharmacy's own quota
    (only its token can spend it; a miss never touches a sign-in) and logged even though the
    request then rolls back (both are rewritten in a transaction of its own). `finder` reads
    (a lookup) or locks (a dispense) the prescription of a canonical code.
    """
    marker = access_marker(text)
    keys = throttle.lookup_subjects(runtime.settings, client_id=pharmacy.connection_code)
    try:
        attempt = await throttle.guard(session, runtime.settings, keys, pace)
    except Throttled:
        await _log(session, pharmacy, marker, audit.refused(action, Refusal.THROTTLED), address, durable=True)
        raise
    code = prescriptions.code_from_scanned(text)
    found = await finder(code) if code is not None else None
    if found is None:
        await attempt.failed(refused_with_error=True)
        await _log(session, pharmacy, marker, audit.refused(action, Refusal.NOT_FOUND), address, durable=True)
        if action is AccessAction.LOOKUP:
            metrics.LOOKUPS.labels("not_found").inc()
        raise PrescriptionNotFound(marker)
    return found


def initials(full_name: str) -> str:
    """`Trần Thị Bình` -> `T. T. B.`: enough to match the person at the counter, not to name them."""
    return " ".join(f"{word[0].upper()}." for word in full_name.split() if word)


def _substitute(product: Product) -> Substitute:
    return Substitute(
        registration_no=product.registration_no,
        name=product.name,
        unit=product.unit,
        declared_price=product.declared_price,
    )


def _item(line: Line, substitutes: Sequence[Product]) -> GatewayItem:
    return GatewayItem(
        line_no=line.line_no,
        active_ingredient=line.active_ingredient,
        strength=line.strength,
        dosage_form=line.dosage_form,
        registration_no=line.registration_no,
        quantity=line.quantity,
        unit=line.unit,
        instructions=line.instructions,
        days_supply=line.days_supply,
        dispensed=line.dispensed,
        remaining=line.remaining,
        substitutes=[_substitute(p) for p in substitutes],
    )


async def lookup(
    session: AsyncSession,
    runtime: Runtime,
    *,
    pharmacy: PharmacyRecord,
    text: str,
    address: str,
    pace: throttle.Pace,
) -> GatewayPrescription:
    """What a pharmacist needs to dispense, and nothing more; every lookup is logged."""
    found = await _resolve(
        session,
        runtime,
        pharmacy=pharmacy,
        text=text,
        action=AccessAction.LOOKUP,
        address=address,
        pace=pace,
        finder=lambda code: prescriptions.find(session, code),
    )
    await _require_licence(session, pharmacy, found, AccessAction.LOOKUP, address)
    await _log(session, pharmacy, found.code, AccessAction.LOOKUP, address)
    metrics.LOOKUPS.labels("found").inc()
    substitutes = await catalogue.substitutes_by_keys(session, [line.key for line in found.lines])
    name = found.patient.full_name
    return GatewayPrescription(
        code=found.code,
        kind=found.kind,
        status=found.status_at(utcnow()),
        issued_at=vn_time(found.issued_at),
        valid_until=vn_time(found.valid_until),
        facility_code=found.facility_code,
        facility_name=found.facility_name,
        prescriber_name=found.prescriber_name,
        replaced_by=found.replaced_by_code,
        patient=PatientSummary(
            # HIV/AIDS patients are never named to a pharmacy.
            full_name=initials(name) if found.sensitive else name,
            gender=found.patient.gender,
            birth_year=found.patient.date_of_birth.year,
        ),
        items=[_item(line, substitutes[line.key]) for line in found.lines],
        qr_verified=prescriptions.qr_matches(runtime.keyring, text, found) if "." in text.strip() else None,
    )


async def lookup_record(
    session: AsyncSession,
    runtime: Runtime,
    *,
    pharmacy: PharmacyRecord,
    text: str,
    address: str,
    pace: throttle.Pace,
) -> PrescriptionRecord:
    """Find a prescription as `lookup` does (throttled misses, the access log) for another dialect's read.

    The caller shows a pharmacy no more than `lookup` does (no identity numbers, no diagnoses).
    """
    found = await _resolve(
        session,
        runtime,
        pharmacy=pharmacy,
        text=text,
        action=AccessAction.LOOKUP,
        address=address,
        pace=pace,
        finder=lambda code: prescriptions.find(session, code),
    )
    await _log(session, pharmacy, found.code, AccessAction.LOOKUP, address)
    metrics.LOOKUPS.labels("found").inc()
    return found


# ---- dispensing ---------------------------------------------------------------------------


async def _check_dispensable(
    session: AsyncSession, pharmacy: PharmacyRecord, locked: PrescriptionRecord, address: str, now: datetime
) -> None:
    """Refuse a prescription that is not this outlet's to dispense, or may no longer be dispensed."""
    await _require_licence(session, pharmacy, locked, AccessAction.DISPENSE, address)
    if not prescriptions.dispensable(locked, now):
        raise NotDispensable(
            f"{locked.code} is {locked.status_at(now)}; only an active or partially dispensed prescription "
            "within its validity can be dispensed"
        )


async def _require_licence(
    session: AsyncSession,
    pharmacy: PharmacyRecord,
    found: PrescriptionRecord,
    action: AccessAction,
    address: str,
) -> None:
    """A narcotic or psychotropic prescription is neither shown nor dispensed without a controlled licence."""
    if found.kind in CONTROLLED_KINDS and not pharmacy.controlled_licence:
        await _log(
            session, pharmacy, found.code, audit.refused(action, Refusal.DENIED), address, durable=True
        )
        raise ControlledLicenceRequired(
            "Narcotic and psychotropic prescriptions are read and dispensed only by outlets with a "
            "controlled licence"
        )


async def _record_dispense(
    session: AsyncSession,
    pharmacy: PharmacyRecord,
    locked: PrescriptionRecord,
    body: DispenseCreate,
    now: datetime,
) -> str:
    """Store the handing-over and the products, batches and prices given; return its public id."""
    dispense_id = uuid.uuid4().hex
    await repository.add_dispense(
        session,
        {
            "dispense_id": dispense_id,
            "pharmacy_id": pharmacy.id,
            "prescription_id": locked.id,
            "prescription_code": locked.code,
            "pharmacist_full_name": body.pharmacist.full_name,
            "pharmacist_license_no": body.pharmacist.license_no,
            "created_at": now,
        },
        [
            {
                "position": position,
                "line_no": requested.line_no,
                "registration_no": requested.registration_no,
                "quantity": requested.quantity,
                "unit_price": requested.unit_price,
                "batch_no": requested.batch_no,
                "expiry_date": requested.expiry_date,
            }
            for position, requested in enumerate(body.items, start=1)
        ],
    )
    return dispense_id


async def _dispense(
    session: AsyncSession,
    runtime: Runtime,
    pharmacy: PharmacyRecord,
    code_text: str,
    body: DispenseCreate,
    address: str,
    pace: throttle.Pace,
) -> idempotency.Answer:
    # Found and locked at once: every other change of this prescription queues behind us.
    locked = await _resolve(
        session,
        runtime,
        pharmacy=pharmacy,
        text=code_text,
        action=AccessAction.DISPENSE,
        address=address,
        pace=pace,
        finder=lambda code: prescriptions.lock(session, code),
    )
    now = utcnow()
    await _check_dispensable(session, pharmacy, locked, address, now)
    wanted = await checks.products_for_lines(session, body, locked, vn_today(now))
    checks.check_remaining(body, wanted, locked)
    moved = await prescriptions.move_quantities(session, locked, wanted)
    if moved is None:
        # The guard of last resort: the conditional UPDATE found less than the locked read said.
        raise QuantityExceeded("A line no longer has the quantity asked for; nothing was dispensed")
    dispense_id = await _record_dispense(session, pharmacy, locked, body, now)
    await _log(session, pharmacy, locked.code, AccessAction.DISPENSE, address)
    metrics.DISPENSES.inc()
    answer = {
        "dispense_id": dispense_id,
        "prescription_status": moved.status,
        "items": [
            LineBalance(line_no=line_no, dispensed=d, remaining=r).model_dump()
            for line_no, (d, r) in sorted(moved.balances.items())
        ],
    }
    return idempotency.Answer(201, answer)


async def dispense(
    session: AsyncSession,
    runtime: Runtime,
    *,
    pharmacy: PharmacyRecord,
    code_text: str,
    body: DispenseCreate,
    idempotency_key: str | None,
    address: str,
    pace: throttle.Pace,
) -> idempotency.Answer:
    """Record a sale against a prescription: every line or none, never more than remains."""

    async def work() -> idempotency.Answer:
        return await _dispense(session, runtime, pharmacy, code_text, body, address, pace)

    return await idempotency.run_once(
        session,
        scope=f"pharmacy:{pharmacy.connection_code}:dispenses",
        key=idempotency_key,
        fingerprint={"code": access_marker(code_text), "body": body.model_dump(mode="json")},
        work=work,
    )


async def void(
    session: AsyncSession,
    runtime: Runtime,
    *,
    pharmacy: PharmacyRecord,
    dispense_id: str,
    reason: str,
    address: str,
) -> DispenseVoided:
    """Undo one's own dispense within the void window; the quantities return, both events stay."""
    record = await repository.get_dispense(session, dispense_id=dispense_id.strip(), pharmacy_id=pharmacy.id)
    if record is None:
        raise DispenseNotFound(dispense_id)
    assert record.id is not None
    now = utcnow()
    window = timedelta(seconds=runtime.settings.dispense_void_window_seconds)
    if record.voided_at is not None:
        raise VoidRefused(f"Dispense {record.dispense_id} was already voided at {vn_time(record.voided_at)}")
    if now > record.created_at + window:
        raise VoidRefused(
            f"Dispense {record.dispense_id} is older than {window.total_seconds() / 3600:g} hours; "
            "it can no longer be voided"
        )
    # Same lock order as a dispense: the prescription row first, then the dispense's own rows.
    code = record.prescription_code
    locked = await prescriptions.lock(session, code)
    assert locked is not None
    if not await repository.mark_voided(
        session, dispense_pk=record.id, prescription_code=code, reason=reason, at=now
    ):
        raise VoidRefused(f"Dispense {record.dispense_id} was already voided")
    returned: dict[int, int] = defaultdict(int)
    for line in (await repository.lines_of(session, [record.id], prescription_code=code)).get(record.id, []):
        returned[line.line_no] -= line.quantity
    moved = await prescriptions.move_quantities(session, locked, returned)
    if moved is None:
        raise VoidRefused("A line has less dispensed than this dispense recorded")
    await _log(session, pharmacy, record.prescription_code, AccessAction.DISPENSE_VOID, address)
    return DispenseVoided(
        dispense_id=record.dispense_id,
        voided_at=vn_time(now),
        prescription_status=prescriptions.status_at(moved.status, locked.valid_until, now),
        items=[
            LineBalance(line_no=line_no, dispensed=d, remaining=r)
            for line_no, (d, r) in sorted(moved.balances.items())
        ],
    )
