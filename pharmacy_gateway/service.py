"""Rules of the pharmacy gateway: lookup, dispensing, voids and history (no HTTP, never commits)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from statistics import median_low
from typing import Any

from joserfc.errors import JoseError
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe import codes
from eprescribe import service as registry
from eprescribe.exceptions import PrescriptionNotFound
from eprescribe.models import Pharmacy, Prescription, PrescriptionItem
from eprescribe.policy import POLICY
from eprescribe.schemas import VIETNAM_TIME, vn_time
from erx import audit, idempotency, throttle
from erx.database import utcnow
from erx.errors import FieldErrors, InvalidContent, field_error
from erx.runtime import Runtime
from erx.security import ClientKind, IssuedToken
from pharmacy_gateway import repository
from pharmacy_gateway.exceptions import (
    ControlledLicenceRequired,
    DispenseNotFound,
    NotDispensable,
    QuantityExceeded,
    VoidRefused,
)
from pharmacy_gateway.models import Dispense, DispenseLine
from pharmacy_gateway.schemas import (
    DispenseCreate,
    DispensedLineView,
    DispensePage,
    DispenseView,
    DispenseVoided,
    GatewayItem,
    GatewayPrescription,
    LineBalance,
    PatientSummary,
    Pharmacist,
    Substitute,
)

ACTOR_KIND = "pharmacy"
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
    principal = await registry.authenticate_guarded(
        session, runtime, ClientKind.PHARMACY, client_id, client_secret, address=address, pace=pace
    )
    return runtime.tokens.issue(principal)


# ---- finding a prescription ---------------------------------------------------------------


def access_marker(text: str) -> str:
    """What the access log records for a looked-up text: its canonical code, or a short head of it."""
    code = codes.from_scanned_text(text)
    return code if code is not None else "?" + text.strip()[:UNKNOWN_MARKER_LENGTH]


async def _resolve(
    session: AsyncSession,
    runtime: Runtime,
    *,
    pharmacy: Pharmacy,
    text: str,
    action: str,
    address: str,
    pace: throttle.Pace,
) -> Prescription:
    """Find the prescription a typed code or scanned QR names, counting and logging misses.

    A miss is a possible guess: it is counted for throttling and logged even though the
    request then rolls back (both are rewritten in a transaction of their own).
    """
    settings = runtime.settings
    keys = throttle.subjects(settings, connection_code=pharmacy.connection_code, address=address)
    verdict = await throttle.verdict(session, settings, keys)
    marker = access_marker(text)
    if verdict.blocked:
        await _log(session, pharmacy, marker, f"{action}_throttled", address, durable=True)
        raise throttle.refuse(verdict)
    if verdict.slowed:
        pace.slow_down(settings.throttle_delay_seconds)
    code = codes.from_scanned_text(text)
    prescription = await registry.find_prescription(session, code) if code is not None else None
    if prescription is None:
        throttle.count_failure_durably(session, settings, keys)
        await _log(session, pharmacy, marker, f"{action}_not_found", address, durable=True)
        raise PrescriptionNotFound(marker)
    return prescription


async def _log(
    session: AsyncSession, pharmacy: Pharmacy, code: str, action: str, address: str, *, durable: bool = False
) -> None:
    await audit.record_access(
        session,
        prescription_code=code,
        actor_kind=ACTOR_KIND,
        actor_code=pharmacy.connection_code,
        action=action,
        client_address=address,
        durable=durable,
    )


def initials(full_name: str) -> str:
    """`Trần Thị Bình` -> `T. T. B.`: enough to match the person at the counter, not to name them."""
    return " ".join(f"{word[0].upper()}." for word in full_name.split() if word)


def qr_matches(
    runtime: Runtime, text: str, prescription: Prescription, items: list[PrescriptionItem]
) -> bool:
    """Check the national signature of a scanned QR and that what it signs matches the record."""
    _, dot, compact = text.strip().partition(".")
    if not dot:
        return False
    try:
        claims = runtime.keyring.verify_compact(compact)
    except (JoseError, ValueError, TypeError, KeyError):
        return False
    return claims == registry.qr_claims(prescription, registry.lines_digest(items))


async def lookup(
    session: AsyncSession,
    runtime: Runtime,
    *,
    pharmacy: Pharmacy,
    text: str,
    address: str,
    pace: throttle.Pace,
) -> GatewayPrescription:
    """What a pharmacist needs to dispense, and nothing more; every lookup is logged."""
    prescription = await _resolve(
        session, runtime, pharmacy=pharmacy, text=text, action="lookup", address=address, pace=pace
    )
    assert prescription.id is not None
    await _log(session, pharmacy, prescription.code, "lookup", address)
    items = await registry.items_for(session, prescription.id)
    prescriber_name, facility_name = await registry.prescriber_and_facility_names(session, prescription)
    scanned = "." in text.strip()
    substitutes_by_line = await registry.substitutes_for_lines(session, items)
    views = []
    for item in items:
        substitutes = substitutes_by_line[item.line_no]
        views.append(
            GatewayItem(
                line_no=item.line_no,
                active_ingredient=item.active_ingredient,
                strength=item.strength,
                dosage_form=item.dosage_form,
                registration_no=item.registration_no,
                quantity=item.quantity,
                unit=item.unit,
                instructions=item.instructions,
                days_supply=item.days_supply,
                dispensed=item.dispensed,
                remaining=item.remaining,
                substitutes=[
                    Substitute(
                        registration_no=d.registration_no,
                        name=d.name,
                        unit=d.unit,
                        declared_price=d.declared_price,
                    )
                    for d in substitutes
                ],
            )
        )
    name = prescription.patient_full_name
    return GatewayPrescription(
        code=prescription.code,
        kind=prescription.kind,
        status=registry.effective_status(prescription),
        issued_at=vn_time(prescription.issued_at),
        valid_until=vn_time(prescription.valid_until),
        facility_code=prescription.facility_code,
        facility_name=facility_name,
        prescriber_name=prescriber_name,
        replaced_by=prescription.replaced_by_code,
        patient=PatientSummary(
            # HIV/AIDS patients are never named to a pharmacy.
            full_name=initials(name) if prescription.sensitive else name,
            gender=prescription.patient_gender,
            birth_year=prescription.patient_date_of_birth.year,
        ),
        items=views,
        qr_verified=qr_matches(runtime, text, prescription, items) if scanned else None,
    )


# ---- dispensing ---------------------------------------------------------------------------


@dataclass
class Outcome:
    status_code: int
    body: dict[str, Any]


async def _check_lines(
    session: AsyncSession, body: DispenseCreate, items: list[PrescriptionItem], today: date
) -> dict[int, int]:
    """Validate every requested line against the prescription; return the quantity per line_no."""
    by_line = {item.line_no: item for item in items}
    products = await registry.drugs_by_registration_numbers(session, [i.registration_no for i in body.items])
    errors: FieldErrors = []
    wanted: dict[int, int] = defaultdict(int)
    for index, requested in enumerate(body.items):
        loc: list[str | int] = ["body", "items", index]
        line = by_line.get(requested.line_no)
        if line is None:
            errors.append(field_error([*loc, "line_no"], f"the prescription has no line {requested.line_no}"))
            continue
        drug = products.get(requested.registration_no)
        if drug is None:
            errors.append(field_error([*loc, "registration_no"], "no such product in the national catalogue"))
            continue
        if not registry.same_product_line(drug, line):
            errors.append(
                field_error(
                    [*loc, "registration_no"],
                    "the product's active ingredient, strength or dosage form differs from the prescribed line",
                )
            )
            continue
        if requested.expiry_date is not None and requested.expiry_date < today:
            errors.append(field_error([*loc, "expiry_date"], "this batch has expired"))
            continue
        wanted[requested.line_no] += requested.quantity
    if errors:
        raise InvalidContent.from_errors(errors)
    return dict(wanted)


def _quantity_errors(
    body: DispenseCreate, wanted: dict[int, int], items: list[PrescriptionItem]
) -> FieldErrors:
    remaining = {item.line_no: item.remaining for item in items}
    errors: FieldErrors = []
    for line_no, quantity in wanted.items():
        if quantity > remaining[line_no]:
            index = next(i for i, item in enumerate(body.items) if item.line_no == line_no)
            errors.append(
                field_error(
                    ["body", "items", index, "quantity"],
                    f"{quantity} asked for line {line_no}, only {remaining[line_no]} remain",
                )
            )
    return errors


async def dispense(
    session: AsyncSession,
    runtime: Runtime,
    *,
    pharmacy: Pharmacy,
    code_text: str,
    body: DispenseCreate,
    idempotency_key: str | None,
    address: str,
    pace: throttle.Pace,
) -> Outcome:
    """Record a sale against a prescription: every line or none, never more than remains."""
    held: idempotency.Claim | None = None
    if idempotency_key is not None:
        outcome = await idempotency.claim(
            session,
            scope=f"pharmacy:{pharmacy.connection_code}:dispenses",
            key=idempotency_key,
            request_hash=idempotency.request_fingerprint(
                {"code": access_marker(code_text), "body": body.model_dump(mode="json")}
            ),
        )
        if isinstance(outcome, idempotency.Replay):
            return Outcome(outcome.status_code, outcome.body)
        held = outcome

    found = await _resolve(
        session, runtime, pharmacy=pharmacy, text=code_text, action="dispense", address=address, pace=pace
    )
    assert found.id is not None and pharmacy.id is not None
    now = utcnow()
    # Every dispense, void, cancellation and replacement of this prescription queues here.
    prescription = await registry.open_for_dispensing(session, found.id, now)
    if prescription is None:
        await session.refresh(found)
        status = registry.effective_status(found, now)
        raise NotDispensable(
            f"{found.code} is {status}; only an active or partially dispensed prescription "
            "within its validity can be dispensed"
        )
    if prescription.kind in POLICY.controlled_kinds and not pharmacy.controlled_licence:
        await _log(session, pharmacy, prescription.code, "dispense_denied", address, durable=True)
        raise ControlledLicenceRequired(
            "Narcotic and psychotropic prescriptions are dispensed only by outlets with a controlled licence"
        )
    items = await registry.items_for(session, found.id)
    wanted = await _check_lines(session, body, items, now.astimezone(VIETNAM_TIME).date())
    errors = _quantity_errors(body, wanted, items)
    if errors:
        raise QuantityExceeded(errors[0]["msg"], errors=errors)

    balances = {item.line_no: (item.dispensed, item.remaining) for item in items}
    # Ascending line order: two transactions touching the same lines never wait on each other
    # in opposite orders (the prescription lock already serialises them; this is belt and braces).
    for line_no in sorted(wanted):
        taken = await registry.take_quantity(session, found.id, line_no, wanted[line_no])
        if taken is None:
            # The guard of last resort: the conditional UPDATE found less than we read.
            raise QuantityExceeded(f"Line {line_no} no longer has {wanted[line_no]} remaining")
        balances[line_no] = taken
    status = await registry.settle_status(session, found.id)

    record = Dispense(
        dispense_id=uuid.uuid4().hex,
        pharmacy_id=pharmacy.id,
        prescription_id=found.id,
        prescription_code=prescription.code,
        pharmacist_full_name=body.pharmacist.full_name,
        pharmacist_license_no=body.pharmacist.license_no,
        created_at=now,
    )
    session.add(record)
    await session.flush()
    assert record.id is not None
    for position, requested in enumerate(body.items, start=1):
        session.add(
            DispenseLine(
                dispense_id=record.id,
                position=position,
                line_no=requested.line_no,
                registration_no=requested.registration_no,
                quantity=requested.quantity,
                unit_price=requested.unit_price,
                batch_no=requested.batch_no,
                expiry_date=requested.expiry_date,
            )
        )
    await session.flush()
    await _log(session, pharmacy, prescription.code, "dispense", address)
    answer = {
        "dispense_id": record.dispense_id,
        "prescription_status": status,
        "items": [
            LineBalance(line_no=line_no, dispensed=d, remaining=r).model_dump()
            for line_no, (d, r) in sorted(balances.items())
        ],
    }
    if held is not None:
        await idempotency.complete(session, held, status_code=201, body=answer)
    return Outcome(201, answer)


async def void(
    session: AsyncSession,
    runtime: Runtime,
    *,
    pharmacy: Pharmacy,
    dispense_id: str,
    reason: str,
    address: str,
) -> DispenseVoided:
    """Undo one's own dispense within the void window; the quantities return, both events stay."""
    assert pharmacy.id is not None
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
    prescription = await registry.lock_prescription(session, record.prescription_id)
    assert prescription is not None
    if not await repository.mark_voided(session, dispense_pk=record.id, reason=reason, at=now):
        raise VoidRefused(f"Dispense {record.dispense_id} was already voided")
    lines = (await repository.lines_of(session, [record.id])).get(record.id, [])
    returned: dict[int, int] = defaultdict(int)
    for line in lines:
        returned[line.line_no] += line.quantity
    for line_no in sorted(returned):
        if (
            await registry.return_quantity(session, record.prescription_id, line_no, returned[line_no])
            is None
        ):
            raise VoidRefused(f"Line {line_no} has less dispensed than this dispense recorded")
    status = await registry.settle_status(session, record.prescription_id)
    await _log(session, pharmacy, record.prescription_code, "dispense_void", address)
    items = await registry.items_for(session, record.prescription_id)
    return DispenseVoided(
        dispense_id=record.dispense_id,
        voided_at=vn_time(now),
        prescription_status=registry.status_at(status, prescription.valid_until, now),
        items=[LineBalance(line_no=i.line_no, dispensed=i.dispensed, remaining=i.remaining) for i in items],
    )


