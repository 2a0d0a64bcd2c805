"""Queries of the registry; nothing here commits."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

if TYPE_CHECKING:
    from kit.database import AnyRow

from eprescribe.registry.models import (
    AdminClient,
    Facility,
    Pharmacy,
    Prescriber,
    PrescriberFacility,
    RegisteredKey,
)
from eprescribe.registry.schemas import ClientStatus
from kit.database import one_of
from kit.prepared import Prepared

PHARMACY = Pharmacy.__table__  # type: ignore[attr-defined]
FACILITY = Facility.__table__  # type: ignore[attr-defined]
PRESCRIBER = Prescriber.__table__  # type: ignore[attr-defined]
LINK = PrescriberFacility.__table__  # type: ignore[attr-defined]
KEY = RegisteredKey.__table__  # type: ignore[attr-defined]
PHARMACY_COLUMNS = (
    PHARMACY.c.id,
    PHARMACY.c.connection_code,
    PHARMACY.c.name,
    PHARMACY.c.kind,
    PHARMACY.c.province_code,
    PHARMACY.c.address,
    PHARMACY.c.latitude,
    PHARMACY.c.longitude,
    PHARMACY.c.controlled_licence,
    PHARMACY.c.status,
    PHARMACY.c.credentials_version,
)


# Hot-path statements are built once: a request binds parameters and reuses the compiled SQL.
_PHARMACY_BY_CODE = Prepared(select(*PHARMACY_COLUMNS).where(PHARMACY.c.connection_code == bindparam("code")))
_FACILITY_BY_CODE = Prepared(
    select(
        FACILITY.c.facility_code,
        FACILITY.c.name,
        FACILITY.c.province_code,
        FACILITY.c.status,
        FACILITY.c.credentials_version,
    ).where(FACILITY.c.facility_code == bindparam("code"))
)
PRESCRIBER_COLUMNS = (
    PRESCRIBER.c.prescriber_id,
    PRESCRIBER.c.full_name,
    PRESCRIBER.c.license_no,
    PRESCRIBER.c.public_jwk,
    PRESCRIBER.c.controlled_allowed,
    PRESCRIBER.c.status,
)
_SIGNER_AT = Prepared(
    select(
        *PRESCRIBER_COLUMNS,
        select(LINK.c.prescriber_id)
        .where(
            LINK.c.prescriber_id == PRESCRIBER.c.prescriber_id, LINK.c.facility_code == bindparam("facility")
        )
        .exists(),
    ).where(PRESCRIBER.c.prescriber_id == bindparam("prescriber"))
)


async def pharmacy_row(session: AsyncSession, connection_code: str) -> AnyRow | None:
    """The pharmacy's record columns and credentials version, in one Core round trip (hot path)."""
    return await _PHARMACY_BY_CODE.first(session, {"code": connection_code})


async def facility_row(session: AsyncSession, facility_code: str) -> AnyRow | None:
    return await _FACILITY_BY_CODE.first(session, {"code": facility_code})


async def signer_at(session: AsyncSession, prescriber_id: str, facility_code: str) -> AnyRow | None:
    """The prescriber's record columns and whether they work at this facility (last column)."""
    params = {"prescriber": prescriber_id, "facility": facility_code}
    return await _SIGNER_AT.first(session, params)


async def get_admin(session: AsyncSession, client_id: str) -> AdminClient | None:
    return await session.get(AdminClient, client_id)


async def get_facility(session: AsyncSession, facility_code: str) -> Facility | None:
    return await session.get(Facility, facility_code)


async def get_prescriber(
    session: AsyncSession, prescriber_id: str, *, for_update: bool = False
) -> Prescriber | None:
    return await session.get(Prescriber, prescriber_id, with_for_update=for_update)


async def prescriber_by_license(session: AsyncSession, license_no: str) -> Prescriber | None:
    result = await session.execute(select(Prescriber).where(col(Prescriber.license_no) == license_no))
    return result.scalar_one_or_none()


async def prescriber_works_at(session: AsyncSession, prescriber_id: str, facility_code: str) -> bool:
    link = await session.get(PrescriberFacility, (prescriber_id, facility_code))
    return link is not None


async def retire_current_key(session: AsyncSession, prescriber_id: str, at: datetime) -> None:
    """End the current key's period now (a statement of its own, before the new key is added)."""
    await session.execute(
        update(KEY)
        .where(KEY.c.prescriber_id == prescriber_id, KEY.c.retired_at.is_(None))
        .values(retired_at=at)
    )


