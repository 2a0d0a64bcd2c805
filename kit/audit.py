"""The access log: every read or change of a prescription, by anyone, is written here.

Tamper-evident: each prescription's entries form a hash chain (`seq` 1, 2, ...; each
`entry_hash` covers the previous one's, its `seq` and its own content), and `access_log_head`
holds each chain's end. An append locks only its chain's head row, so chains never wait on each
other, and two appends to one chain take turns on that row (PostgreSQL's upsert re-reads it):
no gap, no fork. `erx audit verify` (kit.audit_verify) walks every chain.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Column,
    Index,
    Integer,
    String,
    UniqueConstraint,
    bindparam,
    cast,
    insert,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Field, SQLModel

from kit.database import UTCDateTime, bigint_pk, on_rollback
from kit.prepared import Prepared
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
    READ_FHIR = "read_fhir"


class Refusal(StrEnum):
    DENIED = "denied"
    NOT_FOUND = "not_found"
    THROTTLED = "throttled"


def refused(action: AccessAction, why: Refusal) -> str:
    """The logged action of a refused attempt, e.g. `lookup_not_found`."""
    return f"{action.value}_{why.value}"


class AccessLogEntry(SQLModel, table=True):
    """One access, chained: `entry_hash` covers the previous entry's hash, `seq` and this content."""

    __tablename__ = "access_log"
    __table_args__ = (
        Index("ix_access_log_prescription_code_at", "prescription_code", "at"),
        UniqueConstraint("prescription_code", "seq"),
    )

    id: int | None = Field(default=None, sa_column=bigint_pk())
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    prescription_code: str = Field(sa_column=Column(String(14), nullable=False))
    actor_kind: str = Field(max_length=16)
    actor_code: str = Field(max_length=64)
    action: str = Field(max_length=32)
    client_address: str | None = Field(default=None, max_length=64)
    seq: int = Field(sa_column=Column(Integer, nullable=False))
    prev_hash: str = Field(sa_column=Column(String(64), nullable=False))
    entry_hash: str = Field(sa_column=Column(String(64), nullable=False))


class AccessLogHead(SQLModel, table=True):
    """The end of each prescription's chain: appends lock this one row, never the whole log."""

    __tablename__ = "access_log_head"

    prescription_code: str = Field(sa_column=Column(String(14), primary_key=True))
    seq: int = Field(sa_column=Column(Integer, nullable=False))
    prev_hash: str = Field(sa_column=Column(String(64), nullable=False))
    entry_hash: str = Field(sa_column=Column(String(64), nullable=False))


# ---- the chain -------------------------------------------------------------------------------

SEPARATOR = "\x1f"


def stamp(at: datetime) -> str:
    """The instant as hashed: UTC, microseconds (what both engines store and give back)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def content_digest(
    *,
    prescription_code: str,
    at: datetime,
    actor_kind: str,
    actor_code: str,
    action: str,
    client_address: str | None,
) -> str:
    """SHA-256 of an entry's content, every field in a fixed order."""
    fields = [prescription_code, stamp(at), actor_kind, actor_code, action, client_address or ""]
    return hashlib.sha256(SEPARATOR.join(fields).encode()).hexdigest()


def chain_hash(prev_hash: str, seq: int, digest: str) -> str:
    """An entry's hash: what the database computes on append (`sha256_hex` below)."""
    return hashlib.sha256(f"{prev_hash}:{seq}:{digest}".encode()).hexdigest()


class sha256_hex(FunctionElement[str]):
    """SHA-256 of a text, in hex: PostgreSQL's own `sha256`, a registered function on SQLite."""

    type = String()
    inherit_cache = True


@compiles(sha256_hex, "postgresql")
def _sha256_pg(element: sha256_hex, compiler: SQLCompiler, **kw: Any) -> str:
    return f"encode(sha256(convert_to({compiler.process(element.clauses, **kw)}, 'UTF8')), 'hex')"


@compiles(sha256_hex)
def _sha256_other(element: sha256_hex, compiler: SQLCompiler, **kw: Any) -> str:
    return f"erx_sha256({compiler.process(element.clauses, **kw)})"


