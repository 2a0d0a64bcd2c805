"""Routes of the core service: credentials, registry, catalogue and prescriptions."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from eprescribe import qr, service
from eprescribe.deps import CurrentAdmin, CurrentFacility
from eprescribe.exceptions import InvalidClient
from eprescribe.schemas import (
    AccessLogView,
    CancelRequest,
    ClientStatusView,
    DrugCreate,
    DrugPage,
    DrugPublic,
    FacilityCreate,
    FacilityCreated,
    ItemView,
    PharmacyCreate,
    PharmacyCreated,
    PrescriberCreate,
    PrescriberCreated,
    PrescriberKey,
    PrescriptionCreated,
    PrescriptionSubmit,
    PrescriptionView,
    SecretRotated,
    TokenResponse,
    vn_time,
)
from erx.database import SessionDep
from erx.errors import PROBLEM_JSON
from erx.runtime import RuntimeDep, client_address
from erx.security import ClientKind
from erx.throttle import PaceDep

router = APIRouter()
PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}
ERRORS: dict[int | str, dict[str, Any]] = dict.fromkeys((400, 401, 403, 404, 409, 422, 429), PROBLEM)


@router.post("/api/v1/auth/token", response_model=TokenResponse, tags=["credentials"], responses=ERRORS)
async def issue_token(
    pace: PaceDep,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    grant_type: Annotated[str, Form()],
    client_id: Annotated[str, Form(max_length=200)],
    client_secret: Annotated[str, Form(max_length=500)],
) -> TokenResponse:
    """Exchange admin or facility client credentials for a bearer token (RFC 6749 4.4).

    Wrong secrets are counted per client id and per address; past the limits the answer is
    slowed, then 429 with Retry-After.
    """
    if grant_type != "client_credentials":
        raise InvalidClient("Only grant_type=client_credentials is supported")
    kind = ClientKind.FACILITY if len(client_id) == 5 and client_id.isalnum() else ClientKind.ADMIN
    principal = await service.authenticate_guarded(
        session, runtime, kind, client_id, client_secret, address=client_address(request), pace=pace
    )
    token = runtime.tokens.issue(principal)
    return TokenResponse(access_token=token.access_token, expires_in=token.expires_in)


# ---- registry -----------------------------------------------------------------------------


@router.post(
    "/api/v1/facilities", status_code=201, response_model=FacilityCreated, tags=["registry"], responses=ERRORS
)
async def create_facility(
    body: FacilityCreate, _: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> FacilityCreated:
    """Register a facility; its secret is shown only in this answer."""
    facility, secret = await service.register_facility(session, runtime.hasher, body)
    return FacilityCreated(facility_code=facility.facility_code, client_secret=secret)


@router.post(
    "/api/v1/prescribers",
    status_code=201,
    response_model=PrescriberCreated,
    tags=["registry"],
    responses=ERRORS,
)
async def create_prescriber(
    body: PrescriberCreate, _: CurrentAdmin, session: SessionDep
) -> PrescriberCreated:
    """Register a prescriber with the EC P-256 public key that verifies their signatures."""
    prescriber = await service.register_prescriber(session, body)
    return PrescriberCreated(prescriber_id=prescriber.prescriber_id)


@router.post(
    "/api/v1/pharmacies", status_code=201, response_model=PharmacyCreated, tags=["registry"], responses=ERRORS
)
async def create_pharmacy(
    body: PharmacyCreate, _: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> PharmacyCreated:
    """Register a pharmacy outlet and issue its connection code and secret."""
    pharmacy, secret = await service.register_pharmacy(session, runtime.hasher, body)
    return PharmacyCreated(connection_code=pharmacy.connection_code, client_secret=secret)


@router.post(
    "/api/v1/pharmacies/{connection_code}/rotate-secret",
    response_model=SecretRotated,
    tags=["registry"],
    responses=ERRORS,
)
async def rotate_pharmacy_secret(
    connection_code: str, _: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> SecretRotated:
    """Issue a new secret; tokens issued under the old one fail at once."""
    pharmacy, secret = await service.rotate_pharmacy_secret(session, runtime.hasher, connection_code)
    return SecretRotated(connection_code=pharmacy.connection_code, client_secret=secret)


@router.post(
    "/api/v1/pharmacies/{connection_code}/{action}",
    response_model=ClientStatusView,
    tags=["registry"],
    responses=ERRORS,
)
async def change_pharmacy_status(
    connection_code: str,
    action: Literal["suspend", "reinstate", "revoke"],
    _: CurrentAdmin,
    session: SessionDep,
) -> ClientStatusView:
    """Suspend, reinstate or revoke an outlet; its tokens stop working on the next request."""
    pharmacy = await service.change_pharmacy_status(session, connection_code, action)
    return ClientStatusView(connection_code=pharmacy.connection_code, status=pharmacy.status)


@router.post(
    "/api/v1/facilities/{facility_code}/{action}",
    response_model=ClientStatusView,
    tags=["registry"],
    responses=ERRORS,
)
async def change_facility_status(
    facility_code: str,
    action: Literal["suspend", "reinstate", "revoke"],
    _: CurrentAdmin,
    session: SessionDep,
) -> ClientStatusView:
    """Suspend, reinstate or revoke a facility; its tokens stop working on the next request."""
    facility = await service.change_client_status(session, "facility", facility_code, action)
    return ClientStatusView(connection_code=facility_code.upper(), status=facility.status)


@router.post(
    "/api/v1/prescribers/{prescriber_id}/{action}",
    response_model=ClientStatusView,
    tags=["registry"],
    responses=ERRORS,
)
async def change_prescriber_status(
    prescriber_id: str,
    action: Literal["suspend", "reinstate", "revoke"],
    _: CurrentAdmin,
    session: SessionDep,
) -> ClientStatusView:
    """Suspend, reinstate or revoke a prescriber; their signatures are refused from now on."""
    prescriber = await service.change_client_status(session, "prescriber", prescriber_id, action)
    return ClientStatusView(connection_code=prescriber_id.upper(), status=prescriber.status)


@router.put(
    "/api/v1/prescribers/{prescriber_id}/key",
    response_model=PrescriberCreated,
    tags=["registry"],
    responses=ERRORS,
)
async def replace_prescriber_key(
    prescriber_id: str, body: PrescriberKey, _: CurrentAdmin, session: SessionDep
) -> PrescriberCreated:
    """Register a prescriber's new public key (new device or browser); the old one stops verifying."""
    prescriber = await service.replace_prescriber_key(session, prescriber_id, body.public_jwk)
    return PrescriberCreated(prescriber_id=prescriber.prescriber_id)


