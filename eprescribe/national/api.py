"""Routes of the national protocol's prescriber door (QĐ 808), beside the contract API on one port.

Bodies are read raw: existing HIS software sends numbers as strings, "" for what it lacks and
fields this system ignores, and the signature covers the body exactly as sent.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request

from eprescribe.national import service
from eprescribe.national.deps import PrescriberCallDep
from eprescribe.national.routing import JSON_BODY, DialectRoute
from eprescribe.registry.deps import FacilityCallDep
from kit.database import SessionDep
from kit.runtime import RuntimeDep, client_address
from kit.throttle import PaceDep

router = APIRouter(tags=["national protocol (QĐ 808)"], route_class=DialectRoute)


@router.post("/api/auth/dang-nhap-co-so-kham-chua-benh", openapi_extra=JSON_BODY)
async def facility_sign_in(
    request: Request, pace: PaceDep, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Sign a facility in with `{ma_lien_thong_co_so_kham_chua_benh, password}` (its code and secret)."""
    return await service.facility_sign_in(
        session, runtime, await request.body(), address=client_address(request), pace=pace
    )


@router.post("/api/auth/dang-nhap-bac-si", openapi_extra=JSON_BODY)
async def prescriber_sign_in(
    request: Request, pace: PaceDep, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Sign a prescriber in: `{ma_lien_thong_co_so_kham_chua_benh, ma_lien_thong_bac_si, password}`."""
    return await service.prescriber_sign_in(
        session, runtime, await request.body(), address=client_address(request), pace=pace
    )


@router.post("/api/v1/them-bac-si", openapi_extra=JSON_BODY)
async def add_prescriber(request: Request, call: FacilityCallDep) -> dict[str, Any]:
    """Register a prescriber of the national registry at this facility: `{ma_lien_thong_bac_si}`."""
    return await service.add_prescriber(call.session, call.facility, await request.body())


@router.post("/api/v1/xoa-bac-si", openapi_extra=JSON_BODY)
async def remove_prescriber(request: Request, call: FacilityCallDep) -> dict[str, Any]:
    """Remove a prescriber from this facility: `{ma_lien_thong_bac_si}`."""
    return await service.remove_prescriber(call.session, call.facility, await request.body())


@router.post("/api/v1/gui-don-thuoc", openapi_extra=JSON_BODY)
async def submit_prescription(
    request: Request,
    call: PrescriberCallDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> dict[str, Any]:
    """Submit a prescription in the national protocol's fields, signed (JWS ES256) by the prescriber.

    200 `{"success": "Gửi đơn thuốc thành công", "checksum", "ma_don_thuoc"}`; 422
    `{"success": "<message>", "danh_sach_cac_loi": [{truong, ma_loi, thong_bao}]}`.
    """
    return await service.submit(
        call.session,
        call.runtime,
        facility=call.facility,
        prescriber=call.prescriber,
        raw_body=await request.body(),
        idempotency_key=idempotency_key,
        base_url=call.runtime.settings.public_url,
    )