LOG = AccessLogEntry.__table__  # type: ignore[attr-defined]
HEAD = AccessLogHead.__table__  # type: ignore[attr-defined]
_CONTENT = ("at", "prescription_code", "actor_kind", "actor_code", "action", "client_address")


def _advance(dialect_insert: Any) -> Any:
    """Move a chain's head one entry on: insert it at 1, or lock it and step it (one statement)."""
    digest = bindparam("entry_digest", type_=String())
    first = sha256_hex(literal_column("':1:'", String()) + digest)
    stmt = dialect_insert(HEAD).values(
        prescription_code=bindparam("entry_code", type_=String()), seq=1, prev_hash="", entry_hash=first
    )
    following = HEAD.c.seq + 1
    return stmt.on_conflict_do_update(
        index_elements=[HEAD.c.prescription_code],
        set_={
            "seq": following,
            "prev_hash": HEAD.c.entry_hash,
            "entry_hash": sha256_hex(HEAD.c.entry_hash + ":" + cast(following, String()) + ":" + digest),
        },
    ).returning(HEAD.c.seq, HEAD.c.prev_hash, HEAD.c.entry_hash)


def _content_params() -> list[Any]:
    types = {"at": UTCDateTime()}
    return [bindparam(f"entry_{name}", type_=types.get(name, String())) for name in _CONTENT]


# PostgreSQL: one statement per entry, built once (every prescription access writes one): the
# head's upsert in a CTE, the entry inserted from what it returns.
_HEAD_PG = _advance(postgresql.insert).cte("head")
_APPEND_PG = Prepared(
    insert(LOG).from_select(
        [*_CONTENT, "seq", "prev_hash", "entry_hash"],
        select(*_content_params(), _HEAD_PG.c.seq, _HEAD_PG.c.prev_hash, _HEAD_PG.c.entry_hash),
    )
)
# SQLite has no data-modifying CTE: the head's upsert, then the entry (one writer at a time).
_HEAD_SQLITE = _advance(sqlite.insert)
_APPEND_SQLITE = insert(LOG).values(
    {
        **dict(zip(_CONTENT, _content_params(), strict=True)),
        "seq": bindparam("entry_seq"),
        "prev_hash": bindparam("entry_prev"),
        "entry_hash": bindparam("entry_chained"),
    }
)


async def _append(session: AsyncSession, entry: dict[str, Any]) -> None:
    params = {f"entry_{name}": entry[name] for name in _CONTENT}
    params["entry_code"] = entry["prescription_code"]
    params["entry_digest"] = content_digest(**entry)
    if session.get_bind().dialect.name == "postgresql":
        await _APPEND_PG.rows(session, params)
        return
    head = (await session.execute(_HEAD_SQLITE, params)).one()
    await session.execute(
        _APPEND_SQLITE,
        {**params, "entry_seq": head.seq, "entry_prev": head.prev_hash, "entry_chained": head.entry_hash},
    )


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
    """Append one entry to the prescription's chain in the caller's transaction.

    `durable=True` keeps the entry even when the request is refused and its transaction rolls
    back (a denied read, an unknown code): it is then appended again in a transaction of its own.
    """
    entry = {
        "at": at or utcnow(),
        "prescription_code": prescription_code,
        "actor_kind": actor_kind.value,
        "actor_code": actor_code,
        "action": str(action),
        "client_address": client_address,
    }
    await _append(session, entry)
    if durable:

        async def rewrite(fresh: AsyncSession) -> None:
            await _append(fresh, entry)

        on_rollback(session, rewrite)


async def entries_for(session: AsyncSession, prescription_code: str) -> list[AccessLogEntry]:
    result = await session.execute(
        select(AccessLogEntry)
        .where(AccessLogEntry.prescription_code == prescription_code)  # type: ignore[arg-type]
        .order_by(AccessLogEntry.at, AccessLogEntry.id)  # type: ignore[arg-type]
    )
    return list(result.scalars())
