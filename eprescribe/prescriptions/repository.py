"""Queries of prescriptions and their lines; nothing here commits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    String,
    bindparam,
    case,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

if TYPE_CHECKING:
    from kit.database import AnyRow

from eprescribe.prescriptions.models import Prescription, PrescriptionItem, PrescriptionPayload
from eprescribe.prescriptions.schemas import LEDGER_STATUSES, PrescriptionStatus
from kit.database import insert_with_lines
from kit.prepared import Prepared

RX = Prescription.__table__  # type: ignore[attr-defined]
ITEM = PrescriptionItem.__table__  # type: ignore[attr-defined]
PAYLOAD = PrescriptionPayload.__table__  # type: ignore[attr-defined]


class PayloadReplayed(Exception):
    """The signed payload was accepted before (known where only `prescription_payload` knows)."""


# What other modules receive of a prescription (the prescriber's JWS stays behind).
HEADER = (
    RX.c.id,
    RX.c.code,
    RX.c.kind,
    RX.c.status,
    RX.c.facility_code,
    RX.c.prescriber_id,
    RX.c.prescriber_name,
    RX.c.facility_name,
    RX.c.issued_at,
    RX.c.valid_until,
    RX.c.replaces_code,
    RX.c.replaced_by_code,
    RX.c.patient_full_name,
    RX.c.patient_date_of_birth,
    RX.c.patient_gender,
    RX.c.patient_national_id,
    RX.c.patient_insurance_no,
    RX.c.patient_weight_kg,
    RX.c.patient_phone,
    RX.c.patient_address,
    RX.c.guardian,
    RX.c.diagnoses,
    RX.c.notes,
    RX.c.follow_up_date,
    RX.c.sensitive,
)
LINE = (
    ITEM.c.line_no,
    ITEM.c.active_ingredient,
    ITEM.c.strength,
    ITEM.c.dosage_form,
    ITEM.c.registration_no,
    ITEM.c.quantity,
    ITEM.c.unit,
    ITEM.c.instructions,
    ITEM.c.days_supply,
    ITEM.c.dispensed,
    ITEM.c.remaining,
    ITEM.c.ingredient_key,
    ITEM.c.strength_key,
    ITEM.c.form_key,
)


def _with_lines(lock: bool) -> Select[Any]:
    # Joined on the code too: on Citus it is the distribution column, so the join stays on a shard.
    joined = (ITEM.c.prescription_code == RX.c.code) & (ITEM.c.prescription_id == RX.c.id)
    stmt = (
        select(*HEADER, *LINE)
        .join_from(RX, ITEM, joined)
        # Both tables filtered by the code, so a router planner sends the query to one shard.
        .where(RX.c.code == bindparam("code"), ITEM.c.prescription_code == bindparam("code"))
        .order_by(ITEM.c.line_no)
    )
    return stmt.with_for_update() if lock else stmt


# Built once: the hot paths read and lock prescriptions by these.
_WITH_LINES = {lock: Prepared(_with_lines(lock)) for lock in (False, True)}


async def with_lines(session: AsyncSession, code: str, *, lock: bool = False) -> list[AnyRow]:
    """A prescription's header and lines as one joined result, one row per line (one round trip).

    With `lock`, the prescription and its lines are locked for this transaction (SELECT ... FOR
    UPDATE): dispenses, voids, cancellations and replacements of it queue here. The lines are
    locked too, not only the prescription: after waiting for a lock, PostgreSQL returns the newest
    version of the rows it locked but the old snapshot of any row it merely joined, and the ledger
    moves from the quantities read here.
    """
    return await _WITH_LINES[lock].rows(session, {"code": code})


async def get_prescription(session: AsyncSession, code: str) -> Prescription | None:
    result = await session.execute(select(Prescription).where(col(Prescription.code) == code))
    return result.scalar_one_or_none()


async def reload(session: AsyncSession, prescription: Prescription) -> Prescription:
    """Read the row again after a statement changed it (by code and id: one shard on Citus)."""
    result = await session.execute(
        select(Prescription)
        .where(col(Prescription.code) == prescription.code, col(Prescription.id) == prescription.id)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one()


async def payload_seen(session: AsyncSession, digest: str) -> bool:
    result = await session.execute(
        select(col(PrescriptionPayload.payload_digest)).where(
            col(PrescriptionPayload.payload_digest) == digest
        )
    )
    return result.first() is not None


# Queries by the prescription's id also name its code: on Citus the code routes them to one shard.
async def items_of(session: AsyncSession, prescription_id: int, *, code: str) -> list[PrescriptionItem]:
    result = await session.execute(
        select(PrescriptionItem)
        .where(
            col(PrescriptionItem.prescription_code) == code,
            col(PrescriptionItem.prescription_id) == prescription_id,
        )
        .order_by(col(PrescriptionItem.line_no))
        .execution_options(populate_existing=True)
    )
    return list(result.scalars())


async def mark_replaced(session: AsyncSession, *, prescription_id: int, code: str, replaced_by: str) -> bool:
    """Replace only a prescription that is still untouched; atomic against a dispense."""
    result = await session.execute(
        update(Prescription)
        .where(
            col(Prescription.code) == code,
            col(Prescription.id) == prescription_id,
            col(Prescription.status) == PrescriptionStatus.ACTIVE,
        )
        .values(status=PrescriptionStatus.REPLACED, replaced_by_code=replaced_by)
        .returning(col(Prescription.id))
    )
    return result.first() is not None


async def mark_cancelled(
    session: AsyncSession, *, prescription_id: int, code: str, reason: str, at: datetime
) -> bool:
    """Cancel only while nothing is dispensed (status still `active`), in one statement."""
    result = await session.execute(
        update(Prescription)
        .where(
            col(Prescription.code) == code,
            col(Prescription.id) == prescription_id,
            col(Prescription.status) == PrescriptionStatus.ACTIVE,
        )
        .values(status=PrescriptionStatus.CANCELLED, cancelled_at=at, cancel_reason=reason)
        .returning(col(Prescription.id))
    )
    return result.first() is not None


async def move_quantities(
    session: AsyncSession,
    prescription_id: int,
    code: str,
    deltas: Mapping[int, int],
    settled: PrescriptionStatus,
) -> dict[int, tuple[int, int]]:
    """Move `deltas[line_no]` units from remaining to dispensed (negative: back) and settle the status.

    The WHERE clause is the guard: a line whose counter would go below zero is not touched and
    not returned, whatever runs at the same time. The status becomes `settled` only when every
    line moved, and only over a status the lines decide (a cancelled or replaced prescription
    keeps its own). Returns (dispensed, remaining) per moved line; the caller refuses the whole
    request when a line is missing from it. One statement on PostgreSQL; two on SQLite, which
    has no data-modifying CTE.
    """
    if not deltas:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        params = {
            "rx_id": prescription_id,
            "rx_code": code,
            "lines": list(deltas),
            "deltas": list(deltas.values()),
            "settled": settled.value,
            "count": len(deltas),
        }
        return {int(r[0]): (int(r[1]), int(r[2])) for r in await _MOVE_PG.rows(session, params)}
    delta = case(dict(deltas), value=ITEM.c.line_no)
    moved = (
        update(ITEM)
        .where(
            ITEM.c.prescription_code == code,
            ITEM.c.prescription_id == prescription_id,
            ITEM.c.line_no.in_(list(deltas)),
            ITEM.c.remaining >= delta,
            ITEM.c.dispensed + delta >= 0,
        )
        .values(remaining=ITEM.c.remaining - delta, dispensed=ITEM.c.dispensed + delta)
        .returning(ITEM.c.line_no, ITEM.c.dispensed, ITEM.c.remaining)
    )
    found = {int(r[0]): (int(r[1]), int(r[2])) for r in (await session.execute(moved)).all()}
    if len(found) == len(deltas):
        await session.execute(
            update(RX)
            .where(RX.c.code == code, RX.c.id == prescription_id, RX.c.status.in_(list(LEDGER_STATUSES)))
            .values(status=settled)
        )
    return found


def _move_pg() -> Select[Any]:
    """The ledger move on PostgreSQL: one statement for any number of lines, built once.

    The lines and their deltas come as two arrays; the status is settled in the same statement,
    only when every line moved.
    """
    # Parameter names no column has: an UPDATE turns a parameter named like a column into a SET.
    code = bindparam("rx_code", type_=String())
    prescription = bindparam("rx_id", type_=BigInteger())
    wanted = (
        func.unnest(bindparam("lines", type_=ARRAY(Integer)), bindparam("deltas", type_=ARRAY(Integer)))
        .table_valued("line_no", "delta")
        .render_derived(name="wanted")
    )
    moved = (
        update(ITEM)
        .where(
            ITEM.c.prescription_code == code,
            ITEM.c.prescription_id == prescription,
            ITEM.c.line_no == wanted.c.line_no,
            ITEM.c.remaining >= wanted.c.delta,
            ITEM.c.dispensed + wanted.c.delta >= literal_column("0"),
        )
        .values(remaining=ITEM.c.remaining - wanted.c.delta, dispensed=ITEM.c.dispensed + wanted.c.delta)
        .returning(ITEM.c.line_no, ITEM.c.dispensed, ITEM.c.remaining)
        .cte("moved")
    )
    every_line = select(func.count()).select_from(moved).scalar_subquery() == bindparam("count")
    settle = (
        update(RX)
        .where(
            RX.c.code == code,
            RX.c.id == prescription,
            # Constants of the enum, written into the SQL: the statement's text stays fixed.
            RX.c.status.in_([literal_column(f"'{status.value}'") for status in LEDGER_STATUSES]),
            every_line,
        )
        .values(status=bindparam("settled"))
        .returning(RX.c.id)
        .cte("settled")
    )
    return select(moved.c.line_no, moved.c.dispensed, moved.c.remaining).add_cte(settle)


_MOVE_PG = Prepared(_move_pg())


async def recent_headers(
    session: AsyncSession, prescriber_id: str, facility_code: str, limit: int
) -> list[AnyRow]:
    """The newest prescriptions of a prescriber at a facility (HEADER columns, no lines)."""
    stmt = (
        select(*HEADER)
        .where(RX.c.prescriber_id == prescriber_id, RX.c.facility_code == facility_code)
        .order_by(RX.c.issued_at.desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).all())


async def add_prescription(
    session: AsyncSession, row: dict[str, Any], lines: Sequence[dict[str, Any]]
) -> int | None:
    """Insert a prescription, its lines and its payload's digest; None, and nothing stored, when a
    unique index of the prescription refuses it (a code in use or, on one node, a replayed payload).

    The digest goes in its own statement after the prescription: on Citus `prescription_payload`
    is distributed by the digest (another shard), and its key alone refuses a replay there, which
    raises `PayloadReplayed` with the transaction still usable (the caller rolls it back).
    """
    new_id = await insert_with_lines(session, RX, row, ITEM, "prescription_id", lines, skip_conflict=True)
    if new_id is None:
        return None
    claim = _CLAIM_PAYLOAD[session.get_bind().dialect.name]
    claimed = await session.execute(claim, {"digest": row["payload_digest"], "rx_code": row["code"]})
    if claimed.first() is None:
        raise PayloadReplayed
    return new_id


_CLAIM_PAYLOAD = {
    name: dialect_insert(PAYLOAD)
    .values(payload_digest=bindparam("digest"), prescription_code=bindparam("rx_code"))
    .on_conflict_do_nothing()
    .returning(PAYLOAD.c.payload_digest)
    for name, dialect_insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}


async def prescriptions_of_patient(
    session: AsyncSession,
    facility_code: str,
    *,
    national_id: str | None = None,
    insurance_no: str | None = None,
    date_of_birth: date | None = None,
    limit: int,
) -> list[AnyRow]:
    """One facility's prescriptions of a patient (HEADER columns), newest first, by one indexed
    identifier; a name is matched by the caller among the rows of its date of birth."""
    stmt = select(*HEADER).where(RX.c.facility_code == facility_code)
    if national_id is not None:
        stmt = stmt.where(RX.c.patient_national_id == national_id)
    elif insurance_no is not None:
        stmt = stmt.where(RX.c.patient_insurance_no == insurance_no)
    elif date_of_birth is not None:
        stmt = stmt.where(RX.c.patient_date_of_birth == date_of_birth)
    else:
        return []
    return list((await session.execute(stmt.order_by(RX.c.issued_at.desc()).limit(limit))).all())
