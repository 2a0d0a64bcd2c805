"""The access log: every read or change of a prescription, by anyone, is written here."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, String, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from kit.database import UTCDateTime, bigint_pk, on_rollback
from kit.time import utcnow


class ActorKind(StrEnum):
    """Who looked: a client kind of the registry, or the patient with their own code."""

    ADMIN = "admin"
    FACILITY = "facility"
    PHARMACY = "pharmacy"
    PATIENT = "patient"


class AccessAction(StrEnum):
    """What was done to a prescription; a refused attempt adds a `Refusal` suffix."""

    CREATE = "create"
    READ = "read"
    QR_PNG = "qr_png"
    QR_SVG = "qr_svg"
    CANCEL = "cancel"
    READ_ACCESS_LOG = "read_access_log"
    CONSOLE_PRINT = "console_print"
    # A console list that shows the patient's name (the prescriber's recent prescriptions).
    CONSOLE_LIST = "console_list"
    # The prescriber console: a patient's earlier prescriptions listed by a search, one opened to
    # write it again (renew) or to correct it (replace).
    PATIENT_SEARCH = "patient_search"
    CONSOLE_RENEW = "console_renew"
    CONSOLE_REPLACE = "console_replace"
    LOOKUP = "lookup"
    DISPENSE = "dispense"
    DISPENSE_VOID = "dispense_void"
    PATIENT_SIGN_IN = "patient_sign_in"
    PATIENT_VIEW = "patient_view"


class Refusal(StrEnum):
    DENIED = "denied"
    NOT_FOUND = "not_found"
    THROTTLED = "throttled"


def refused(action: AccessAction, why: Refusal) -> str:
    """The logged action of a refused attempt, e.g. `lookup_not_found`."""
    return f"{action.value}_{why.value}"


class AccessLogEntry(SQLModel, table=True):
    __tablename__ = "access_log"
    __table_args__ = (Index("ix_access_log_prescription_code_at", "prescription_code", "at"),)

    id: int | None = Field(default=None, sa_column=bigint_pk())
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    prescription_code: str = Field(sa_column=Column(String(14), nullable=False))
    actor_kind: str = Field(max_length=16)
    actor_code: str = Field(max_length=64)
    action: str = Field(max_length=32)
    client_address: str | None = Field(default=None, max_length=64)


# One Core INSERT per entry, built once (every prescription access writes one).
_INSERT = insert(AccessLogEntry.__table__)  # type: ignore[attr-defined]


async def record_access(
    session: AsyncSession,
    *,
    prescription_code: str,
    actor_kind: ActorKind,
    actor_code: str,
    action: str,
    client_address: str | None = None,
    at: datetime | None = None,
    durable: bool = False,
) -> None:
    """Add one entry to the log in the caller's transaction.

    `durable=True` keeps the entry even when the request is refused and its transaction rolls
    back (a denied read, an unknown code): it is then written again in a transaction of its own.
    """
    entry = {
        "at": at or utcnow(),
        "prescription_code": prescription_code,
        "actor_kind": actor_kind.value,
        "actor_code": actor_code,
        "action": str(action),
        "client_address": client_address,
    }
    await session.execute(_INSERT, entry)
    if durable:

        async def rewrite(fresh: AsyncSession) -> None:
            await fresh.execute(_INSERT, entry)

        on_rollback(session, rewrite)


async def entries_for(session: AsyncSession, prescription_code: str) -> list[AccessLogEntry]:
    result = await session.execute(
        select(AccessLogEntry)
        .where(AccessLogEntry.prescription_code == prescription_code)  # type: ignore[arg-type]
        .order_by(AccessLogEntry.at, AccessLogEntry.id)  # type: ignore[arg-type]
    )
    return list(result.scalars())