# ---- history ------------------------------------------------------------------------------


async def history(
    session: AsyncSession,
    *,
    pharmacy: Pharmacy,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> DispensePage:
    """This pharmacy's own dispenses, newest first, voided ones included and flagged."""
    assert pharmacy.id is not None
    total, records = await repository.history(
        session, pharmacy_id=pharmacy.id, since=since, until=until, limit=limit, offset=offset
    )
    lines = await repository.lines_of(session, [r.id for r in records if r.id is not None])
    return DispensePage(
        total=total,
        limit=limit,
        offset=offset,
        items=[_dispense_view(r, lines.get(r.id or 0, [])) for r in records],
    )


# ---- what the price portal reads ----------------------------------------------------------


async def paid_price_medians(
    session: AsyncSession, *, registration_no: str, since: datetime
) -> dict[int, tuple[int, int]]:
    """Median unit price actually paid per pharmacy id, and the number of sales, since `since`."""
    prices: dict[int, list[int]] = defaultdict(list)
    for pharmacy_id, unit_price in await repository.paid_prices(
        session, registration_no=registration_no, since=since
    ):
        prices[pharmacy_id].append(unit_price)
    # median_low keeps the answer an integer number of dong that some sale actually paid.
    return {pharmacy_id: (median_low(paid), len(paid)) for pharmacy_id, paid in prices.items()}


# ---- what the pharmacist console and the patient view read ------------------------------------


def _dispense_view(record: Dispense, lines: list[DispenseLine]) -> DispenseView:
    return DispenseView(
        dispense_id=record.dispense_id,
        prescription_code=record.prescription_code,
        created_at=vn_time(record.created_at),
        pharmacist=Pharmacist(full_name=record.pharmacist_full_name, license_no=record.pharmacist_license_no),
        voided=record.voided_at is not None,
        voided_at=vn_time(record.voided_at) if record.voided_at else None,
        void_reason=record.void_reason,
        items=[
            DispensedLineView(
                line_no=line.line_no,
                registration_no=line.registration_no,
                quantity=line.quantity,
                unit_price=line.unit_price,
                batch_no=line.batch_no,
                expiry_date=line.expiry_date,
            )
            for line in lines
        ],
    )


async def own_dispense(session: AsyncSession, *, pharmacy: Pharmacy, dispense_id: str) -> DispenseView:
    """Return one of this pharmacy's own dispenses (a receipt); another pharmacy's is never found."""
    assert pharmacy.id is not None
    record = await repository.get_dispense(session, dispense_id=dispense_id.strip(), pharmacy_id=pharmacy.id)
    if record is None or record.id is None:
        raise DispenseNotFound(dispense_id)
    lines = (await repository.lines_of(session, [record.id])).get(record.id, [])
    return _dispense_view(record, lines)


@dataclass
class PatientDispense:
    """A dispense as the patient sees it: where, when, what; never the pharmacist's licence."""

    pharmacy_name: str
    pharmacy_address: str
    created_at: datetime
    voided: bool
    lines: list[DispenseLine]


async def dispenses_for_patient(session: AsyncSession, prescription: Prescription) -> list[PatientDispense]:
    """List what was handed over against this prescription, by which pharmacy, oldest first."""
    assert prescription.id is not None
    records = await repository.dispenses_of_prescription(session, prescription.id)
    lines = await repository.lines_of(session, [r.id for r in records if r.id is not None])
    outlets = await registry.pharmacies_by_ids(session, sorted({r.pharmacy_id for r in records}))
    found: list[PatientDispense] = []
    for record in records:
        outlet = outlets.get(record.pharmacy_id)
        found.append(
            PatientDispense(
                pharmacy_name=outlet.name if outlet else "",
                pharmacy_address=outlet.address if outlet else "",
                created_at=record.created_at,
                voided=record.voided_at is not None,
                lines=lines.get(record.id or 0, []),
            )
        )
    return found
