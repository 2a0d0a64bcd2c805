"""Routes of prescriptions for the issuing facility."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Header, Response
from fastapi.responses import JSONResponse

from eprescribe.prescriptions import qr, service
from eprescribe.prescriptions.schemas import (
    AccessLogView,
    CancelRequest,
    ItemView,
    PrescriptionCreated,
    PrescriptionSubmit,
    PrescriptionView,
)
from eprescribe.registry.deps import FacilityCall, FacilityCallDep
from kit.audit import AccessAction
from kit.errors import ERRORS
from kit.runtime import Runtime
from kit.time import vn_time

router = APIRouter(tags=["prescriptions"])


@router.post(
    "/api/v1/prescriptions",
    status_code=201,
    response_model=PrescriptionCreated,
    responses=ERRORS,
)
async def submit_prescription(
    body: PrescriptionSubmit,
    call: FacilityCallDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Store a prescription signed (ES256 JWS) by a prescriber of this facility."""
    outcome = await service.submit(
        call.session,
        call.runtime,
        facility=call.facility,
        compact_jws=body.jws,
        idempotency_key=idempotency_key,
        base_url=call.runtime.settings.public_url,
    )
    return JSONResponse(outcome.body, status_code=outcome.status_code)


def _view(record: service.FacilityRead, base_url: str, runtime: Runtime) -> PrescriptionView:
    p = record.prescription
    patient = {
        "full_name": p.patient_full_name,
        "date_of_birth": p.patient_date_of_birth.isoformat(),
        "gender": p.patient_gender,
        "national_id": p.patient_national_id,
        "insurance_no": p.patient_insurance_no,
        "weight_kg": p.patient_weight_kg,
        "phone": p.patient_phone,
        "address": p.patient_address,
        "guardian": p.guardian,
    }
    return PrescriptionView(
        code=p.code,
        kind=p.kind,
        status=record.status,
        facility_code=p.facility_code,
        prescriber_id=p.prescriber_id,
        prescriber_name=record.prescriber.full_name,
        issued_at=vn_time(p.issued_at),
        valid_until=vn_time(p.valid_until),
        replaces=p.replaces_code,
        replaced_by=p.replaced_by_code,
        patient={k: v for k, v in patient.items() if v is not None},
        diagnoses=p.diagnoses,
        items=[ItemView.model_validate(i, from_attributes=True) for i in record.items],
        notes=p.notes,
        follow_up_date=p.follow_up_date,
        cancelled_at=vn_time(p.cancelled_at) if p.cancelled_at else None,
        cancel_reason=p.cancel_reason,
        jws=p.jws,
        qr_text=p.qr_text,
        qr_png=f"{base_url}api/v1/prescriptions/{p.code}/qr.png",
        qr_svg=f"{base_url}api/v1/prescriptions/{p.code}/qr.svg",
        patient_url=service.patient_link(runtime.settings.public_base_url, runtime.keyring, p.code),
        patient_access_key=service.shown_access_key(service.patient_access_key(runtime.keyring, p.code)),
    )


@router.get("/api/v1/prescriptions/{code}", response_model=PrescriptionView, responses=ERRORS)
async def read_prescription(code: str, call: FacilityCallDep) -> PrescriptionView:
    """Read a prescription this facility issued, with dispensed and remaining per line."""
    record = await service.read_for_facility(call.session, call.facility, code, address=call.address)
    return _view(record, call.runtime.settings.public_url, call.runtime)


async def _qr(code: str, call: FacilityCall, fmt: str) -> Response:
    action = AccessAction.QR_PNG if fmt == "png" else AccessAction.QR_SVG
    record = await service.read_for_facility(
        call.session, call.facility, code, action=action, address=call.address
    )
    text = record.prescription.qr_text
    if fmt == "png":
        return Response(await asyncio.to_thread(qr.png, text), media_type="image/png")
    return Response(await asyncio.to_thread(qr.svg, text), media_type="image/svg+xml")


@router.get(
    "/api/v1/prescriptions/{code}/qr.png",
    responses={200: {"content": {"image/png": {}}}, **ERRORS},
)
async def prescription_qr_png(code: str, call: FacilityCallDep) -> Response:
    """The QR code of the paper prescription as PNG: `CODE.<signed summary>`."""
    return await _qr(code, call, "png")


@router.get(
    "/api/v1/prescriptions/{code}/qr.svg",
    responses={200: {"content": {"image/svg+xml": {}}}, **ERRORS},
)
async def prescription_qr_svg(code: str, call: FacilityCallDep) -> Response:
    """The QR code of the paper prescription as SVG."""
    return await _qr(code, call, "svg")


@router.post(
    "/api/v1/prescriptions/{code}/cancel",
    response_model=PrescriptionView,
    responses=ERRORS,
)
async def cancel_prescription(code: str, body: CancelRequest, call: FacilityCallDep) -> PrescriptionView:
    """Cancel a prescription of this facility while nothing of it is dispensed."""
    record = await service.cancel(call.session, call.facility, code, body.reason, call.address)
    return _view(record, call.runtime.settings.public_url, call.runtime)


@router.get(
    "/api/v1/prescriptions/{code}/access-log",
    response_model=list[AccessLogView],
    responses=ERRORS,
)
async def prescription_access_log(code: str, call: FacilityCallDep) -> list[AccessLogView]:
    """Who read or changed this prescription, and when."""
    entries = await service.access_log(call.session, call.facility, code, call.address)
    return [
        AccessLogView(at=vn_time(e.at), actor_kind=e.actor_kind, actor_code=e.actor_code, action=e.action)
        for e in entries
    ]