async def keys_of(session: AsyncSession, prescriber_ids: Sequence[str]) -> list[AnyRow]:
    """Every key these prescribers registered, oldest first per prescriber."""
    result = await session.execute(
        select(KEY.c.prescriber_id, KEY.c.thumbprint, KEY.c.public_jwk, KEY.c.registered_at, KEY.c.retired_at)
        .where(KEY.c.prescriber_id.in_(prescriber_ids))
        .order_by(KEY.c.prescriber_id, KEY.c.registered_at)
    )
    return list(result.all())


async def existing_facility_codes(session: AsyncSession, codes: Sequence[str]) -> set[str]:
    result = await session.execute(
        select(col(Facility.facility_code)).where(col(Facility.facility_code).in_(codes))
    )
    return set(result.scalars())


async def facilities_by_codes(session: AsyncSession, codes: Sequence[str]) -> list[Facility]:
    if not codes:
        return []
    result = await session.execute(select(Facility).where(col(Facility.facility_code).in_(codes)))
    return list(result.scalars())


async def get_pharmacy(session: AsyncSession, connection_code: str) -> Pharmacy | None:
    result = await session.execute(select(Pharmacy).where(col(Pharmacy.connection_code) == connection_code))
    return result.scalar_one_or_none()


# The columns of a `PharmacyRecord`, in its order: the public pages read outlets by id on every
# search, through a Core statement built once.
PHARMACY_RECORDS = select(
    col(Pharmacy.id),
    col(Pharmacy.connection_code),
    col(Pharmacy.name),
    col(Pharmacy.kind),
    col(Pharmacy.province_code),
    col(Pharmacy.address),
    col(Pharmacy.latitude),
    col(Pharmacy.longitude),
    col(Pharmacy.controlled_licence),
    col(Pharmacy.status),
)


@functools.cache
def _pharmacy_records(dialect: str) -> Any:
    return PHARMACY_RECORDS.where(one_of(dialect, col(Pharmacy.id), "ids"))


async def pharmacy_records_by_ids(session: AsyncSession, ids: Sequence[int]) -> list[tuple[Any, ...]]:
    """The record columns of these outlets (in `PharmacyRecord` order)."""
    if not ids:
        return []
    stmt = _pharmacy_records(session.get_bind().dialect.name)
    return [tuple(row) for row in await session.execute(stmt, {"ids": list(ids)})]


async def pharmacies_by_codes(session: AsyncSession, codes: Sequence[str]) -> list[Pharmacy]:
    if not codes:
        return []
    result = await session.execute(select(Pharmacy).where(col(Pharmacy.connection_code).in_(codes)))
    return list(result.scalars())


def inactive_pharmacy_ids_query() -> Select[Any]:
    """Suspended or revoked outlets: a partial index keeps this a handful of index entries."""
    return select(col(Pharmacy.id)).where(col(Pharmacy.status) != ClientStatus.ACTIVE)


async def inactive_pharmacy_ids(session: AsyncSession, limit: int) -> list[int]:
    result = await session.execute(inactive_pharmacy_ids_query().limit(limit))
    return [int(i) for i in result.scalars()]


async def pharmacies_with_code_prefix(session: AsyncSession, prefix: str) -> list[Pharmacy]:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    result = await session.execute(
        select(Pharmacy)
        .where(col(Pharmacy.connection_code).like(f"{escaped}%", escape="\\"))
        .order_by(col(Pharmacy.id))
    )
    return list(result.scalars())


async def insert_pharmacies(session: AsyncSession, rows: Sequence[dict[str, object]]) -> None:
    """Insert many registry rows in one multi-row statement (demo and bench data)."""
    if rows:
        await session.execute(Pharmacy.__table__.insert(), list(rows))  # type: ignore[attr-defined]


async def prescribers_at_facility(session: AsyncSession, facility_code: str) -> list[Prescriber]:
    result = await session.execute(
        select(Prescriber)
        .join(PrescriberFacility, col(PrescriberFacility.prescriber_id) == col(Prescriber.prescriber_id))
        .where(col(PrescriberFacility.facility_code) == facility_code)
        .order_by(col(Prescriber.full_name), col(Prescriber.prescriber_id))
    )
    return list(result.scalars())


async def link_prescriber(session: AsyncSession, prescriber_id: str, facility_code: str) -> bool:
    """Register a prescriber at a facility; False when already registered there."""
    if await session.get(PrescriberFacility, (prescriber_id, facility_code)) is not None:
        return False
    session.add(PrescriberFacility(prescriber_id=prescriber_id, facility_code=facility_code))
    await session.flush()
    return True


async def unlink_prescriber(session: AsyncSession, prescriber_id: str, facility_code: str) -> bool:
    """Remove a prescriber from a facility; False when not registered there."""
    link = await session.get(PrescriberFacility, (prescriber_id, facility_code))
    if link is None:
        return False
    await session.delete(link)
    await session.flush()
    return True
