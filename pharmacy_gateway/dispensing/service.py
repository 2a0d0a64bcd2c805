"""Rules of the pharmacy counter: lookup, dispensing, voids and history (no HTTP, never commits)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from statistics import median_low

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
from kit.errors import FieldErrors, InvalidContent, Throttled, field_error
from kit.runtime import Runtime
from kit.security import ClientKind, IssuedToken
from kit.time import utcnow, vn_time, vn_today
from pharmacy_gateway.dispensing import repository
from pharmacy_gateway.dispensing.exceptions import ControlledLicenceRequired, DispenseNotFound, VoidRefused
from pharmacy_gateway.dispensing.models import Dispense, DispenseLine
from pharmacy_gateway.dispensing.schemas import (
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
    receipt_id_prefix,
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

    A miss is a possible guess: it is counted for throttling and logged even though the
    request then rolls back (both are rewritten in a transaction of its own). `finder` reads
    (a lookup) or locks (a dispense) the prescription of a canonical code.
    """
    marker = access_marker(text)
    keys = throttle.subjects(runtime.settings, connection_code=pharmacy.connection_code, address=address)
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


# ---- dispensing ---------------------------------------------------------------------------


async def _products_for_lines(
    session: AsyncSession, body: DispenseCreate, locked: PrescriptionRecord, today: date
) -> dict[int, int]:
    """Check every requested product against its line; return the quantity asked per line_no."""
    by_line = {line.line_no: line for line in locked.lines}
    products = await catalogue.products_by_registration(session, [i.registration_no for i in body.items])
    errors: FieldErrors = []
    wanted: dict[int, int] = defaultdict(int)
    for index, requested in enumerate(body.items):
        loc: list[str | int] = ["body", "items", index]
        line = by_line.get(requested.line_no)
        if line is None:
            errors.append(
                field_error(
                    [*loc, "line_no"],
                    f"the prescription has no line {requested.line_no}",
                    "line_not_on_prescription",
                    line=requested.line_no,
                )
            )
            continue
        product = products.get(requested.registration_no)
        if product is None:
            errors.append(
                field_error(
                    [*loc, "registration_no"], "no such product in the national catalogue", "not_in_catalogue"
                )
            )
            continue
        if product.key != line.key:
            errors.append(
                field_error(
                    [*loc, "registration_no"],
                    "the product's active ingredient, strength or dosage form differs from the prescribed line",
                    "product_differs_from_line",
                )
            )
            continue
        if requested.expiry_date is not None and requested.expiry_date < today:
            errors.append(field_error([*loc, "expiry_date"], "this batch has expired", "batch_expired"))
            continue
        wanted[requested.line_no] += requested.quantity
    if errors:
        raise InvalidContent.from_errors(errors)
    return dict(wanted)


def _check_remaining(body: DispenseCreate, wanted: dict[int, int], locked: PrescriptionRecord) -> None:
    remaining = {line.line_no: line.remaining for line in locked.lines}
    errors: FieldErrors = []
    for line_no, quantity in wanted.items():
        if quantity > remaining[line_no]:
            index = next(i for i, item in enumerate(body.items) if item.line_no == line_no)
            errors.append(
                field_error(
                    ["body", "items", index, "quantity"],
                    f"{quantity} asked for line {line_no}, only {remaining[line_no]} remain",
                    "quantity_exceeds_remaining",
                    asked=quantity,
                    line=line_no,
                    remaining=remaining[line_no],
                )
            )
    if errors:
        raise QuantityExceeded(errors[0]["msg"], errors=errors)


async def _check_dispensable(
    session: AsyncSession, pharmacy: PharmacyRecord, locked: PrescriptionRecord, address: str, now: datetime
) -> None:
    """Refuse a prescription that may no longer be dispensed, or not by this outlet."""
    if not prescriptions.dispensable(locked, now):
        raise NotDispensable(
            f"{locked.code} is {locked.status_at(now)}; only an active or partially dispensed prescription "
            "within its validity can be dispensed"
        )
    if locked.kind in CONTROLLED_KINDS and not pharmacy.controlled_licence:
        await _log(
            session,
            pharmacy,
            locked.code,
            audit.refused(AccessAction.DISPENSE, Refusal.DENIED),
            address,
            durable=True,
        )
        raise ControlledLicenceRequired(
            "Narcotic and psychotropic prescriptions are dispensed only by outlets with a controlled licence"
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
    wanted = await _products_for_lines(session, body, locked, vn_today(now))
    _check_remaining(body, wanted, locked)
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


# ---- history ------------------------------------------------------------------------------


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


async def history(
    session: AsyncSession,
    *,
    pharmacy: PharmacyRecord,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> DispensePage:
    """This pharmacy's own dispenses, newest first, voided ones included and flagged."""
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


async def own_dispense(session: AsyncSession, *, pharmacy: PharmacyRecord, dispense_id: str) -> DispenseView:
    """Return one of this pharmacy's own dispenses (a receipt); another pharmacy's is never found."""
    record = await repository.get_dispense(session, dispense_id=dispense_id.strip(), pharmacy_id=pharmacy.id)
    if record is None or record.id is None:
        raise DispenseNotFound(dispense_id)
    lines = (await repository.lines_of(session, [record.id], prescription_code=record.prescription_code)).get(
        record.id, []
    )
    return _dispense_view(record, lines)


# ---- what the public side reads ---------------------------------------------------------------


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


@dataclass(frozen=True)
class SoldLine:
    registration_no: str
    quantity: int


@dataclass(frozen=True)
class PatientDispense:
    """A dispense as the patient sees it: where, when, what; never the pharmacist's licence."""

    pharmacy_name: str
    pharmacy_address: str
    created_at: datetime
    voided: bool
    lines: list[SoldLine]


async def dispenses_for_patient(
    session: AsyncSession, prescription_id: int, *, code: str
) -> list[PatientDispense]:
    """List what was handed over against this prescription, by which pharmacy, oldest first."""
    records = await repository.dispenses_of_prescription(session, prescription_id, code=code)
    lines = await repository.lines_of(
        session, [r.id for r in records if r.id is not None], prescription_code=code
    )
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
                lines=[
                    SoldLine(line.registration_no, line.quantity) for line in lines.get(record.id or 0, [])
                ],
            )
        )
    return found


async def own_dispense_by_receipt(
    session: AsyncSession, *, pharmacy: PharmacyRecord, receipt_no: str
) -> DispenseView | None:
    """This pharmacy's dispense with the short number printed on its receipt, if there is one."""
    prefix = receipt_id_prefix(receipt_no)
    if prefix is None:
        return None
    record = await repository.dispense_with_id_prefix(session, pharmacy_id=pharmacy.id, prefix=prefix)
    if record is None or record.id is None:
        return None
    lines = (await repository.lines_of(session, [record.id])).get(record.id, [])
    return _dispense_view(record, lines)
