"""Routes of prescriptions in HL7 FHIR R4 for the issuing facility."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse

from eprescribe.fhir import service
from eprescribe.prescriptions.schemas import PrescriptionCreated, PrescriptionSubmit
from eprescribe.registry.deps import FacilityCallDep
from kit.errors import ERRORS

router = APIRouter(tags=["FHIR R4"])
FHIR_JSON = "application/fhir+json"


@router.post(
    "/api/v1/prescriptions/fhir", status_code=201, response_model=PrescriptionCreated, responses=ERRORS
)
async def submit_fhir_prescription(
    body: PrescriptionSubmit,
    call: FacilityCallDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Store a prescription written as a FHIR MedicationRequest Bundle, signed as `{"jws"}` (ES256).

    The JWS payload is the Bundle; the signature, the prescriber, the facility and every rule are
    checked as for `POST /api/v1/prescriptions`, and the answer is the same.
    """
    outcome = await service.submit(
        call.session,
        call.runtime,
        facility=call.facility,
        compact_jws=body.jws,
        idempotency_key=idempotency_key,
        base_url=call.runtime.settings.public_url,
    )
    return JSONResponse(outcome.body, status_code=outcome.status_code)


@router.get(
    "/api/v1/prescriptions/{code}/fhir",
    responses={200: {"content": {FHIR_JSON: {}}}, **ERRORS},
)
async def prescription_as_fhir(code: str, call: FacilityCallDep) -> JSONResponse:
    """This facility's prescription as a FHIR R4 Bundle: a MedicationRequest per line, the people and places."""
    bundle = await service.export(call.session, call.facility, code, address=call.address)
    return JSONResponse(bundle, media_type=FHIR_JSON)
