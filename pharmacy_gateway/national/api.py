"""Routes of the national protocol's pharmacy door (QĐ 808), beside the gateway on one port."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from eprescribe.national.routing import JSON_BODY, DialectRoute
from kit.database import SessionDep
from kit.runtime import RuntimeDep, client_address
from kit.throttle import PaceDep
from pharmacy_gateway.national import service
from pharmacy_gateway.national.deps import NationalPharmacy

router = APIRouter(tags=["national protocol (QĐ 808)"], route_class=DialectRoute)


@router.get("/api/v1/thong-tin-don-thuoc/{ma_don_thuoc}")
async def read_prescription(
    ma_don_thuoc: str,
    request: Request,
    pharmacy: NationalPharmacy,
    pace: PaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """Read a prescription for a sale (headers `app-name`, `app-key`); each line carries its `id`."""
    return await service.read(
        session,
        runtime,
        pharmacy=pharmacy,
        code_text=ma_don_thuoc,
        address=client_address(request),
        pace=pace,
    )


@router.post("/api/v1/cap-nhat-don-thuoc", openapi_extra=JSON_BODY)
async def report_sale(
    request: Request, pharmacy: NationalPharmacy, pace: PaceDep, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Report a sale right after it happens: `so_luong_ban` per line `id` (`ma_thuoc_da_ke_don`)."""
    return await service.sell(
        session,
        runtime,
        pharmacy=pharmacy,
        raw_body=await request.body(),
        address=client_address(request),
        pace=pace,
    )