@router.post(
    "/api/v1/drugs", status_code=201, response_model=DrugPublic, tags=["catalogue"], responses=ERRORS
)
async def create_drug(body: DrugCreate, _: CurrentAdmin, session: SessionDep) -> DrugPublic:
    """Add a product to the national catalogue."""
    drug = await service.add_drug(session, body)
    return DrugPublic.model_validate(drug, from_attributes=True)


@router.get("/api/v1/drugs", response_model=DrugPage, tags=["catalogue"], responses=ERRORS)
async def search_drugs(
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    category: Annotated[
        Literal["normal", "narcotic", "psychotropic", "precursor", "traditional", "supplement"] | None,
        Query(),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DrugPage:
    """Search the catalogue by brand, active ingredient or registration number (no token)."""
    total, drugs = await service.search_catalogue(session, q=q, category=category, limit=limit, offset=offset)
    return DrugPage(total=total, items=[DrugPublic.model_validate(d, from_attributes=True) for d in drugs])


# ---- prescriptions ---------------------------------------------------------------------


@router.post(
    "/api/v1/prescriptions",
    status_code=201,
    response_model=PrescriptionCreated,
    tags=["prescriptions"],
    responses=ERRORS,
)
async def submit_prescription(
    body: PrescriptionSubmit,
    request: Request,
    facility: CurrentFacility,
    session: SessionDep,
    runtime: RuntimeDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Store a prescription signed (ES256 JWS) by a prescriber of this facility."""
    outcome = await service.submit_prescription(
        session,
        runtime,
        facility=facility,
        compact_jws=body.jws,
        idempotency_key=idempotency_key,
        base_url=str(request.base_url),
    )
    return JSONResponse(outcome.body, status_code=outcome.status_code)


def _view(record: service.PrescriptionRecord, base_url: str) -> PrescriptionView:
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
    )


@router.get(
    "/api/v1/prescriptions/{code}", response_model=PrescriptionView, tags=["prescriptions"], responses=ERRORS
)
async def read_prescription(
    code: str, request: Request, facility: CurrentFacility, session: SessionDep
) -> PrescriptionView:
    """Read a prescription this facility issued, with dispensed and remaining per line."""
    record = await service.read_for_facility(session, facility, code, address=client_address(request))
    return _view(record, str(request.base_url))


async def _qr(
    code: str, request: Request, facility: CurrentFacility, session: SessionDep, fmt: str
) -> Response:
    record = await service.read_for_facility(
        session, facility, code, action=f"qr_{fmt}", address=client_address(request)
    )
    text = record.prescription.qr_text
    if fmt == "png":
        return Response(await asyncio.to_thread(qr.png, text), media_type="image/png")
    return Response(await asyncio.to_thread(qr.svg, text), media_type="image/svg+xml")


@router.get(
    "/api/v1/prescriptions/{code}/qr.png",
    tags=["prescriptions"],
    responses={200: {"content": {"image/png": {}}}, **ERRORS},
)
async def prescription_qr_png(
    code: str, request: Request, facility: CurrentFacility, session: SessionDep
) -> Response:
    """The QR code of the paper prescription as PNG: `CODE.<signed summary>`."""
    return await _qr(code, request, facility, session, "png")


@router.get(
    "/api/v1/prescriptions/{code}/qr.svg",
    tags=["prescriptions"],
    responses={200: {"content": {"image/svg+xml": {}}}, **ERRORS},
)
async def prescription_qr_svg(
    code: str, request: Request, facility: CurrentFacility, session: SessionDep
) -> Response:
    """The QR code of the paper prescription as SVG."""
    return await _qr(code, request, facility, session, "svg")


@router.post(
    "/api/v1/prescriptions/{code}/cancel",
    response_model=PrescriptionView,
    tags=["prescriptions"],
    responses=ERRORS,
)
async def cancel_prescription(
    code: str, body: CancelRequest, request: Request, facility: CurrentFacility, session: SessionDep
) -> PrescriptionView:
    """Cancel a prescription of this facility while nothing of it is dispensed."""
    prescription = await service.cancel(session, facility, code, body.reason, client_address(request))
    record = await service.load_record(session, prescription)
    return _view(record, str(request.base_url))


@router.get(
    "/api/v1/prescriptions/{code}/access-log",
    response_model=list[AccessLogView],
    tags=["prescriptions"],
    responses=ERRORS,
)
async def prescription_access_log(
    code: str, request: Request, facility: CurrentFacility, session: SessionDep
) -> list[AccessLogView]:
    """Who read or changed this prescription, and when."""
    entries = await service.access_log(session, facility, code, client_address(request))
    return [
        AccessLogView(at=vn_time(e.at), actor_kind=e.actor_kind, actor_code=e.actor_code, action=e.action)
        for e in entries
    ]
